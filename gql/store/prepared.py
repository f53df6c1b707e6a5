"""Tortoise queries compiled once per shape: a hot read is still written as a Tortoise query,
but its SQL, the place of each argument among the parameters and each column's conversion are
worked out on its first call, so later calls only fill in the parameters and convert the rows.

A shape is the query builder, the dialect and each argument's type (a list's: its length and
its items' type; a list holds one type). Arguments are ints and strings (and lists of them):
they reach the SQL as they are, with no field conversion between, so a stand-in value of each
can be found among the parameters Tortoise produced. The builder returns a plain
`values_list(...)` query (not flat, not `.first()` or `.get()`): the rows are its tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any, Generic, TypeVar

from tortoise.connection import get_connection
from tortoise.fields import DatetimeField
from tortoise.queryset import ValuesListQuery
from tortoise.timezone import get_timezone, get_use_tz

__all__ = ["PreparedValues", "UnpreparableQuery", "prepared_values"]

Argument = int | str | Sequence[int] | Sequence[str]
Row = TypeVar("Row")

# Longer lists are rare (bulk work) and would each be a shape: they run unprepared.
MAX_PREPARED_LIST = 100
# Stand-ins: far from any id, count or constant a query carries.
_FIRST_INT_STAND_IN = -7_340_000_001


class UnpreparableQuery(TypeError):
    """The builder's query cannot be compiled once: an argument of another type, or one that
    does not reach the parameters exactly as given."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    # (position among the parameters, argument index, item index or -1 for a scalar)
    slots: tuple[tuple[int, int, int], ...]
    convert: tuple[Callable[[Any], Any], ...]


def _stand_ins(arguments: Sequence[Argument]) -> tuple[list[Any], dict[Any, tuple[int, int]]]:
    """Arguments of the same shape made of unique stand-ins, and where each stands."""
    counter = count()
    found: dict[Any, tuple[int, int]] = {}

    def stand_in(value: object, where: tuple[int, int]) -> Any:
        n = next(counter)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise UnpreparableQuery(
                f"argument {where[0]}: {type(value).__name__} is not int or str"
            )
        made: Any = _FIRST_INT_STAND_IN - n if isinstance(value, int) else f"\x00stand-in-{n}"
        found[made] = where
        return made

    made: list[Any] = []
    for i, argument in enumerate(arguments):
        if isinstance(argument, list | tuple):
            if len({type(item) for item in argument}) > 1:
                raise UnpreparableQuery(f"argument {i}: a list of more than one type")
            made.append([stand_in(item, (i, j)) for j, item in enumerate(argument)])
        else:
            made.append(stand_in(argument, (i, -1)))
    return made, found


def _compile(
    build: Callable[..., ValuesListQuery[Any]], arguments: Sequence[Argument]
) -> _Compiled:
    made, where = _stand_ins(arguments)
    query = build(*made)
    query.sql()  # builds query.query for the connection's dialect
    sql, params = query.query.get_parameterized_sql()
    slots = []
    for position, value in enumerate(params):
        try:
            slot = where[value]
        except (KeyError, TypeError):  # a constant of the query itself
            continue
        slots.append((position, *slot))  # an argument the query uses twice has two slots
    missing = set(where.values()) - {(argument, item) for _, argument, item in slots}
    if missing:
        raise UnpreparableQuery(f"arguments {sorted(missing)} are not plain parameters")
    convert = tuple(
        _quicker(query.resolve_to_python_value(query.model, name)) for name in query.fields.values()
    )
    return _Compiled(sql, tuple(params), tuple(slots), convert)


def _quicker(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A DatetimeField's conversion, when Tortoise keeps times in UTC (use_tz, timezone UTC,
    as gql.store.db configures it): the same instant, read with `datetime.fromisoformat` and
    in the standard library's UTC, where Tortoise's parses and converts to ZoneInfo("UTC")
    at about three times the cost (a read model converts hundreds per request). Anything
    else (a naive time, an unexpected type or text) goes to Tortoise's own."""
    field = getattr(convert, "__self__", None)
    if type(field) is not DatetimeField or not get_use_tz() or get_timezone().upper() != "UTC":
        return convert

    def to_utc(value: Any) -> Any:
        if type(value) is str:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return convert(value)
        elif type(value) is datetime:
            parsed = value
        else:
            return convert(value)
        if parsed.tzinfo is None:
            return convert(value)
        return parsed.astimezone(UTC)

    return to_utc


class PreparedValues(Generic[Row]):
    """`await prepared(*arguments)`: the rows of `build(*arguments).values_list(...)`, each
    made into a Row by `row` from its converted columns."""

    def __init__(self, build: Callable[..., ValuesListQuery[Any]], row: Callable[..., Row]) -> None:
        self.build = build
        self.row = row
        # by dialect and each argument's type (a list's: its length and its first item's type)
        self._compiled: dict[tuple[str, tuple[object, ...]], _Compiled] = {}

    async def __call__(self, *arguments: Argument) -> list[Row]:
        db = get_connection("default")
        kinds = tuple(
            (len(a), type(a[0]) if a else None) if isinstance(a, list | tuple) else type(a)
            for a in arguments
        )
        shape = (str(db.capabilities.dialect), kinds)
        compiled = self._compiled.get(shape)
        if compiled is None:
            lengths = [kind[0] for kind in kinds if isinstance(kind, tuple)]
            if max(lengths, default=0) > MAX_PREPARED_LIST:
                return [self.row(*r) for r in await self.build(*arguments)]
            compiled = self._compiled[shape] = _compile(self.build, arguments)
        params = list(compiled.params)
        for position, argument, item in compiled.slots:
            value = arguments[argument]
            params[position] = value if item < 0 else value[item]  # type: ignore[index]
        _, rows = await db.execute_query(compiled.sql, params)
        convert = compiled.convert
        make = self.row
        return [make(*[f(v) for f, v in zip(convert, row, strict=True)]) for row in rows]


def prepared_values(
    row: Callable[..., Row],
) -> Callable[[Callable[..., ValuesListQuery[Any]]], PreparedValues[Row]]:
    """Decorates a builder of a values_list query: calling the result runs it prepared."""

    def decorate(build: Callable[..., ValuesListQuery[Any]]) -> PreparedValues[Row]:
        return PreparedValues(build, row)

    return decorate
