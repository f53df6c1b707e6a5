"""Due dates, overdue, the RELEVANCE order and the certification report, through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.domain import courses
from gql.store.models import CertificationKind, CertificationType
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification, make_person
from tests.api.uploads_support import REVIEW, SUBMIT, FilePart, UploadClient
from tests.files.samples import pdf

from .api import assign, cert_gid, complete, iso, my_enrollment, my_list, record, report, start

MICROSECOND = timedelta(microseconds=1)


def course_gid(course_id: int) -> str:
    return encode_id("Course", course_id)


async def test_due_at_from_days_to_complete_or_from_the_assignment(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification("Ten days", [world.course_ids[0]], days_to_complete=10)
    no_deadline = await make_certification("Open ended", [world.course_ids[1]])

    started = await start(graphql_client, world.learner, cert)
    [assigned] = await assign(graphql_client, world, cert, [world.other])
    [chosen] = await assign(
        graphql_client, world, no_deadline, [world.other], due="2026-04-01T17:00:00Z"
    )
    [open_ended] = await assign(graphql_client, world, no_deadline, [world.learner])

    ten_days = iso(frozen_now + timedelta(days=10))
    assert (started["dueAt"], assigned["dueAt"]) == (ten_days, ten_days)
    assert chosen["dueAt"] == "2026-04-01T17:00:00+00:00"
    assert open_ended["dueAt"] is None
    # assigning again with a date moves the deadline of the existing enrollment
    [moved] = await assign(
        graphql_client, world, cert, [world.learner], due="2026-03-15T12:00:00+00:00"
    )
    assert (moved["id"], moved["dueAt"]) == (started["id"], "2026-03-15T12:00:00+00:00")


async def test_overdue_strictly_after_the_due_date_and_never_when_completed(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification("Due", [world.course_ids[0]], days_to_complete=10)
    await start(graphql_client, world.learner, cert)
    await start(graphql_client, world.other, cert)
    due = frozen_now + timedelta(days=10)

    clock.freeze(due)
    assert (await my_enrollment(graphql_client, world.learner, cert))["overdue"] is False
    assert (await report(graphql_client, world.admin, cert))["overdue"] == 0

    clock.freeze(due + MICROSECOND)
    late = await my_enrollment(graphql_client, world.learner, cert)
    assert (late["status"], late["overdue"]) == ("STARTED", True)
    assert (await report(graphql_client, world.admin, cert))["overdue"] == 2

    [done] = (await complete(graphql_client, world.other, world.course_gid(0)))["enrollments"]
    assert (done["status"], done["overdue"]) == ("COMPLETED", False)  # late, but done
    assert (await report(graphql_client, world.admin, cert))["overdue"] == 1


async def test_an_expired_award_past_its_due_date_is_overdue_again(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification(
        "Monthly",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
        days_to_complete=10,
    )
    await start(graphql_client, world.learner, cert)
    await complete(graphql_client, world.learner, world.course_gid(0))
    expiry = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)

    clock.freeze(expiry - MICROSECOND)  # in the renewal window, past the due date
    renewing = await my_enrollment(graphql_client, world.learner, cert)
    assert (renewing["status"], renewing["cycle"], renewing["overdue"]) == ("COMPLETED", 2, False)

    clock.freeze(expiry)
    expired = await my_enrollment(graphql_client, world.learner, cert)
    assert (expired["status"], expired["overdue"]) == ("EXPIRED", True)
    assert (await report(graphql_client, world.admin, cert))["overdue"] == 1


async def test_relevance_puts_what_needs_action_first(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    learner = world.learner
    course_ids = [(await courses.create_course(SYSTEM, name=f"Extra {i}")).id for i in range(5)]
    # publishedAt increases with each certification, so ties would fall to the newest
    expiring = await make_certification(
        "Expired",
        [course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    overdue = await make_certification("Overdue", [course_ids[1]])
    started = await make_certification("Started", [course_ids[2]])
    fresh = await make_certification("Not started", [course_ids[3]])
    done = await make_certification("Done", [course_ids[4]])
    rejected, waiting = [
        await make_certification(
            name, [], kind=CertificationKind.EXTERNAL, issuer="Board", days_to_complete=90
        )
        for name in ("Rejected", "Waiting")
    ]
    await assign(graphql_client, world, expiring, [learner])
    await assign(
        graphql_client, world, overdue, [learner], due=iso(frozen_now + timedelta(days=10))
    )
    await assign(
        graphql_client, world, started, [learner], due=iso(frozen_now + timedelta(days=60))
    )
    await assign(graphql_client, world, fresh, [learner])
    await assign(graphql_client, world, done, [learner])
    await complete(graphql_client, learner, course_gid(course_ids[0]))
    await record(graphql_client, learner, course_gid(course_ids[1]), percent=20)
    await record(graphql_client, learner, course_gid(course_ids[2]), percent=10)
    await complete(graphql_client, learner, course_gid(course_ids[4]))
    uploads = UploadClient(http)
    for cert in (rejected, waiting):
        data = await uploads.data(
            SUBMIT,
            {"cert": cert_gid(cert)},
            {"variables.file": FilePart(pdf(str(cert)))},
            token=learner.token,
        )
        if cert == rejected:
            evidence_id = data["submitEvidence"]["evidence"]["id"]
            await graphql_client.data(
                REVIEW, {"id": evidence_id, "decision": "REJECT"}, token=world.manager.token
            )

    clock.freeze(frozen_now + timedelta(days=40))  # Expired expired, Overdue is overdue

    assert await my_list(graphql_client, learner) == [
        ("Overdue", "STARTED"),  # needs action, the earliest due date
        ("Rejected", "REJECTED"),  # needs action, due in 90 days
        ("Expired", "EXPIRED"),  # needs action, no due date: last of the bucket
        ("Started", "STARTED"),
        ("Not started", "ENROLLED"),
        ("Waiting", "PENDING_APPROVAL"),
        ("Done", "COMPLETED"),
    ]
    assert [name for name, _ in await my_list(graphql_client, learner, pending=True)] == [
        "Overdue",
        "Rejected",
        "Expired",
        "Started",
        "Not started",
        "Waiting",
    ]


async def test_the_report_counts_overdue_and_awards_expiring_within_n_days(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification(
        "Yearly",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=12,
        days_to_complete=30,
    )
    team = [world.learner] + [
        await make_person(f"Report {i}", world.learner.user.role, manager=world.manager.user)
        for i in range(2)
    ]
    outsider = world.other
    for person in [*team, outsider]:
        await start(graphql_client, person, cert)
    # awards made on three days: they expire on 2027-03-10, 03-20 and 03-30 at 09:00
    for offset, person in zip((0, 10, 20), (team[0], team[1], outsider), strict=True):
        clock.freeze(frozen_now + timedelta(days=offset))
        await complete(graphql_client, person, world.course_gid(0))
    # team[2] never completes: overdue from 2026-04-09 09:00 on

    clock.freeze(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    admin_view = await report(graphql_client, world.admin, cert, days=19)
    assert admin_view["byStatus"] == {"COMPLETED": 3, "STARTED": 1}
    assert (admin_view["overdue"], admin_view["expiring"]) == (1, 2)  # 03-20 09:00 included
    assert (await report(graphql_client, world.admin, cert, days=29))["expiring"] == 3
    assert (await report(graphql_client, world.admin, cert, days=8))["expiring"] == 0
    assert (await report(graphql_client, world.admin, cert, days=9))[
        "expiring"
    ] == 1  # exactly 03-10
    manager_view = await report(graphql_client, world.manager, cert, days=29)  # direct reports only
    assert manager_view["byStatus"] == {"COMPLETED": 2, "STARTED": 1}
    assert manager_view["expiring"] == 2

    clock.freeze(datetime(2027, 3, 10, 9, 0, tzinfo=UTC))  # the first one expires now
    expired = await report(graphql_client, world.admin, cert, days=10)
    assert expired["byStatus"] == {"COMPLETED": 2, "EXPIRED": 1, "STARTED": 1}
    assert (expired["overdue"], expired["expiring"]) == (2, 1)  # the expired one is late too


@pytest.mark.parametrize("days", [-1, 100_000])
async def test_expiring_within_refuses_days_out_of_range(
    graphql_client: GraphQLClient, world: World, days: int
) -> None:
    cert = await make_certification("Any", [world.course_ids[0]])
    result = await graphql_client.run(
        "query R($id: ID!, $days: Int!) { certificationReport(certificationId: $id) {"
        " expiringWithin(days: $days) } }",
        {"id": cert_gid(cert), "days": days},
        token=world.admin.token,
    )
    assert result["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
