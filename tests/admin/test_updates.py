"""Partial updates and the course lifecycle (issue 16, item 4): updateCertification and
updateCourse change only the fields given (an explicit null clears a nullable one; the policy
changes only when named); retireCourse stops new links while existing certifications keep the
course; deleteCourse deletes only a course nothing refers to. Every refusal writes nothing.
Through GraphQL over the app, on the test database (SQLite, or PostgreSQL with
CERTGRAPH_TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gql import clock
from gql.api.ids import encode_id
from gql.domain import certifications, courses, enrollments
from gql.domain.changes import UNCHANGED
from gql.store.models import AuditEvent, Certification, CertificationCourse, Course, Enrollment
from gql.vocabulary import CertificationKind, CertificationType
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification, table_counts

CERT_FIELDS = (
    "id name overview kind type issuer validityMonths recertificationWindowDays "
    "daysToComplete policy { name config } badge { name }"
)
UPDATE_CERT = (
    "mutation U($id: ID!, $input: CertificationInput, $changes: CertificationChanges) {"
    " updateCertification(id: $id, input: $input, changes: $changes) {"
    f" certification {{ {CERT_FIELDS} }} errors {{ code field message }} }} }}"
)
COURSE_FIELDS = "id name description durationMinutes retiredAt"
UPDATE_COURSE = (
    "mutation U($id: ID!, $input: CourseInput, $changes: CourseChanges) {"
    " updateCourse(id: $id, input: $input, changes: $changes) {"
    f" course {{ {COURSE_FIELDS} }} errors {{ code field message }} }} }}"
)
RETIRE = (
    "mutation R($id: ID!) { retireCourse(id: $id) {"
    f" course {{ {COURSE_FIELDS} }} errors {{ code field message }} }} }}"
)
DELETE = (
    "mutation D($id: ID!) { deleteCourse(id: $id) { deletedId errors { code field message } } }"
)
SET_COURSES = (
    "mutation S($cert: ID!, $courses: [CertificationCourseInput!]!) {"
    " setCertificationCourses(certificationId: $cert, courses: $courses) {"
    " certification { courses { course { id retiredAt } mandatory } }"
    " errors { code field message } } }"
)
COURSES = (
    "query C($all: Boolean! = false) { courses(includeRetired: $all, first: 50) {"
    " totalCount edges { node { id name retiredAt } } } }"
)


async def update_cert(
    client: GraphQLClient, token: str, cert_id: int, **arguments: Any
) -> dict[str, Any]:
    data = await client.data(
        UPDATE_CERT, {"id": encode_id("Certification", cert_id), **arguments}, token=token
    )
    payload: dict[str, Any] = data["updateCertification"]
    return payload


async def update_course(
    client: GraphQLClient, token: str, course_id: int, **arguments: Any
) -> dict[str, Any]:
    data = await client.data(
        UPDATE_COURSE, {"id": encode_id("Course", course_id), **arguments}, token=token
    )
    payload: dict[str, Any] = data["updateCourse"]
    return payload


async def audit(action: str) -> list[AuditEvent]:
    return list(await AuditEvent.filter(action=action).order_by("id"))


async def external_cert(world: World) -> int:
    """An EXTERNAL certification with a policy config that is not the default."""
    return await make_certification(
        "AWS Solutions Architect",
        [],
        kind=CertificationKind.EXTERNAL,
        issuer="Amazon",
        policy="external-evidence",
        policy_config={"requiresApproval": False},
        days_to_complete=30,
        badge_name="AWS SA",
    )


# -- updateCertification --------------------------------------------------------------------


async def test_renaming_keeps_the_policy_and_its_config(
    graphql_client: GraphQLClient, world: World
) -> None:
    """The issue's bug: a rename without `policy` reset it to mandatory-subset, config gone."""
    internal = await make_certification("Safety", world.course_ids[:1], policy="all-required")
    external = await external_cert(world)
    config_before = (await Certification.get(id=external)).policy_config
    assert config_before["requiresApproval"] is False

    # `changes`: only the name
    renamed = await update_cert(
        graphql_client, world.admin.token, external, changes={"name": "AWS SA Professional"}
    )
    assert renamed["errors"] == []
    cert = renamed["certification"]
    assert cert["name"] == "AWS SA Professional"
    assert cert["policy"] == {"name": "external-evidence", "config": config_before}
    assert (cert["issuer"], cert["daysToComplete"], cert["badge"]) == (
        "Amazon",
        30,
        {"name": "AWS SA"},
    )

    # `input` (the call): name, kind and type, no policy
    again = await update_cert(
        graphql_client,
        world.admin.token,
        internal,
        input={"name": "Safety 2026", "kind": "INTERNAL", "type": "PERPETUAL"},
    )
    assert again["errors"] == []
    assert again["certification"]["policy"]["name"] == "all-required"
    stored = await Certification.get(id=internal)
    assert (stored.name, stored.policy_name) == ("Safety 2026", "all-required")

    [row] = [r for r in await audit("updateCertification") if r.object_id == str(external)]
    assert row.before is not None and row.after is not None
    assert (row.before["name"], row.after["name"]) == ("AWS Solutions Architect", cert["name"])
    assert row.before["policyConfig"] == row.after["policyConfig"] == config_before


