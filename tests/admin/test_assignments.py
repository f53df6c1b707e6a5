"""Assignments (issue 16, item 3): unassignCertification ends enrollments (history, progress and
awards stay; audited; an `unassigned` event), ended enrollments leave lists and reports, take
no progress and are not re-evaluated, and assigning again reopens them; assignCertification
takes per-learner due dates, clears one with an explicit null and reports every bad ID at its
index as sent. Every refusal writes nothing. Through GraphQL over the app, on the test
database (SQLite, or PostgreSQL with CERTGRAPH_TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.domain import certifications, enrollments
from gql.domain.certifications import CertificationChanges
from gql.domain.enrollments import Assignment
from gql.domain.errors import DomainErrors, InvalidInput, NotAllowed
from gql.store.models import AuditEvent, Award, CourseProgress, Enrollment, User
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification, table_counts
from tests.conftest import EventLog

ENROLLMENT_FIELDS = "id learner { id } dueAt endedAt status certification { id }"
ASSIGN = (
    "mutation A($cert: ID!, $learners: [ID!], $due: DateTime, $assignments: [AssignmentInput!])"
    " { assignCertification(certificationId: $cert, learnerIds: $learners, dueAt: $due,"
    f" assignments: $assignments) {{ enrollments {{ {ENROLLMENT_FIELDS} }}"
    " errors { code field message } } }"
)
UNASSIGN = (
    "mutation U($cert: ID!, $learners: [ID!]!) {"
    " unassignCertification(certificationId: $cert, learnerIds: $learners) {"
    f" enrollments {{ {ENROLLMENT_FIELDS} }} errors {{ code field message }} }} }}"
)
MY_LIST = "{ viewer { certifications { totalCount edges { node { certification { name } } } } } }"
REPORT = (
    "query R($cert: ID!) { certificationReport(certificationId: $cert) {"
    " enrolled overdue byStatus { status count } expiringWithin(days: 3650) } }"
)
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def assign(
    client: GraphQLClient, world: World, cert: int, **variables: Any
) -> dict[str, Any]:
    data = await client.data(
        ASSIGN,
        {"cert": encode_id("Certification", cert), **variables},
        token=world.admin.token,
    )
    payload: dict[str, Any] = data["assignCertification"]
    return payload


async def unassign(
    client: GraphQLClient, token: str, cert: int | str, learners: list[str]
) -> dict[str, Any]:
    cert_id = cert if isinstance(cert, str) else encode_id("Certification", cert)
    result = await client.run(UNASSIGN, {"cert": cert_id, "learners": learners}, token=token)
    return result


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def audit(action: str) -> list[AuditEvent]:
    return list(await AuditEvent.filter(action=action).order_by("id"))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


# -- assignCertification: every bad ID, at its index ------------------------------------------


async def test_every_bad_id_is_reported_at_its_index_as_sent(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    before = await table_counts(audit=True)
    sent = [
        world.learner.id,
        "garbage",  # does not decode
        encode_id("User", 999),  # no such user
        world.learner.id,  # a duplicate: fine, and the indexes after it stay right
        encode_id("Course", 1),  # another type's ID
        world.other.id,
        "also garbage",
    ]
    payload = await assign(graphql_client, world, cert, learners=sent)
    assert payload["enrollments"] == []
    assert errors_of(payload) == [
        ("NOT_FOUND", ["learnerIds", "1"]),
        ("NOT_FOUND", ["learnerIds", "2"]),
        ("NOT_FOUND", ["learnerIds", "4"]),
        ("NOT_FOUND", ["learnerIds", "6"]),
    ]
    messages = [e["message"] for e in payload["errors"]]
    assert '"garbage" is not a User ID' in messages[0]
    assert messages[1] == "no such user"
    assert "is a Course ID, not a User ID" in messages[2]
    assert '"also garbage"' in messages[3]

    # the per-learner list too, beside learnerIds, each at its own path
    both = await assign(
        graphql_client,
        world,
        cert,
        learners=[world.learner.id, "x"],
        assignments=[{"learnerId": world.other.id}, {"learnerId": encode_id("User", 998)}],
    )
    assert errors_of(both) == [
        ("NOT_FOUND", ["learnerIds", "1"]),
        ("NOT_FOUND", ["assignments", "1", "learnerId"]),
    ]
    # an unknown certification and bad learners: all said at once
    nothing = await graphql_client.data(
        ASSIGN,
        {"cert": encode_id("Certification", 999), "learners": [world.learner.id, "x"]},
        token=world.admin.token,
    )
    assert errors_of(nothing["assignCertification"]) == [
        ("NOT_FOUND", ["certificationId"]),
        ("NOT_FOUND", ["learnerIds", "1"]),
    ]

    assert await table_counts(audit=True) == before
    assert await events.all() == []


async def test_a_deactivated_learner_and_a_repeated_assignment_are_refused(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    await User.filter(id=world.other.user.id).update(deactivated_at=NOW)
    payload = await assign(
        graphql_client,
        world,
        cert,
        learners=[world.learner.id],
        assignments=[
            {"learnerId": world.manager.id, "dueAt": "2026-05-01T00:00:00+00:00"},
            {"learnerId": world.other.id},
            {"learnerId": world.learner.id, "dueAt": None},  # already named in learnerIds
        ],
    )
    assert errors_of(payload) == [
        ("NOT_ALLOWED", ["assignments", "1", "learnerId"]),
        ("INVALID_INPUT", ["assignments", "2", "learnerId"]),
    ]
    assert "learnerIds.0" in payload["errors"][1]["message"]
    assert await Enrollment.all().count() == 0


async def test_domain_refusals_name_each_due_date(world: World) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    naive = datetime(2026, 5, 1)
    with pytest.raises(DomainErrors) as raised:
        await enrollments.assign_certification(
            SYSTEM,
            cert,
            [world.learner.user.id],
            naive,
            assignments=[Assignment(world.other.user.id, naive)],
        )
    assert [e.field for e in raised.value.errors] == [
        ("dueAt",),
        ("assignments", "0", "dueAt"),
    ]
    with pytest.raises(InvalidInput) as empty:
        await enrollments.assign_certification(SYSTEM, cert, [], None)
    assert empty.value.field == ("learnerIds",)
    assert await Enrollment.all().count() == 0


# -- assignCertification: due dates -------------------------------------------------------------


async def test_each_learner_gets_their_own_due_date(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1], days_to_complete=14)
    payload = await assign(
        graphql_client,
        world,
        cert,
        learners=[world.manager.id],
        due="2026-06-30T00:00:00+00:00",
        assignments=[
            {"learnerId": world.learner.id, "dueAt": "2026-04-01T12:00:00+02:00"},
            {"learnerId": world.other.id},  # no dueAt of its own: the call's
        ],
    )
    assert payload["errors"] == []
    assert [(e["learner"]["id"], e["dueAt"]) for e in payload["enrollments"]] == [
        (world.manager.id, "2026-06-30T00:00:00+00:00"),
        (world.learner.id, "2026-04-01T10:00:00+00:00"),
        (world.other.id, "2026-06-30T00:00:00+00:00"),
    ]
    # no due date anywhere: the certification's daysToComplete; an explicit null: none at all
    admin = world.admin
    plain = await assign(
        graphql_client,
        world,
        await make_certification("Plain", world.course_ids[1:2], days_to_complete=14),
        assignments=[{"learnerId": admin.id}, {"learnerId": world.learner.id, "dueAt": None}],
    )
    assert [e["dueAt"] for e in plain["enrollments"]] == [
        iso(frozen_now + timedelta(days=14)),
        None,
    ]


async def test_a_due_date_is_changed_cleared_or_kept(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    first = "2026-04-01T00:00:00+00:00"
    await assign(graphql_client, world, cert, learners=[world.learner.id], due=first)
    await events.clear()

    # assigning again with a new dueAt changes it
    changed = await assign(
        graphql_client, world, cert, learners=[world.learner.id], due="2026-05-01T00:00:00+00:00"
    )
    assert changed["enrollments"][0]["dueAt"] == "2026-05-01T00:00:00+00:00"
    # without one, it is kept (the call's dueAt null is "no change", as it always was)
    kept = await assign(graphql_client, world, cert, learners=[world.learner.id], due=None)
    assert kept["enrollments"][0]["dueAt"] == "2026-05-01T00:00:00+00:00"
    # an assignment's explicit null clears it
    cleared = await assign(
        graphql_client, world, cert, assignments=[{"learnerId": world.learner.id, "dueAt": None}]
    )
    assert cleared["errors"] == []
    assert cleared["enrollments"][0]["dueAt"] is None
    assert (await Enrollment.get(learner_id=world.learner.user.id)).due_at is None

    rows = await audit("assignCertification")
    assert [(r.before, r.after) for r in rows[1:]] == [
        (
            {"origin": "ASSIGNED", "dueAt": first},
            {"origin": "ASSIGNED", "dueAt": "2026-05-01T00:00:00+00:00"},
        ),
        (
            {"origin": "ASSIGNED", "dueAt": "2026-05-01T00:00:00+00:00"},
            {"origin": "ASSIGNED", "dueAt": "2026-05-01T00:00:00+00:00"},
        ),
        (
            {"origin": "ASSIGNED", "dueAt": "2026-05-01T00:00:00+00:00"},
            {"origin": "ASSIGNED", "dueAt": None},
        ),
    ]
    assert await Enrollment.all().count() == 1
    assert await events.types() == []  # a due date's change is no new enrollment


# -- unassignCertification ----------------------------------------------------------------------


async def test_unassigning_ends_the_enrollment_and_keeps_its_history(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1], days_to_complete=30)
    other_cert = await make_certification("Other", world.course_ids[1:2])
    await assign(graphql_client, world, cert, learners=[world.learner.id, world.other.id])
    await assign(graphql_client, world, other_cert, learners=[world.learner.id])
    await enrollments.record_course_progress(
        world.learner.actor, course_id=world.course_ids[0], completed=True
    )
    enrollment = await Enrollment.get(certification_id=cert, learner_id=world.learner.user.id)
    assert enrollment.last_awarded_at is not None
    await events.clear()

    clock.advance(timedelta(days=1))
    result = await unassign(graphql_client, world.admin.token, cert, [world.learner.id])
    payload = result["data"]["unassignCertification"]
    assert payload["errors"] == []
    [ended] = payload["enrollments"]
    assert ended["id"] == encode_id("Enrollment", enrollment.id)
    assert ended["endedAt"] == iso(clock.now())
    assert ended["status"] == "COMPLETED"  # the award stays

    # the row, its progress and its award stay
    stored = await Enrollment.get(id=enrollment.id)
    assert stored.ended_at == clock.now()
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1
    assert await CourseProgress.filter(learner_id=world.learner.user.id).count() == 1

    # audited, with an event
    [row] = await audit("unassignCertification")
    assert (row.actor_id, row.object_type, row.object_id) == (
        world.admin.user.id,
        "Enrollment",
        str(enrollment.id),
    )
    assert row.before == {
        "endedAt": None,
        "origin": "ASSIGNED",
        "dueAt": iso(frozen_now + timedelta(days=30)),
    }
    assert row.after == {"endedAt": iso(clock.now())}
    [event] = await events.named("unassigned")
    assert event.actor_id == world.admin.id
    body = event.body()["data"]
    assert body["learner"]["id"] == world.learner.id
    assert body["certification"] == {"id": encode_id("Certification", cert), "name": "Safety"}
    assert body["enrollmentId"] == ended["id"]
    assert body["dueAt"] == iso(frozen_now + timedelta(days=30))
    assert body["unassignedBy"] == {
        "id": world.admin.id,
        "name": "Ada Admin",
        "email": "ada.admin@example.com",
    }
    assert await events.types() == ["unassigned"]

    # left out of the learner's list and the catalog's viewerEnrollment
    mine = await graphql_client.data(MY_LIST, token=world.learner.token)
    assert mine["viewer"]["certifications"]["totalCount"] == 1
    assert [
        e["node"]["certification"]["name"] for e in mine["viewer"]["certifications"]["edges"]
    ] == ["Other"]
    catalog = await graphql_client.data(
        "query C($id: ID!) { certification(id: $id) { viewerEnrollment { id } } }",
        {"id": encode_id("Certification", cert)},
        token=world.learner.token,
    )
    assert catalog["certification"]["viewerEnrollment"] is None
    # and out of the report: only the other learner counts
    report = await graphql_client.data(
        REPORT, {"cert": encode_id("Certification", cert)}, token=world.admin.token
    )
    counts = {c["status"]: c["count"] for c in report["certificationReport"]["byStatus"]}
    assert report["certificationReport"]["enrolled"] == 1
    assert counts["COMPLETED"] == 0 and counts["ENROLLED"] == 1
    # and out of the admins' enrollments list unless asked
    listed = await graphql_client.data(
        "query E($cert: ID!, $ended: Boolean!) { enrollments(filter: {certificationId: $cert,"
        " includeEnded: $ended}) { totalCount edges { node { id endedAt } } } }",
        {"cert": encode_id("Certification", cert), "ended": False},
        token=world.admin.token,
    )
    assert ended["id"] not in [e["node"]["id"] for e in listed["enrollments"]["edges"]]
    assert listed["enrollments"]["totalCount"] == 1
    asked = await graphql_client.data(
        "query E($cert: ID!, $ended: Boolean!) { enrollments(filter: {certificationId: $cert,"
        " includeEnded: $ended}) { totalCount edges { node { id endedAt } } } }",
        {"cert": encode_id("Certification", cert), "ended": True},
        token=world.admin.token,
    )
    assert {"id": ended["id"], "endedAt": ended["endedAt"]} in [
        e["node"] for e in asked["enrollments"]["edges"]
    ]
    # still readable by its ID, with endedAt
    node = await graphql_client.data(
        "query N($id: ID!) { node(id: $id) { ... on Enrollment { endedAt status } } }",
        {"id": ended["id"]},
        token=world.learner.token,
    )
    assert node["node"] == {"endedAt": ended["endedAt"], "status": "COMPLETED"}


async def test_the_report_leaves_out_an_ended_overdue_or_expiring_enrollment(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    cert = await make_certification(
        "Yearly",
        world.course_ids[:1],
        type_=certifications.CertificationType.RECURRING,
        validity_months=12,
    )
    await assign(
        graphql_client, world, cert, learners=[world.learner.id], due="2026-03-01T00:00:00+00:00"
    )
    await assign(graphql_client, world, cert, learners=[world.other.id])
    await enrollments.record_course_progress(
        world.other.actor, course_id=world.course_ids[0], completed=True
    )
    cert_id = encode_id("Certification", cert)
    report = (await graphql_client.data(REPORT, {"cert": cert_id}, token=world.admin.token))[
        "certificationReport"
    ]
    assert (report["enrolled"], report["overdue"], report["expiringWithin"]) == (2, 1, 1)

    await unassign(graphql_client, world.admin.token, cert, [world.learner.id, world.other.id])
    report = (await graphql_client.data(REPORT, {"cert": cert_id}, token=world.admin.token))[
        "certificationReport"
    ]
    assert (report["enrolled"], report["overdue"], report["expiringWithin"]) == (0, 0, 0)


async def test_unassigning_is_for_admins_only(graphql_client: GraphQLClient, world: World) -> None:
    """Assigning is admins only, so unassigning is too: a manager may not end a report's."""
    cert = await make_certification("Safety", world.course_ids[:1])
    await assign(graphql_client, world, cert, learners=[world.learner.id])
    for person in (world.manager, world.learner):
        result = await unassign(graphql_client, person.token, cert, [world.learner.id])
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Enrollment.get(learner_id=world.learner.user.id)).ended_at is None
    assert len(await audit("denied:unassignCertification")) == 2
    assert await audit("unassignCertification") == []


