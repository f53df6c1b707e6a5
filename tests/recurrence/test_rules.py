"""The pure rules behind recurrence: calendar months, the next expiry, the current cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gql import clock
from gql.domain import certifications
from gql.domain.calendar import add_months
from gql.domain.certifications import CertificationData
from gql.domain.evaluation import award_expiry
from gql.domain.status import current_cycle
from gql.store.models import Award, Certification, CertificationKind, CertificationType
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification

from .api import assign, awards, complete, iso, my_enrollment

EST = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("at", "months", "expected"),
    [
        (datetime(2027, 1, 31, 10, tzinfo=UTC), 1, datetime(2027, 2, 28, 10, tzinfo=UTC)),
        (datetime(2028, 1, 31, 10, tzinfo=UTC), 1, datetime(2028, 2, 29, 10, tzinfo=UTC)),
        (datetime(2028, 2, 29, 10, tzinfo=UTC), 12, datetime(2029, 2, 28, 10, tzinfo=UTC)),
        (datetime(2028, 2, 29, 10, tzinfo=UTC), 48, datetime(2032, 2, 29, 10, tzinfo=UTC)),
        (datetime(2027, 3, 31, 10, tzinfo=UTC), 1, datetime(2027, 4, 30, 10, tzinfo=UTC)),
        (datetime(2027, 8, 31, 10, tzinfo=UTC), 6, datetime(2028, 2, 29, 10, tzinfo=UTC)),
        (datetime(2027, 12, 15, tzinfo=UTC), 1, datetime(2028, 1, 15, tzinfo=UTC)),
        (datetime(2027, 11, 30, tzinfo=UTC), 27, datetime(2030, 2, 28, tzinfo=UTC)),
        (datetime(2027, 3, 10, tzinfo=UTC), -14, datetime(2026, 1, 10, tzinfo=UTC)),
        (datetime(2027, 3, 31, tzinfo=UTC), -1, datetime(2027, 2, 28, tzinfo=UTC)),
        # counted on the UTC calendar: Jan 30 23:00 -05:00 is Jan 31 04:00 UTC
        (datetime(2027, 1, 30, 23, tzinfo=EST), 1, datetime(2027, 2, 28, 4, tzinfo=UTC)),
        (
            datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
            1,
            datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ],
)
def test_add_months(at: datetime, months: int, expected: datetime) -> None:
    result = add_months(at, months)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


def _recurring(months: int = 12, window_days: int = 30) -> Certification:
    return Certification(
        type=CertificationType.RECURRING,
        validity_months=months,
        recertification_window_days=window_days,
    )


def _award(cycle: int, awarded_at: datetime, expires_at: datetime | None) -> Award:
    return Award(cycle=cycle, awarded_at=awarded_at, expires_at=expires_at)


PREVIOUS = _award(1, datetime(2026, 3, 10, tzinfo=UTC), datetime(2027, 3, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    ("awarded_at", "expected"),
    [
        # before the previous expiry: a period after it, however early in the window
        (datetime(2027, 2, 8, tzinfo=UTC), datetime(2028, 3, 10, tzinfo=UTC)),
        (
            datetime(2027, 3, 9, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2028, 3, 10, tzinfo=UTC),
        ),
        # at or after it: a period after the new award
        (datetime(2027, 3, 10, tzinfo=UTC), datetime(2028, 3, 10, tzinfo=UTC)),
        (datetime(2027, 6, 1, 8, tzinfo=UTC), datetime(2028, 6, 1, 8, tzinfo=UTC)),
    ],
)
def test_award_expiry(awarded_at: datetime, expected: datetime) -> None:
    assert award_expiry(_recurring(), awarded_at, PREVIOUS) == expected


def test_award_expiry_without_a_previous_award_or_for_perpetual_ones() -> None:
    at = datetime(2026, 8, 31, tzinfo=UTC)
    assert award_expiry(_recurring(6), at, None) == datetime(2027, 2, 28, tzinfo=UTC)
    perpetual = Certification(type=CertificationType.PERPETUAL, validity_months=None)
    assert award_expiry(perpetual, at, PREVIOUS) is None


def test_current_cycle_numbers_and_starts() -> None:
    cert = _recurring()
    first = PREVIOUS
    opens_1 = datetime(2027, 2, 8, tzinfo=UTC)  # 30 days before 2027-03-10
    assert current_cycle(cert, [], opens_1).number == 1
    assert current_cycle(cert, [first], opens_1 - timedelta(microseconds=1)).number == 1
    cycle = current_cycle(cert, [first], opens_1)
    assert (cycle.number, cycle.started_at) == (2, opens_1)

    second = _award(2, datetime(2027, 2, 20, tzinfo=UTC), datetime(2028, 3, 10, tzinfo=UTC))
    during = current_cycle(cert, [first, second], datetime(2027, 6, 1, tzinfo=UTC))
    assert (during.number, during.started_at) == (2, opens_1)  # still the cycle it opened
    opens_2 = datetime(2028, 2, 9, tzinfo=UTC)  # 30 days before 2028-03-10 (leap year)
    assert current_cycle(cert, [first, second], opens_2) == type(during)(3, opens_2)


def test_a_zero_day_window_opens_the_next_cycle_at_expiry() -> None:
    cert = _recurring(window_days=0)
    expiry = PREVIOUS.expires_at
    assert expiry is not None
    assert current_cycle(cert, [PREVIOUS], expiry - timedelta(microseconds=1)).number == 1
    assert current_cycle(cert, [PREVIOUS], expiry).started_at == expiry


async def test_an_award_kept_from_recurring_days_is_renewable_after_the_type_changes(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification(
        "Changing", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, cert, [world.learner])
    await complete(graphql_client, world.learner, world.course_gid(0))
    await certifications.update_certification(
        SYSTEM,
        cert,
        CertificationData(
            name="Changing", kind=CertificationKind.INTERNAL, type=CertificationType.PERPETUAL
        ),
    )
    expiry = datetime(2027, 3, 10, 9, tzinfo=UTC)

    clock.freeze(expiry + timedelta(days=10))
    expired = await my_enrollment(graphql_client, world.learner, cert)
    assert (expired["status"], expired["cycle"]) == ("EXPIRED", 2)  # the award said so

    payload = await complete(graphql_client, world.learner, world.course_gid(0))
    [renewed] = payload["enrollments"]
    assert (renewed["status"], renewed["expiresAt"]) == ("COMPLETED", None)
    assert awards(renewed) == [
        (1, iso(frozen_now), iso(expiry)),
        (2, iso(expiry + timedelta(days=10)), None),
    ]
    clock.freeze(datetime(2040, 1, 1, tzinfo=UTC))
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "COMPLETED"
