"""Keyset pages: a cursor is the sort key of the last row seen; page 500 costs what page 1 does.

A cursor is checked value by value against the types of its sort keys before any of it
reaches SQL: a crafted one is INVALID_INPUT (field `after`), never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from gql.domain.errors import InvalidInput

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

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
    """The page size; refused (not clamped) outside 0..max_page_size, so clients notice."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0 or size > max_page_size:
        raise InvalidInput(f"first must be between 0 and {max_page_size}", field=["first"])
    return size


def check_search(search: str | None) -> str | None:
    if search is not None and len(search) > MAX_SEARCH_CHARS:
        raise InvalidInput(
            f"search must be at most {MAX_SEARCH_CHARS} characters", field=["search"]
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


def decode_cursor(cursor: str | None, kind: str, types: Sequence[str]) -> list[Any] | None:
    """The key values of a cursor made by encode_cursor for this sort, each of the type given
    in `types`; InvalidInput otherwise."""
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
        raise InvalidInput("after is not a cursor of this list", field=["after"]) from None


@dataclass(frozen=True, slots=True)
class OrmKey:
    """One non-null sort key of an ORM page: the field, its direction, its cursor type."""

    name: str
    descending: bool = False
    type: str = "int"


async def orm_page(
    queryset: Any,
    keys: Sequence[OrmKey],
    *,
    record: Callable[..., T],
    columns: Sequence[str],
    kind: str,
    first: int | None,
    after: str | None,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> Page[T]:
    """A keyset page over a Tortoise queryset ordered by non-null `keys`, of the `record`s
    built from `columns` (the record's fields, in order; the keys among them)."""
    from tortoise.expressions import Q

    size = check_first(first, max_page_size)
    cursor = decode_cursor(after, kind, [key.type for key in keys])
    total = await queryset.count()
    page_qs = queryset
    if cursor is not None:
        branches = []
        for i, key in enumerate(keys):
            terms = {prev.name: value for prev, value in zip(keys[:i], cursor[:i], strict=True)}
            terms[f"{key.name}__{'lt' if key.descending else 'gt'}"] = cursor[i]
            branches.append(Q(**terms))
        # The OR of branches alone makes SQLite walk the index from its start; a leading range
        # on the first key lets it seek, so page 500 costs what page 1 does.
        lead = keys[0]
        bound = {f"{lead.name}__{'lte' if lead.descending else 'gte'}": cursor[0]}
        page_qs = page_qs.filter(Q(**bound), Q(*branches, join_type="OR"))
    ordering = [f"-{key.name}" if key.descending else key.name for key in keys]
    found = await page_qs.order_by(*ordering).limit(size + 1).values_list(*columns)
    has_next = len(found) > size
    rows = [record(*row) for row in found[:size]]
    cursors = [encode_cursor(kind, [getattr(row, key.name) for key in keys]) for row in rows]
    return Page(rows, cursors, has_next, cursor is not None, total)