async def test_unassign_reports_every_bad_id_and_ends_nothing(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    await assign(graphql_client, world, cert, learners=[world.learner.id])
    await events.clear()
    before = await table_counts(audit=True)
    result = await unassign(
        graphql_client,
        world.admin.token,
        cert,
        [world.learner.id, "garbage", world.other.id, encode_id("User", 999), world.learner.id],
    )
    payload = result["data"]["unassignCertification"]
    assert payload["enrollments"] == []
    assert errors_of(payload) == [
        ("NOT_FOUND", ["learnerIds", "1"]),
        ("NOT_FOUND", ["learnerIds", "2"]),  # exists, but not enrolled
        ("NOT_FOUND", ["learnerIds", "3"]),
    ]
    assert "not enrolled" in payload["errors"][1]["message"]
    unknown = await unassign(graphql_client, world.admin.token, "nope", [world.learner.id])
    assert errors_of(unknown["data"]["unassignCertification"]) == [
        ("NOT_FOUND", ["certificationId"])
    ]
    empty = await unassign(graphql_client, world.admin.token, cert, [])
    assert errors_of(empty["data"]["unassignCertification"]) == [("INVALID_INPUT", ["learnerIds"])]

    assert await table_counts(audit=True) == before
    assert (await Enrollment.get(learner_id=world.learner.user.id)).ended_at is None
    assert await events.all() == []


async def test_unassigning_an_ended_enrollment_changes_nothing(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    await assign(graphql_client, world, cert, learners=[world.learner.id])
    first = await unassign(graphql_client, world.admin.token, cert, [world.learner.id])
    ended_at = first["data"]["unassignCertification"]["enrollments"][0]["endedAt"]
    clock.freeze(clock.now() + timedelta(hours=1))
    again = await unassign(graphql_client, world.admin.token, cert, [world.learner.id])
    assert again["data"]["unassignCertification"]["errors"] == []
    assert again["data"]["unassignCertification"]["enrollments"][0]["endedAt"] == ended_at
    assert len(await audit("unassignCertification")) == 1
    assert len(await events.named("unassigned")) == 1


# -- an ended enrollment: no progress counts, no re-evaluation ----------------------------------


async def test_progress_records_but_does_not_count_toward_an_ended_enrollment(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    await assign(graphql_client, world, cert, learners=[world.learner.id])
    await unassign(graphql_client, world.admin.token, cert, [world.learner.id])
    ended = await Enrollment.get(learner_id=world.learner.user.id)
    await events.clear()

    clock.freeze(clock.now() + timedelta(hours=1))
    recorded = await graphql_client.data(
        "mutation P($course: ID!) { recordCourseProgress(input: {courseId: $course,"
        " completed: true}) { progress { percent status } enrollments { id } errors { code } } }",
        {"course": world.course_gid(0)},
        token=world.learner.token,
    )
    payload = recorded["recordCourseProgress"]
    assert payload["errors"] == []
    assert payload["progress"] == {"percent": 100, "status": "COMPLETED"}
    assert payload["enrollments"] == []  # it counts for no enrollment
    after = await Enrollment.get(id=ended.id)
    assert (after.updated_at, after.verdict_status, after.last_awarded_at) == (
        ended.updated_at,
        ended.verdict_status,
        None,
    )
    assert await events.types() == ["progress_recorded"]

    # a change of the certification's rules does not re-evaluate it either
    await certifications.update_certification(
        SYSTEM, cert, CertificationChanges(policy="all-required")
    )
    assert (await Enrollment.get(id=ended.id)).updated_at == ended.updated_at
    assert await Award.all().count() == 0


# -- assigning again, starting again --------------------------------------------------------------


async def test_assigning_again_reopens_the_enrollment(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1], days_to_complete=14)
    await assign(graphql_client, world, cert, learners=[world.learner.id])
    await unassign(graphql_client, world.admin.token, cert, [world.learner.id])
    ended = await Enrollment.get(learner_id=world.learner.user.id)
    # done while ended: counts once it is reopened
    await enrollments.record_course_progress(
        world.learner.actor, course_id=world.course_ids[0], completed=True
    )
    await events.clear()

    clock.advance(timedelta(days=3))
    payload = await assign(graphql_client, world, cert, learners=[world.learner.id])
    assert payload["errors"] == []
    [reopened] = payload["enrollments"]
    assert reopened["id"] == encode_id("Enrollment", ended.id)
    assert reopened["endedAt"] is None
    # as a new assignment: due after daysToComplete from now
    assert reopened["dueAt"] == iso(clock.now() + timedelta(days=14))
    assert reopened["status"] == "COMPLETED"  # re-evaluated: the progress made while ended
    assert await Enrollment.all().count() == 1

    row = (await audit("assignCertification"))[-1]
    assert row.before == {
        "endedAt": iso(ended.ended_at),
        "origin": "ASSIGNED",
        "dueAt": iso(frozen_now + timedelta(days=14)),
    }
    assert row.after == {"endedAt": None, "origin": "ASSIGNED", "dueAt": reopened["dueAt"]}
    assert await events.types() == ["enrolled", "certification_completed"]
    [enrolled] = await events.named("enrolled")
    assert enrolled.body()["data"]["origin"] == "ASSIGNED"
    assert enrolled.body()["data"]["assignedBy"]["id"] == world.admin.id
    mine = await graphql_client.data(MY_LIST, token=world.learner.token)
    assert mine["viewer"]["certifications"]["totalCount"] == 1


async def test_starting_again_reopens_a_published_one_as_a_self_enrolment(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    retired = await make_certification("Old", world.course_ids[1:2])
    for each in (cert, retired):
        await assign(graphql_client, world, each, learners=[world.learner.id])
        await unassign(graphql_client, world.admin.token, each, [world.learner.id])
    await certifications.retire_certification(SYSTEM, retired)
    await events.clear()

    started = await enrollments.start_certification(world.learner.actor, cert)
    assert (started.ended_at, started.origin, started.assigned_by_id) == (None, "SELF", None)
    assert started.started_at is not None
    [enrolled] = await events.named("enrolled")
    assert enrolled.body()["data"]["origin"] == "SELF"
    assert enrolled.body()["data"]["assignedBy"] is None
    [row] = await audit("startCertification")
    assert row.after is not None and row.after["origin"] == "SELF"

    with pytest.raises(NotAllowed):
        await enrollments.start_certification(world.learner.actor, retired)
    assert (await Enrollment.get(certification_id=retired)).ended_at is not None
