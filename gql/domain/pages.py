"""Keyset pages: a cursor is the sort key of the last row seen; page 500 costs what page 1 does."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from gql.domain.errors import InvalidInput
from gql.settings import get_settings

T = TypeVar("T")


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


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int
    extra: dict[str, Any] = field(default_factory=dict)


def check_first(first: int | None) -> int:
    """The page size; refused (not clamped) outside 0..max_page_size, so clients notice."""
    limit = get_settings().max_page_size
    size = 20 if first is None else first
    if size < 0 or size > limit:
        raise InvalidInput(f"first must be between 0 and {limit}", field=["first"])
    return size


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"t"}:
        return datetime.fromisoformat(value["t"])
    return value


def encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, [_encode_value(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str, arity: int) -> list[Any] | None:
    """The key values of a cursor made by encode_cursor for this sort; InvalidInput otherwise."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor_kind, values = decoded
        if cursor_kind != kind or not isinstance(values, list) or len(values) != arity:
            raise ValueError("cursor of another list")
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput("after is not a cursor of this list", field=["after"]) from None


def as_datetime(value: Any) -> Any:
    """Raw SQLite rows carry datetimes as text; cursors carry real datetimes."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


async def orm_page(
    queryset: Any,
    keys: list[tuple[str, bool]],
    *,
    kind: str,
    first: int | None,
    after: str | None,
) -> Page[Any]:
    """A keyset page over a Tortoise queryset ordered by non-null `keys` (field, descending)."""
    from tortoise.expressions import Q

    size = check_first(first)
    cursor = decode_cursor(after, kind, len(keys))
    total = await queryset.count()
    page_qs = queryset
    if cursor is not None:
        branches = []
        for i, (name, descending) in enumerate(keys):
            terms = {prev: value for (prev, _), value in zip(keys[:i], cursor[:i], strict=True)}
            terms[f"{name}__{'lt' if descending else 'gt'}"] = cursor[i]
            branches.append(Q(**terms))
        # The OR of branches alone makes SQLite walk the index from its start; a leading range
        # on the first key lets it seek, so page 500 costs what page 1 does.
        first_name, first_descending = keys[0]
        bound = {f"{first_name}__{'lte' if first_descending else 'gte'}": cursor[0]}
        page_qs = page_qs.filter(Q(**bound), Q(*branches, join_type="OR"))
    ordering = [f"-{name}" if descending else name for name, descending in keys]
    rows = list(await page_qs.order_by(*ordering).limit(size + 1))
    has_next = len(rows) > size
    rows = rows[:size]
    cursors = [encode_cursor(kind, [getattr(row, name) for name, _ in keys]) for row in rows]
    return Page(rows, cursors, has_next, cursor is not None, total)
