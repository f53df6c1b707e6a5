"""Frozen dataclasses built as quickly as mutable ones.

A frozen dataclass's `__init__` sets each field with `object.__setattr__(self, name, value)`
(its own `__setattr__` refuses), a call per field: about four times the cost of a plain
attribute store, and the read model builds hundreds of records per request.
`quick_init` gives a frozen, slotted dataclass an `__init__` of the same signature that turns
the new instance into a mutable twin class with the same slots (so the same layout), stores
the fields plainly and turns it back: two class changes instead of a call per field. Equality,
hashing, `repr`, `replace`, pickling and the refusal to change a field are the dataclass's
own, since the instance is of the dataclass when `__init__` returns.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")

_set_attribute = object.__setattr__
# The names the generated __init__ uses itself: a field may not take one.
_OWN_NAMES = frozenset({"self", "_set", "_twin", "_cls"})


def quick_init(cls: type[T]) -> type[T]:
    """`cls`, a `@dataclass(frozen=True, slots=True)` without default factories, with the
    quick `__init__`; unchanged when its instances cannot change class (a layout the twin
    does not share)."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    params = dataclasses.fields(cls)
    if any(f.default_factory is not dataclasses.MISSING or not f.init for f in params):
        raise TypeError(f"{cls.__name__} has a default factory or a field outside __init__")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which quick_init does not call")
    if any(f.name in _OWN_NAMES or f.name.startswith("_default_") for f in params):
        raise TypeError(f"{cls.__name__} has a field named as one of quick_init's own names")
    slots = cls.__dict__["__slots__"]
    twin = type(f"Mutable{cls.__name__}", (object,), {"__slots__": slots})
    if not _changes_class(cls, twin):
        return cls
    signature = inspect.signature(cls.__init__)
    namespace: dict[str, Any] = {"_set": _set_attribute, "_twin": twin, "_cls": cls}
    parameters = []
    keyword_only = False
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.KEYWORD_ONLY and not keyword_only:
            parameters.append("*")
            keyword_only = True
        elif parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"{cls.__name__}.__init__ takes {parameter.kind.description}")
        if parameter.default is parameter.empty:
            parameters.append(parameter.name)
        else:
            namespace[f"_default_{parameter.name}"] = parameter.default
            parameters.append(f"{parameter.name}=_default_{parameter.name}")
    stores = "".join(f"    self.{f.name} = {f.name}\n" for f in params)
    source = (
        f"def __init__(self, {', '.join(parameters)}):\n"
        "    _set(self, '__class__', _twin)\n"
        f"{stores}"
        "    self.__class__ = _cls\n"
    )
    exec(source, namespace)  # as dataclasses builds its own __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    type.__setattr__(cls, "__init__", init)
    return cls


def _changes_class(cls: type, twin: type) -> bool:
    """Whether an instance of `cls` can become a `twin` and back."""
    probe: Any = object.__new__(cls)
    try:
        _set_attribute(probe, "__class__", twin)
        probe.__class__ = cls
    except TypeError:
        return False
    return True
