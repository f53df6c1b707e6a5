"""Keyset pages, both ways: a cursor is a row's sort key; page 500 costs what page 1 does,
forwards (first/after) or backwards (last/before: a seek in reverse order, rows turned back).

A cursor is checked value by value against the types of its sort keys before any of it
reaches SQL: a crafted one is INVALID_INPUT (field `after` or `before`), never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from gql.domain.errors import InvalidInput, t

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")
K = TypeVar("K", bound="_Key")

DEFAULT_PAGE_SIZE = 20
# The default of Settings.max_page_size; the API passes the configured one.
DEFAULT_MAX_PAGE_SIZE = 100
# `search` is a substring match: longer text finds nothing a 200-character one would not,
# and SQLite refuses LIKE patterns past 50,000 bytes.
MAX_SEARCH_CHARS = 200
# Longest text a cursor may carry (names are at most 320 characters).
_MAX_CURSOR_TEXT = 1000
_MAX_CURSOR_CHARS = 4096


class CertificationSort(StrEnum):
    RELEVANCE = "RELEVANCE"
    PUBLISHED_NEWEST = "PUBLISHED_NEWEST"
    PUBLISHED_OLDEST = "PUBLISHED_OLDEST"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    DUE_DATE = "DUE_DATE"


class CourseSort(StrEnum):
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    PUBLISHED_NEWEST = "PUBLISHED_NEWEST"
    PUBLISHED_OLDEST = "PUBLISHED_OLDEST"


@dataclass(frozen=True, slots=True)
class Page(Generic[T_co]):
    items: Sequence[T_co]
    cursors: Sequence[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


def check_first(first: int | None, max_page_size: int = DEFAULT_MAX_PAGE_SIZE) -> int:
    """The size of a plain list (not a page); refused (not clamped) outside 0..max_page_size."""
    return _checked_size("first", first, max_page_size)


def check_search(search: str | None) -> str | None:
    if search is not None and len(search) > MAX_SEARCH_CHARS:
        raise InvalidInput(
            t(
                "search must be at most {MAX_SEARCH_CHARS} characters",
                MAX_SEARCH_CHARS=MAX_SEARCH_CHARS,
            ),
            field=["search"],
        )
    return search or None


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


class _BadCursor(ValueError):
    pass


# The types a cursor value may have: "int" (a 32-bit column), "bigint", "str", "datetime";
# a trailing "?" allows null.
_INT_RANGE = {"int": 2**31, "bigint": 2**63}


def _decode_value(value: Any, kind: str) -> Any:
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind in _INT_RANGE:
        limit = _INT_RANGE[kind]
        if type(value) is not int or not -limit <= value < limit:
            raise _BadCursor(kind)
        return value
    if kind == "str":
        if not isinstance(value, str) or len(value) > _MAX_CURSOR_TEXT or "\x00" in value:
            raise _BadCursor(kind)
        value.encode("utf-8")  # a lone surrogate cannot be sent to the database
        return value
    if kind == "datetime":
        if not isinstance(value, dict) or set(value) != {"t"} or not isinstance(value["t"], str):
            raise _BadCursor(kind)
        parsed = datetime.fromisoformat(value["t"])
        if parsed.tzinfo is None:
            raise _BadCursor(kind)
        parsed.astimezone(UTC)  # OverflowError at the ends of the calendar
        return parsed
    raise AssertionError(f"unknown cursor value type {kind}")


def encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, [_encode_value(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, kind: str, types: Sequence[str], argument: str = "after"
) -> list[Any] | None:
    """The key values of a cursor made by encode_cursor for this sort, each of the type given
    in `types`; InvalidInput (field `argument`) otherwise."""
    if cursor is None:
        return None
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise _BadCursor("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise _BadCursor("shape")
        cursor_kind, values = decoded
        if cursor_kind != kind or not isinstance(values, list) or len(values) != len(types):
            raise _BadCursor("cursor of another list")
        return [_decode_value(v, t) for v, t in zip(values, types, strict=True)]
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeError):
        raise InvalidInput(
            t("{argument} is not a cursor of this list", argument=argument), field=[argument]
        ) from None


class _Key(Protocol):
    """A sort key (OrmKey, gql.store.sql.SortKey): a frozen dataclass with a direction."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def descending(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a client asks of a list, as Relay names it: `first` rows (after the cursor
    `after`), or the `last` rows (before the cursor `before`); and the largest page allowed
    (Settings.max_page_size). Checked, for every list alike, by `window`."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None
    max_size: int = DEFAULT_MAX_PAGE_SIZE

    @property
    def backward(self) -> bool:
        return self.last is not None or self.before is not None

    def size(self) -> int:
        """The page size. A page goes one way: mixing a backward argument (last, before) with
        a forward one (first, after) is refused, naming the backward one; a size outside
        0..max_size is refused, not clamped, so clients notice."""
        if self.backward:
            if self.first is not None or self.after is not None:
                wrong = "last" if self.last is not None else "before"
                other = "first" if self.first is not None else "after"
                raise InvalidInput(
                    t(
                        "{wrong} pages backward and cannot be given with {other}: "
                        "ask for first/after (forward) or last/before (backward)",
                        wrong=wrong,
                        other=other,
                    ),
                    field=[wrong],
                )
            return _checked_size("last", self.last, self.max_size)
        return _checked_size("first", self.first, self.max_size)

    def window(self, kind: str, types: Sequence[str]) -> Window:
        """The checked request for a list whose cursors are of `kind` with values of `types`."""
        size = self.size()
        argument, cursor = ("before", self.before) if self.backward else ("after", self.after)
        return Window(size, decode_cursor(cursor, kind, types, argument), self.backward, kind)