async def test_an_explicit_null_clears_a_nullable_field(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_cert(world)
    cleared = await update_cert(
        graphql_client,
        world.admin.token,
        cert,
        changes={"daysToComplete": None, "badgeName": None, "overview": None},
    )
    assert cleared["errors"] == []
    got = cleared["certification"]
    assert (got["daysToComplete"], got["badge"], got["overview"]) == (None, None, "")
    # not named: unchanged
    assert got["issuer"] == "Amazon"
    assert got["policy"]["config"]["requiresApproval"] is False

    # a cleared policy is the kind's default, with its default config
    await update_cert(graphql_client, world.admin.token, cert, changes={"policy": "all-required"})
    defaulted = await update_cert(graphql_client, world.admin.token, cert, changes={"policy": None})
    assert defaulted["certification"]["policy"] == {
        "name": "external-evidence",
        "config": {
            "requiresApproval": True,
            "completionDate": "approval",
            "requireMandatoryCourses": False,
        },
    }
    # a cleared window is the default 30 days
    window = await update_cert(
        graphql_client,
        world.admin.token,
        cert,
        changes={"type": "RECURRING", "validityMonths": 12, "recertificationWindowDays": 90},
    )
    assert window["errors"] == []
    assert window["certification"]["recertificationWindowDays"] == 90
    reset = await update_cert(
        graphql_client, world.admin.token, cert, changes={"recertificationWindowDays": None}
    )
    assert reset["certification"]["recertificationWindowDays"] == 30


async def test_the_policy_changes_only_when_named_and_its_config_follows_it(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    # policy named: another policy, its default config
    other = await update_cert(
        graphql_client, world.admin.token, cert, changes={"policy": "all-required"}
    )
    assert other["certification"]["policy"] == {"name": "all-required", "config": {}}
    # changing the kind does not change the policy
    kind = await update_cert(
        graphql_client,
        world.admin.token,
        cert,
        changes={"kind": "EXTERNAL", "issuer": "Board"},
    )
    assert kind["errors"] == []
    assert kind["certification"]["policy"]["name"] == "all-required"
    # a config alone is checked against the current policy
    bad = await update_cert(
        graphql_client, world.admin.token, cert, changes={"policyConfig": {"minCourses": 2}}
    )
    assert bad["certification"] is None
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [
        ("POLICY_CONFIG_INVALID", ["changes", "policyConfig"])
    ]
    assert (await Certification.get(id=cert)).policy_name == "all-required"


async def test_bad_updates_are_refused_and_write_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_cert(world)
    before = await table_counts(audit=True)
    stored = await Certification.get(id=cert)
    cases: list[tuple[dict[str, Any], tuple[str, list[str]]]] = [
        ({"changes": {"name": None}}, ("INVALID_INPUT", ["changes", "name"])),
        ({"changes": {"kind": None}}, ("INVALID_INPUT", ["changes", "kind"])),
        ({"changes": {"name": "  "}}, ("INVALID_INPUT", ["changes", "name"])),
        ({"changes": {"issuer": None}}, ("INVALID_INPUT", ["changes", "issuer"])),
        # RECURRING needs validityMonths: the merged definition is checked
        ({"changes": {"type": "RECURRING"}}, ("INVALID_INPUT", ["changes", "validityMonths"])),
        ({"changes": {"policy": "nope"}}, ("POLICY_UNKNOWN", ["changes", "policy"])),
        (
            {"changes": {"policyConfig": [1]}},
            ("POLICY_CONFIG_INVALID", ["changes", "policyConfig"]),
        ),
        (
            {"input": {"name": "X", "kind": "EXTERNAL", "type": "PERPETUAL", "issuer": None}},
            ("INVALID_INPUT", ["input", "issuer"]),
        ),
        ({}, ("INVALID_INPUT", ["changes"])),
        (
            {"input": {"name": "X", "kind": "EXTERNAL", "type": "PERPETUAL"}, "changes": {}},
            ("INVALID_INPUT", ["changes"]),
        ),
    ]
    for arguments, expected in cases:
        payload = await update_cert(graphql_client, world.admin.token, cert, **arguments)
        assert payload["certification"] is None, arguments
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [expected], arguments
    unknown = await graphql_client.data(
        UPDATE_CERT,
        {"id": encode_id("Certification", 999), "changes": {"name": "X"}},
        token=world.admin.token,
    )
    assert unknown["updateCertification"]["errors"][0]["code"] == "NOT_FOUND"

    assert await table_counts(audit=True) == before
    again = await Certification.get(id=cert)
    assert (again.name, again.updated_at, again.policy_config) == (
        stored.name,
        stored.updated_at,
        stored.policy_config,
    )


async def test_an_update_that_changes_nothing_writes_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_cert(world)
    stored = await Certification.get(id=cert)
    clock.freeze(clock.now() + timedelta(hours=1))
    same = await update_cert(
        graphql_client,
        world.admin.token,
        cert,
        changes={"name": "AWS Solutions Architect", "issuer": "Amazon"},
    )
    assert same["errors"] == [] and same["certification"]["name"] == "AWS Solutions Architect"
    assert await audit("updateCertification") == []
    assert (await Certification.get(id=cert)).updated_at == stored.updated_at


async def test_a_rule_change_reevaluates_and_a_rename_does_not(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Safety", world.course_ids[:2], mandatory=[True, False])
    await enrollments.assign_certification(SYSTEM, cert, [world.learner.user.id], None)
    await enrollments.record_course_progress(
        SYSTEM, course_id=world.course_ids[0], learner_id=world.learner.user.id, completed=True
    )
    enrollment = await Enrollment.get(certification_id=cert)
    assert enrollment.last_awarded_at is not None  # mandatory-subset: the mandatory one is done

    clock.freeze(clock.now() + timedelta(hours=1))
    await update_cert(graphql_client, world.admin.token, cert, changes={"name": "Renamed"})
    assert (await Enrollment.get(id=enrollment.id)).updated_at == enrollment.updated_at

    await update_cert(graphql_client, world.admin.token, cert, changes={"policy": "all-required"})
    reevaluated = await Enrollment.get(id=enrollment.id)
    assert reevaluated.updated_at > enrollment.updated_at
    assert reevaluated.verdict_status == "STARTED"  # all-required: one of two courses


async def test_the_domain_tells_unchanged_from_cleared(world: World) -> None:
    cert = await external_cert(world)
    kept = await certifications.update_certification(
        SYSTEM, cert, certifications.CertificationChanges(days_to_complete=UNCHANGED, name="N")
    )
    assert (kept.name, kept.days_to_complete, kept.badge_name) == ("N", 30, "AWS SA")
    cleared = await certifications.update_certification(
        SYSTEM, cert, certifications.CertificationChanges(days_to_complete=None)
    )
    assert (cleared.name, cleared.days_to_complete) == ("N", None)
    # a CertificationData names every field: a full replacement, as before
    replaced = await certifications.update_certification(
        SYSTEM,
        cert,
        certifications.CertificationData(
            name="Full", kind=CertificationKind.INTERNAL, type=CertificationType.PERPETUAL
        ),
    )
    assert (replaced.policy_name, replaced.badge_name) == ("mandatory-subset", None)


# -- updateCourse ---------------------------------------------------------------------------


async def test_course_updates_change_only_what_is_given(
    graphql_client: GraphQLClient, world: World
) -> None:
    course = await courses.create_course(
        SYSTEM, name="Kubernetes", description="Pods", duration_minutes=90
    )
    described = await update_course(
        graphql_client, world.admin.token, course.id, changes={"description": "Pods and more"}
    )
    assert described["errors"] == []
    assert described["course"] == {
        "id": encode_id("Course", course.id),
        "name": "Kubernetes",
        "description": "Pods and more",
        "durationMinutes": 90,
        "retiredAt": None,
    }
    renamed = await update_course(
        graphql_client, world.admin.token, course.id, input={"name": " K8s  basics "}
    )
    assert renamed["course"]["name"] == "K8s basics"
    assert renamed["course"]["durationMinutes"] == 90
    cleared = await update_course(
        graphql_client,
        world.admin.token,
        course.id,
        changes={"durationMinutes": None, "description": None},
    )
    assert (cleared["course"]["durationMinutes"], cleared["course"]["description"]) == (None, "")

    rows = [r for r in await audit("updateCourse") if r.object_id == str(course.id)]
    assert (rows[0].before, rows[0].after) == (
        {"name": "Kubernetes", "description": "Pods", "durationMinutes": 90},
        {"name": "Kubernetes", "description": "Pods and more", "durationMinutes": 90},
    )
    assert len(rows) == 3


async def test_bad_course_updates_write_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    course_id = world.course_ids[0]
    before = await table_counts(audit=True)
    cases: list[tuple[dict[str, Any], tuple[str, list[str]]]] = [
        ({"changes": {"name": None}}, ("INVALID_INPUT", ["changes", "name"])),
        ({"changes": {"name": ""}}, ("INVALID_INPUT", ["changes", "name"])),
        ({"changes": {"durationMinutes": 0}}, ("INVALID_INPUT", ["changes", "durationMinutes"])),
        (
            {"input": {"name": "x", "durationMinutes": -1}},
            ("INVALID_INPUT", ["input", "durationMinutes"]),
        ),
        ({}, ("INVALID_INPUT", ["changes"])),
    ]
    for arguments, expected in cases:
        payload = await update_course(graphql_client, world.admin.token, course_id, **arguments)
        assert payload["course"] is None, arguments
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [expected], arguments
    learner = await graphql_client.run(
        UPDATE_COURSE,
        {"id": encode_id("Course", course_id), "changes": {"name": "Mine"}},
        token=world.learner.token,
    )
    assert learner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    after = await table_counts(audit=True)
    # only the refusal's own audit row
    assert after == {**before, "AuditEvent": before["AuditEvent"] + 1}
    assert (await Course.get(id=course_id)).name == "Course 0"


# -- retireCourse ---------------------------------------------------------------------------


async def test_a_retired_course_takes_no_new_links_and_existing_ones_stay(
    graphql_client: GraphQLClient, world: World
) -> None:
    kept, retired_id = world.course_ids[0], world.course_ids[1]
    cert = await make_certification("Has it", [kept, retired_id])
    other = await make_certification("Wants it", [kept], publish=False)

    retired = await graphql_client.data(
        RETIRE, {"id": encode_id("Course", retired_id)}, token=world.admin.token
    )
    assert retired["retireCourse"]["errors"] == []
    retired_at = retired["retireCourse"]["course"]["retiredAt"]
    assert retired_at is not None
    [row] = await audit("retireCourse")
    assert (row.object_id, row.before, row.after) == (
        str(retired_id),
        {"retiredAt": None},
        {"retiredAt": datetime.fromisoformat(retired_at).isoformat()},
    )
    # retiring again changes nothing
    again = await graphql_client.data(
        RETIRE, {"id": encode_id("Course", retired_id)}, token=world.admin.token
    )
    assert again["retireCourse"]["course"]["retiredAt"] == retired_at
    assert len(await audit("retireCourse")) == 1

    # the certification that has it keeps it, also when its courses are set again
    same = await graphql_client.data(
        SET_COURSES,
        {
            "cert": encode_id("Certification", cert),
            "courses": [
                {"courseId": encode_id("Course", retired_id), "mandatory": False},
                {"courseId": encode_id("Course", kept), "mandatory": True},
            ],
        },
        token=world.admin.token,
    )
    assert same["setCertificationCourses"]["errors"] == []
    assert [
        c["course"]["retiredAt"] is not None
        for c in same["setCertificationCourses"]["certification"]["courses"]
    ] == [True, False]

    # another certification may not take it on: refused at its index, nothing written
    before = await table_counts(audit=True)
    refused = await graphql_client.data(
        SET_COURSES,
        {
            "cert": encode_id("Certification", other),
            "courses": [
                {"courseId": encode_id("Course", kept), "mandatory": True},
                {"courseId": encode_id("Course", retired_id), "mandatory": True},
                {"courseId": encode_id("Course", 999), "mandatory": True},
            ],
        },
        token=world.admin.token,
    )
    errors = refused["setCertificationCourses"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("NOT_ALLOWED", ["courses", "1", "courseId"]),
        ("NOT_FOUND", ["courses", "2", "courseId"]),
    ]
    assert "retired" in errors[0]["message"]
    assert await table_counts(audit=True) == before
    assert await CertificationCourse.filter(certification_id=other).count() == 1

    # progress on it still records
    recorded = await enrollments.record_course_progress(
        world.learner.actor, course_id=retired_id, percent=40
    )
    assert recorded.progress.percent == 40


async def test_courses_lists_leave_retired_ones_out_unless_asked(
    graphql_client: GraphQLClient, world: World
) -> None:
    await courses.retire_course(SYSTEM, world.course_ids[2])
    listed = await graphql_client.data(COURSES, token=world.learner.token)
    names = [e["node"]["name"] for e in listed["courses"]["edges"]]
    assert names == ["Course 0", "Course 1", "Course 3"]
    assert listed["courses"]["totalCount"] == 3
    everything = await graphql_client.data(COURSES, {"all": True}, token=world.learner.token)
    assert [
        (e["node"]["name"], e["node"]["retiredAt"] is not None)
        for e in everything["courses"]["edges"]
    ] == [("Course 0", False), ("Course 1", False), ("Course 2", True), ("Course 3", False)]
    # still readable by its ID
    one = await graphql_client.data(
        "query C($id: ID!) { course(id: $id) { name retiredAt } }",
        {"id": world.course_gid(2)},
        token=world.learner.token,
    )
    assert one["course"]["name"] == "Course 2" and one["course"]["retiredAt"] is not None


async def test_only_admins_retire_and_delete_courses(
    graphql_client: GraphQLClient, world: World
) -> None:
    before = await table_counts()
    for document, name in ((RETIRE, "retireCourse"), (DELETE, "deleteCourse")):
        result = await graphql_client.run(
            document, {"id": world.course_gid(0)}, token=world.manager.token
        )
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", name
    assert await table_counts() == before
    assert {r.action for r in await AuditEvent.filter(action__startswith="denied:")} == {
        "denied:retireCourse",
        "denied:deleteCourse",
    }
    assert (await Course.get(id=world.course_ids[0])).retired_at is None


# -- deleteCourse ---------------------------------------------------------------------------


async def test_a_course_nothing_refers_to_is_deleted(
    graphql_client: GraphQLClient, world: World
) -> None:
    course = await courses.create_course(SYSTEM, name="Duplicate from a failed run")
    deleted = await graphql_client.data(
        DELETE, {"id": encode_id("Course", course.id)}, token=world.admin.token
    )
    assert deleted["deleteCourse"] == {"deletedId": encode_id("Course", course.id), "errors": []}
    assert not await Course.filter(id=course.id).exists()
    [row] = await audit("deleteCourse")
    assert row.object_id == str(course.id)
    assert row.before is not None and row.before["name"] == "Duplicate from a failed run"
    assert row.actor_id == world.admin.user.id

    gone = await graphql_client.data(
        DELETE, {"id": encode_id("Course", course.id)}, token=world.admin.token
    )
    assert gone["deleteCourse"]["errors"][0]["code"] == "NOT_FOUND"
    undecodable = await graphql_client.data(DELETE, {"id": "nope"}, token=world.admin.token)
    assert [(e["code"], e["field"]) for e in undecodable["deleteCourse"]["errors"]] == [
        ("NOT_FOUND", ["id"])
    ]


async def test_a_course_in_use_is_not_deleted(graphql_client: GraphQLClient, world: World) -> None:
    linked = world.course_ids[0]
    await make_certification("Uses it", [linked], publish=False)
    with_progress = world.course_ids[1]
    await enrollments.record_course_progress(
        world.learner.actor, course_id=with_progress, percent=10
    )
    # retired does not make it deletable
    await courses.retire_course(SYSTEM, with_progress)
    before = await table_counts(audit=True)
    for course_id, says in ((linked, "certification"), (with_progress, "progress")):
        refused = await graphql_client.data(
            DELETE, {"id": encode_id("Course", course_id)}, token=world.admin.token
        )
        [error] = refused["deleteCourse"]["errors"]
        assert (error["code"], error["field"]) == ("NOT_ALLOWED", ["id"])
        assert says in error["message"]
        assert refused["deleteCourse"]["deletedId"] is None
    assert await table_counts(audit=True) == before
    assert await Course.filter(id__in=[linked, with_progress]).count() == 2


async def test_domain_update_course_keywords(world: World) -> None:
    """Callers of the domain name only what changes; a stored value is kept otherwise."""
    course = await courses.create_course(SYSTEM, name="A", description="d", duration_minutes=5)
    updated = await courses.update_course(SYSTEM, course.id, duration_minutes=None)
    assert (updated.name, updated.description, updated.duration_minutes) == ("A", "d", None)
    assert (await Course.get(id=course.id)).description == "d"
