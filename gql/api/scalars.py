"""Custom scalars: DateTime is always UTC with an offset; a naive input is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from graphql import GraphQLError
from strawberry.file_uploads.scalars import Upload, UploadDefinition
from strawberry.types.scalar import ScalarDefinition, scalar


def serialize_datetime(value: datetime) -> str:
    if value.tzinfo is UTC:  # most: the prepared reads' (gql/store/prepared.py)
        return value.isoformat()
    # Tortoise returns aware UTC datetimes (use_tz); a naive one can only be UTC too.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"DateTime {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        # A time without an offset means different instants to different clients.
        raise GraphQLError(f"DateTime {value!r} needs a UTC offset, e.g. 2026-03-10T09:00:00Z")
    return parsed.astimezone(UTC)


def serialize_date(value: date) -> str:
    return value.isoformat()


def parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise GraphQLError("Date must be an ISO 8601 calendar date string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"Date {value!r} is not an ISO 8601 calendar date") from None


DateTimeScalar: ScalarDefinition = scalar(
    name="DateTime",
    description="ISO 8601 date and time with offset; always UTC on output.",
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

DateScalar: ScalarDefinition = scalar(
    name="Date",
    description="ISO 8601 calendar date.",
    serialize=serialize_date,
    parse_value=parse_date,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    datetime: DateTimeScalar,
    date: DateScalar,
    Upload: UploadDefinition,
}

__all__ = ["SCALAR_MAP", "Upload", "parse_datetime", "serialize_datetime"]