# The first page of the default size: the default of every list.
FIRST_PAGE = PageRequest()


def _checked_size(argument: str, size: int | None, max_size: int) -> int:
    size = DEFAULT_PAGE_SIZE if size is None else size
    if size < 0 or size > max_size:
        raise InvalidInput(
            t("{argument} must be between 0 and {max_size}", argument=argument, max_size=max_size),
            field=[argument],
        )
    return size


@dataclass(frozen=True, slots=True)
class Window:
    """A checked PageRequest: `size` rows after `cursor` in the list's order (or before it,
    when `backward`), the cursor's values already checked against the sort's keys.

    A store reads `limit` rows in `order(keys)` past the cursor (keyset_condition or orm_page
    on those keys); `page` turns them into the list's order and says which way there is more.
    """

    size: int
    cursor: list[Any] | None
    backward: bool
    kind: str

    @property
    def limit(self) -> int:
        """Rows to read: one more than shown says whether there is more beyond the page."""
        return self.size + 1

    def order(self, keys: Sequence[K]) -> list[K]:
        """The keys to seek with: the list's, or each one reversed to read backwards (a
        reversed nullable key keeps its place after the flag key that orders its NULLs)."""
        if not self.backward:
            return list(keys)
        return [replace(key, descending=not key.descending) for key in keys]

    def empty(self) -> Page[Any]:
        """The page of a list known to hold nothing (no read needed)."""
        given = self.cursor is not None
        return Page([], [], self.backward and given, not self.backward and given, 0)

    def rows(self, found: Sequence[R]) -> list[R]:
        """The rows shown of those read (up to `limit`, in seek order), in the list's order."""
        shown = list(found[: self.size])
        if self.backward:
            shown.reverse()
        return shown

    def page(
        self,
        found: Sequence[R],
        total: int,
        *,
        item: Callable[[R], T],
        key: Callable[[R], Sequence[Any]],
    ) -> Page[T]:
        """The page of the rows read: items and cursors in the list's order. Forwards there is
        a next page when more rows were read than shown, a previous one when a cursor was
        given; backwards the mirror image."""
        shown = self.rows(found)
        more = len(found) > self.size
        given = self.cursor is not None
        return Page(
            [item(row) for row in shown],
            [encode_cursor(self.kind, list(key(row))) for row in shown],
            has_next_page=given if self.backward else more,
            has_previous_page=more if self.backward else given,
            total_count=total,
        )


