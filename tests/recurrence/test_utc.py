"""Every DateTime is stored and returned in UTC; an input with another offset is converted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tortoise.connection import get_connection

from gql import clock
from gql.store.models import CertificationType
from tests.api.conftest import GraphQLClient, World, make_certification

from .api import ASSIGN, awards, cert_gid, complete_at, my_enrollment

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
DATETIME_FIELDS = {"enrolledAt", "startedAt", "dueAt", "completedAt", "expiresAt", "awardedAt"}


def datetimes_in(value: Any) -> list[str]:
    """Every DateTime value in an API answer (by field name), however deep."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in DATETIME_FIELDS and item is not None:
                found.append(item)
            else:
                found.extend(datetimes_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(datetimes_in(item))
    return found


async def stored(sql: str) -> list[Any]:
    rows = await get_connection("default").execute_query_dict(sql)
    return [next(iter(row.values())) for row in rows]


def assert_utc_as_stored(value: Any) -> None:
    # SQLite keeps text, PostgreSQL a timestamptz the driver hands back as an aware datetime
    if isinstance(value, str):
        assert value.endswith("+00:00"), value
    else:
        assert isinstance(value, datetime) and value.utcoffset() == timedelta(0), value


async def test_inputs_with_other_offsets_are_converted_and_everything_comes_back_in_utc(
    graphql_client: GraphQLClient, world: World
) -> None:
    clock.freeze(datetime(2026, 3, 10, 18, 0, tzinfo=timezone(timedelta(hours=9))))
    cert = await make_certification(
        "Monthly",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    data = await graphql_client.data(
        ASSIGN,
        {
            "cert": cert_gid(cert),
            "learners": [world.learner.id],
            "due": "2026-04-01T12:00:00+02:00",
        },
        token=world.admin.token,
    )
    [assigned] = data["assignCertification"]["enrollments"]
    assert assigned["dueAt"] == "2026-04-01T10:00:00+00:00"
    assert assigned["enrolledAt"] == "2026-03-10T09:00:00+00:00"  # the +09:00 clock, in UTC

    # Jan 30 23:00 in New York is Jan 31 04:00 UTC: the month is counted from the UTC day
    payload = await complete_at(
        graphql_client, world, world.learner, world.course_gid(0), "2026-01-30T23:00:00-05:00"
    )
    assert payload["progress"]["completedAt"] == "2026-01-31T04:00:00+00:00"
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    assert awards(enrollment) == [(1, "2026-01-31T04:00:00+00:00", "2026-02-28T04:00:00+00:00")]

    values = datetimes_in(enrollment) + datetimes_in(payload)
    assert len(values) >= 8
    assert all(ISO_UTC.match(value) for value in values), values

    for sql in (
        "SELECT due_at FROM enrollment",
        "SELECT enrolled_at FROM enrollment",
        "SELECT completed_at FROM course_progress",
        "SELECT awarded_at FROM award",
        "SELECT expires_at FROM award",
    ):
        [value] = await stored(sql)
        assert_utc_as_stored(value)


async def test_a_datetime_without_an_offset_is_refused_and_changes_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Any", [world.course_ids[0]])
    result = await graphql_client.run(
        ASSIGN,
        {"cert": cert_gid(cert), "learners": [world.learner.id], "due": "2026-04-01T12:00:00"},
        token=world.admin.token,
    )
    assert result.get("data") is None
    assert "needs a UTC offset" in result["errors"][0]["message"]
    assert await stored("SELECT id FROM enrollment") == []


async def test_the_clock_hands_out_utc_whatever_it_was_frozen_with() -> None:
    clock.freeze(datetime(2026, 3, 10, 1, 0, tzinfo=timezone(timedelta(hours=-8))))
    assert clock.now() == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    clock.advance(timedelta(microseconds=1))
    assert clock.now() == datetime(2026, 3, 10, 9, 0, 0, 1, tzinfo=UTC)
