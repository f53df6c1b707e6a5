"""quick_init: a frozen, slotted dataclass built without a call per field, and otherwise the
dataclass it was (equality, hashing, repr, replace, pickling, copying, frozen fields)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from gql.domain import rules
from gql.frozen import quick_init
from gql.store import records


def declare(name: str) -> type[Any]:
    """The same record, declared anew for each name (quick_init changes the class it is
    given), named as its module-level name so that pickle finds it."""

    @dataclass(frozen=True, slots=True)
    class Record:
        number: int
        name: str
        when: datetime | None = None
        tags: tuple[str, ...] = ()
        _: dataclasses.KW_ONLY
        flag: bool = False

    Record.__name__ = Record.__qualname__ = name
    return Record


Quick = quick_init(declare("Quick"))
Plain = declare("Plain")


def test_it_builds_what_the_dataclass_builds() -> None:
    when = datetime(2026, 3, 10, tzinfo=UTC)
    quick = Quick(1, "one", when, ("a",), flag=True)
    plain = Plain(1, "one", when, ("a",), flag=True)

    assert type(quick) is Quick
    assert (
        dataclasses.astuple(quick) == dataclasses.astuple(plain) == (1, "one", when, ("a",), True)
    )
    assert quick == Quick(number=1, name="one", when=when, tags=("a",), flag=True)
    assert quick != Quick(1, "one", when, ("a",))
    assert hash(quick) == hash(Quick(1, "one", when, ("a",), flag=True))
    assert repr(quick) == repr(plain).replace("Plain", "Quick")
    assert Quick(2, "two") == Quick(2, "two", None, (), flag=False)  # defaults
    assert dataclasses.replace(quick, name="uno").name == "uno"
    assert pickle.loads(pickle.dumps(quick)) == quick
    assert copy.copy(quick) == copy.deepcopy(quick) == quick
    with pytest.raises(FrozenInstanceError):
        quick.number = 2
    with pytest.raises(TypeError):
        Quick(1, "one", when, ("a",), True)  # keyword-only stays so
    with pytest.raises(TypeError):
        Quick(1)
    assert str(inspect.signature(Quick.__init__)).replace(" ", "") == (
        "(self,number,name,when=None,tags=(),*,flag=False)"
    )


def test_it_refuses_what_it_cannot_build() -> None:
    @dataclass(frozen=True, slots=True)
    class Listing:
        items: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            raise ValueError("never skipped")

    @dataclass(frozen=True)
    class Unslotted:
        value: int

    @dataclass(frozen=True, slots=True)
    class Shadowing:  # its field would hide the class the generated __init__ restores
        _cls: int

    for cls in (Listing, Checked, Unslotted, Shadowing):
        with pytest.raises(TypeError):
            quick_init(cls)


RECORDS = [
    cls
    for module in (records, rules)
    for cls in vars(module).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_the_read_models_records_are_built_quickly(cls: type) -> None:
    """Every frozen record of the store and view of the rules has the quick __init__ (a
    layout its twin cannot share would leave the dataclass's own, silently)."""
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    init = vars(cls)["__init__"]
    assert init.__code__.co_filename == "<string>"
    assert "_twin" in init.__globals__