@dataclass(frozen=True, slots=True)
class OrmKey:
    """One non-null sort key of an ORM page: the field, its direction, its cursor type."""

    name: str
    descending: bool = False
    type: str = "int"


def _page_query(
    queryset: Any,
    seek: Sequence[OrmKey],
    cursor: Sequence[Any] | None,
    limit: int,
    columns: Sequence[str],
) -> Any:
    """The Tortoise query of a page: `limit` rows past `cursor` in the order of `seek`."""
    from tortoise.expressions import Q

    page_qs = queryset
    if cursor is not None:
        branches = []
        for i, key in enumerate(seek):
            terms = {prev.name: value for prev, value in zip(seek[:i], cursor[:i], strict=True)}
            terms[f"{key.name}__{'lt' if key.descending else 'gt'}"] = cursor[i]
            branches.append(Q(**terms))
        # The OR of branches alone makes SQLite walk the index from its start; a leading range
        # on the first key lets it seek, so page 500 costs what page 1 does.
        lead = seek[0]
        bound = {f"{lead.name}__{'lte' if lead.descending else 'gte'}": cursor[0]}
        page_qs = page_qs.filter(Q(**bound), Q(*branches, join_type="OR"))
    ordering = [f"-{key.name}" if key.descending else key.name for key in seek]
    return page_qs.order_by(*ordering).limit(limit).values_list(*columns)


# Prepared page queries (gql.store.prepared), by the caller's shape and the page's: a few per
# list and page size; past this many, pages run unprepared.
MAX_PREPARED_PAGES = 512
_prepared_pages: dict[tuple[Any, ...], Any] = {}


def _plain_row(*row: Any) -> tuple[Any, ...]:
    return row


async def _page_rows(
    queryset: Any, seek: list[OrmKey], window: Window, columns: Sequence[str], shape: Any
) -> list[Any]:
    """The page's rows: prepared when the caller names the queryset's `shape` and the cursor
    holds only ints and strings (the reads gql.store.prepared can compile), else built anew.
    Building a keyset query with Tortoise (its Q objects above all) costs more than the
    database's answer."""
    from gql.store.prepared import PreparedValues, UnpreparableQuery

    cursor = window.cursor
    prepared = None
    key: tuple[Any, ...] = ()
    if shape is not None and all(type(value) in (int, str) for value in cursor or ()):
        key = (shape, tuple(seek), window.limit, tuple(columns), cursor is None)
        prepared = _prepared_pages.get(key)
        if prepared is None and len(_prepared_pages) < MAX_PREPARED_PAGES:
            prepared = _prepared_pages[key] = PreparedValues(
                lambda *values: _page_query(
                    queryset, seek, list(values) if values else None, window.limit, columns
                ),
                _plain_row,
            )
    if prepared is not None:
        try:
            return list(await prepared(*(cursor or ())))
        except UnpreparableQuery:  # a value that does not reach the SQL as given
            _prepared_pages.pop(key, None)
    return list(await _page_query(queryset, seek, cursor, window.limit, columns))


async def orm_page(
    queryset: Any,
    keys: Sequence[OrmKey],
    *,
    record: Callable[..., T],
    columns: Sequence[str],
    kind: str,
    paging: PageRequest,
    shape: Any = None,
) -> Page[T]:
    """A keyset page over a Tortoise queryset ordered by non-null `keys`, of the `record`s
    built from `columns` (the record's fields, in order; the keys among them). `shape`: a
    hashable the caller gives only when every queryset it passes with it is the same query,
    parameters included; the page's query is then prepared once (see _page_rows)."""
    window = paging.window(kind, [key.type for key in keys])
    total = await queryset.count()
    found = await _page_rows(queryset, window.order(keys), window, columns, shape)
    at = [list(columns).index(key.name) for key in keys]
    return window.page(
        found, total, item=lambda row: record(*row), key=lambda row: [row[i] for i in at]
    )
