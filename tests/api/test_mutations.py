"""Every mutation through HTTP: the change, its payload, and its UserErrors."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.api.mutations import CoursePayload, ImportPayload, run_use_case
from gql.api.tokens import ApiTokenPayload
from gql.domain import certifications, enrollments
from gql.domain.access import Actor
from gql.domain.errors import ErrorCode, Forbidden, InvalidInput, NotFound
from gql.store import models
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification

ENROLLMENT_FIELDS = """
  id status progressPercent explanation cycle enrolledAt startedAt dueAt overdue
  completedAt expiresAt awards { cycle awardedAt expiresAt }
  learner { name } certification { name }
  pendingCourses { status percent course { name } }
  courses { status percent completedAt course { name } }
"""

START = (
    "mutation S($id: ID!) { startCertification(certificationId: $id) { enrollment { "
    + ENROLLMENT_FIELDS
    + "} errors { code message field } } }"
)

PROGRESS = (
    "mutation P($input: RecordCourseProgressInput!) { recordCourseProgress(input: $input) {"
    " progress { status percent startedAt completedAt updatedAt course { name } }"
    " enrollments { " + ENROLLMENT_FIELDS + "} errors { code message field } } }"
)


async def start(graphql_client: GraphQLClient, token: str, cert: int) -> dict[str, Any]:
    data = await graphql_client.data(START, {"id": encode_id("Certification", cert)}, token=token)
    payload: dict[str, Any] = data["startCertification"]
    return payload


async def progress(graphql_client: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    data = await graphql_client.data(PROGRESS, {"input": fields}, token=token)
    payload: dict[str, Any] = data["recordCourseProgress"]
    return payload


async def test_start_certification_enrols_once_and_starts_once(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification("Cloud", world.course_ids[:2], days_to_complete=10)
    first = await start(graphql_client, world.learner.token, cert)
    assert first["errors"] == []
    enrollment = first["enrollment"]
    assert enrollment["status"] == "STARTED"
    assert enrollment["startedAt"] == enrollment["enrolledAt"] == frozen_now.isoformat()
    assert enrollment["dueAt"] == (frozen_now + timedelta(days=10)).isoformat()
    assert enrollment["learner"] == {"name": "Lea Learner"}
    assert enrollment["cycle"] == 1 and enrollment["progressPercent"] == 0

    clock.advance(timedelta(hours=2))
    again = (await start(graphql_client, world.learner.token, cert))["enrollment"]
    assert again["id"] == enrollment["id"]
    assert again["startedAt"] == frozen_now.isoformat()
    assert await models.Enrollment.filter(learner_id=world.learner.user.id).count() == 1


async def test_start_refuses_drafts_and_retired(
    graphql_client: GraphQLClient, world: World
) -> None:
    draft = await make_certification("Draft", world.course_ids[:1], publish=False)
    retired = await make_certification("Retired", world.course_ids[:1])
    await certifications.retire_certification(SYSTEM, retired)
    refused = await start(graphql_client, world.learner.token, draft)
    assert refused == {
        "enrollment": None,
        "errors": [
            {"code": "NOT_FOUND", "message": "no such certification", "field": ["certificationId"]}
        ],
    }
    # a retired certification takes no new enrollments and reads as missing to newcomers
    retired_payload = await start(graphql_client, world.learner.token, retired)
    assert [e["code"] for e in retired_payload["errors"]] == ["NOT_FOUND"]
    assert await models.Enrollment.all().count() == 0


async def test_player_queue_after_start_and_progress(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    """pendingCourses (here every course counts: all-required): the latest active started
    course first, then other started ones by recent activity, then the not-started ones in
    order, mandatory before optional."""
    course_ids = world.course_ids
    cert = await make_certification(
        "Player", course_ids, mandatory=[False, True, False, True], policy="all-required"
    )
    started = await start(graphql_client, world.learner.token, cert)
    queue = [c["course"]["name"] for c in started["enrollment"]["pendingCourses"]]
    assert queue == ["Course 1", "Course 3", "Course 0", "Course 2"]

    await progress(graphql_client, world.learner.token, courseId=world.course_gid(2), percent=20)
    clock.advance(timedelta(minutes=10))
    recorded = await progress(
        graphql_client, world.learner.token, courseId=world.course_gid(0), percent=50
    )
    (enrollment,) = recorded["enrollments"]
    queue = [(c["course"]["name"], c["percent"]) for c in enrollment["pendingCourses"]]
    assert queue == [("Course 0", 50), ("Course 2", 20), ("Course 1", 0), ("Course 3", 0)]

    clock.advance(timedelta(minutes=10))
    recorded = await progress(
        graphql_client, world.learner.token, courseId=world.course_gid(2), percent=30
    )
    queue = [c["course"]["name"] for c in recorded["enrollments"][0]["pendingCourses"]]
    assert queue == ["Course 2", "Course 0", "Course 1", "Course 3"]
    courses = [c["course"]["name"] for c in recorded["enrollments"][0]["courses"]]
    assert courses == ["Course 0", "Course 1", "Course 2", "Course 3"]


async def test_recording_progress_until_completed(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification("Done", world.course_ids[:3], mandatory=[True, True, False])
    await start(graphql_client, world.learner.token, cert)
    token = world.learner.token

    half = await progress(graphql_client, token, courseId=world.course_gid(0), percent=100)
    assert half["errors"] == []
    assert half["progress"]["status"] == "COMPLETED"
    assert half["progress"]["completedAt"] == frozen_now.isoformat()
    (enrollment,) = half["enrollments"]
    assert enrollment["status"] == "STARTED" and enrollment["progressPercent"] == 50

    lower = await progress(graphql_client, token, courseId=world.course_gid(0), percent=10)
    assert lower["progress"]["percent"] == 100  # a late, lower report is ignored

    clock.advance(timedelta(days=1))
    done = await progress(graphql_client, token, courseId=world.course_gid(1), completed=True)
    (enrollment,) = done["enrollments"]
    assert enrollment["status"] == "COMPLETED"
    assert enrollment["progressPercent"] == 100
    assert enrollment["completedAt"] == (frozen_now + timedelta(days=1)).isoformat()
    assert enrollment["expiresAt"] is None
    assert enrollment["awards"] == [
        {"cycle": 1, "awardedAt": enrollment["completedAt"], "expiresAt": None}
    ]
    # complete: the policy requires nothing more (the optional Course 2 is not pending)
    assert enrollment["pendingCourses"] == []
    assert await models.Award.all().count() == 1


async def test_two_mutations_in_one_document_each_see_the_state_before_them(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Pair", world.course_ids[:2])
    await start(graphql_client, world.learner.token, cert)
    data = await graphql_client.data(
        "mutation M($a: ID!, $b: ID!) {"
        " first: recordCourseProgress(input: {courseId: $a, completed: true})"
        " { enrollments { status progressPercent } }"
        " second: recordCourseProgress(input: {courseId: $b, completed: true})"
        " { enrollments { status progressPercent } } }",
        {"a": world.course_gid(0), "b": world.course_gid(1)},
        token=world.learner.token,
    )
    assert data["first"]["enrollments"] == [{"status": "STARTED", "progressPercent": 50}]
    assert data["second"]["enrollments"] == [{"status": "COMPLETED", "progressPercent": 100}]


async def test_progress_input_errors(graphql_client: GraphQLClient, world: World) -> None:
    token = world.learner.token
    too_much = await progress(graphql_client, token, courseId=world.course_gid(0), percent=150)
    assert too_much["errors"] == [
        {
            "code": "INVALID_INPUT",
            "message": "percent must be between 0 and 100",
            "field": ["input", "percent"],
        }
    ]
    assert too_much["progress"] is None and too_much["enrollments"] == []
    nothing = await progress(graphql_client, token, courseId=world.course_gid(0))
    assert [e["code"] for e in nothing["errors"]] == ["INVALID_INPUT"]
    unknown = await progress(graphql_client, token, courseId=encode_id("Course", 4242), percent=5)
    assert unknown["errors"][0]["code"] == "NOT_FOUND"
    assert await models.CourseProgress.all().count() == 0


async def test_only_admins_back_date_or_record_for_others(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("History", world.course_ids[:1])
    await enrollments.start_certification(world.other.actor, cert)
    back_dated = "2025-06-01T12:00:00+00:00"

    learner = await graphql_client.run(
        PROGRESS,
        {"input": {"courseId": world.course_gid(0), "completedAt": back_dated}},
        token=world.learner.token,
    )
    assert learner["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    admin = await progress(
        graphql_client,
        world.admin.token,
        courseId=world.course_gid(0),
        learnerId=world.other.id,
        completedAt=back_dated,
    )
    assert admin["errors"] == []
    assert admin["progress"]["completedAt"] == back_dated
    (enrollment,) = admin["enrollments"]
    assert enrollment["learner"] == {"name": "Otto Other"}
    assert enrollment["status"] == "COMPLETED" and enrollment["completedAt"] == back_dated


async def test_a_naive_datetime_is_refused_by_the_scalar(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run(
        PROGRESS,
        {"input": {"courseId": world.course_gid(0), "completedAt": "2025-06-01T12:00:00"}},
        token=world.admin.token,
    )
    assert result.get("data") is None
    assert "needs a UTC offset" in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


CREATE_USER = """
mutation U($input: UserInput!) {
  createUser(input: $input) { user { id name email role manager { name } } errors { code field } }
}"""


async def test_create_user_and_issue_a_token_that_works(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = await graphql_client.data(
        CREATE_USER,
        {
            "input": {
                "name": "Nia New",
                "email": "NIA@example.com",
                "role": "LEARNER",
                "managerId": world.manager.id,
            }
        },
        token=world.admin.token,
    )
    payload = made["createUser"]
    assert payload["errors"] == []
    user = payload["user"]
    assert user["email"] == "nia@example.com" and user["manager"] == {"name": "Max Manager"}

    issued = await graphql_client.data(
        "mutation T($id: ID!) { createApiToken(userId: $id) { token errors { code } } }",
        {"id": user["id"]},
        token=world.admin.token,
    )
    token = issued["createApiToken"]["token"]
    assert token and issued["createApiToken"]["errors"] == []
    me = await graphql_client.data("{ viewer { id name } }", token=token)
    assert me["viewer"] == {"id": user["id"], "name": "Nia New"}
    stored = await models.ApiToken.filter(
        user_id=(await models.User.get(email="nia@example.com")).id
    )
    assert [row.token_hash for row in stored] != [token]  # only a hash is stored


@pytest.mark.parametrize(
    ("user_input", "code", "field"),
    [
        (
            {"name": "Dup", "email": "lea.learner@example.com", "role": "LEARNER"},
            "CONFLICT",
            ["email"],
        ),
        ({"name": "Bad", "email": "not-an-email", "role": "LEARNER"}, "INVALID_INPUT", ["email"]),
        ({"name": "  ", "email": "x@example.com", "role": "LEARNER"}, "INVALID_INPUT", ["name"]),
    ],
)
async def test_create_user_errors(
    graphql_client: GraphQLClient,
    world: World,
    user_input: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    before = await models.User.all().count()
    data = await graphql_client.data(CREATE_USER, {"input": user_input}, token=world.admin.token)
    assert data["createUser"] == {"user": None, "errors": [{"code": code, "field": field}]}
    assert await models.User.all().count() == before


async def test_create_user_with_a_learner_as_manager_is_refused(
    graphql_client: GraphQLClient, world: World
) -> None:
    data = await graphql_client.data(
        CREATE_USER,
        {
            "input": {
                "name": "Kid",
                "email": "kid@example.com",
                "role": "LEARNER",
                "managerId": world.other.id,
            }
        },
        token=world.admin.token,
    )
    assert data["createUser"]["errors"] == [{"code": "INVALID_INPUT", "field": ["managerId"]}]


async def test_create_api_token_for_nobody(graphql_client: GraphQLClient, world: World) -> None:
    data = await graphql_client.data(
        'mutation { createApiToken(userId: "nope") { token errors { code field } } }',
        token=world.admin.token,
    )
    assert data["createApiToken"] == {
        "token": None,
        "errors": [{"code": "NOT_FOUND", "field": ["userId"]}],
    }


COURSE_FIELDS = "course { id name description durationMinutes } errors { code field }"


async def test_create_and_update_course(graphql_client: GraphQLClient, world: World) -> None:
    made = await graphql_client.data(
        'mutation { createCourse(input: {name: " Kubernetes  101 ", durationMinutes: 90}) { '
        + COURSE_FIELDS
        + " } }",
        token=world.admin.token,
    )
    course = made["createCourse"]["course"]
    assert course["name"] == "Kubernetes 101" and course["description"] == ""
    updated = await graphql_client.data(
        'mutation U($id: ID!) { updateCourse(id: $id, input: {name: "K8s", description: "pods"})'
        " { " + COURSE_FIELDS + " } }",
        {"id": course["id"]},
        token=world.admin.token,
    )
    assert updated["updateCourse"]["course"] == {
        "id": course["id"],
        "name": "K8s",
        "description": "pods",
        "durationMinutes": 90,  # not given: unchanged (partial update)
    }
    bad = await graphql_client.data(
        'mutation { createCourse(input: {name: "X", durationMinutes: 0}) { '
        + COURSE_FIELDS
        + " } }",
        token=world.admin.token,
    )
    assert bad["createCourse"]["errors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "durationMinutes"]}
    ]
    missing = await graphql_client.data(
        'mutation U($id: ID!) { updateCourse(id: $id, input: {name: "Y"}) { '
        + COURSE_FIELDS
        + " } }",
        {"id": encode_id("Course", 777)},
        token=world.admin.token,
    )
    assert missing["updateCourse"] == {
        "course": None,
        "errors": [{"code": "NOT_FOUND", "field": ["id"]}],
    }


CREATE_CERT = """
mutation C($input: CertificationInput!) {
  createCertification(input: $input) {
    certification { id name kind type state validityMonths recertificationWindowDays
                    issuer badge { name } policy { name config } }
    errors { code message field }
  }
}"""


async def create_cert(graphql_client: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    data = await graphql_client.data(CREATE_CERT, {"input": fields}, token=token)
    payload: dict[str, Any] = data["createCertification"]
    return payload


async def test_certification_lifecycle(graphql_client: GraphQLClient, world: World) -> None:
    token = world.admin.token
    made = await create_cert(
        graphql_client,
        token,
        name="AWS SA",
        kind="EXTERNAL",
        type="RECURRING",
        issuer="Amazon",
        validityMonths=36,
        policyConfig={"requiresApproval": False},
        badgeName="AWS badge",
    )
    assert made["errors"] == []
    cert = made["certification"]
    assert cert["state"] == "DRAFT" and cert["recertificationWindowDays"] == 30
    assert cert["policy"]["name"] == "external-evidence"
    assert cert["policy"]["config"]["requiresApproval"] is False
    assert cert["badge"] == {"name": "AWS badge"}
    cid = cert["id"]

    updated = await graphql_client.data(
        "mutation U($id: ID!, $input: CertificationInput!) { updateCertification(id: $id, "
        "input: $input) { certification { name validityMonths } errors { code } } }",
        {
            "id": cid,
            "input": {
                "name": "AWS SA Pro",
                "kind": "EXTERNAL",
                "type": "RECURRING",
                "issuer": "Amazon",
                "validityMonths": 24,
            },
        },
        token=token,
    )
    assert updated["updateCertification"]["certification"] == {
        "name": "AWS SA Pro",
        "validityMonths": 24,
    }

    linked = await graphql_client.data(
        "mutation L($id: ID!, $a: ID!, $b: ID!) { setCertificationCourses(certificationId: $id,"
        " courses: [{courseId: $a, mandatory: false, position: 2}, {courseId: $b, mandatory: true,"
        " position: 1}]) { certification { courses { mandatory position course { name } } } } }",
        {"id": cid, "a": world.course_gid(0), "b": world.course_gid(1)},
        token=token,
    )
    assert linked["setCertificationCourses"]["certification"]["courses"] == [
        {"mandatory": True, "position": 0, "course": {"name": "Course 1"}},
        {"mandatory": False, "position": 1, "course": {"name": "Course 0"}},
    ]

    lifecycle = (
        "mutation S($id: ID!) { %s(id: $id) "
        "{ certification { state publishedAt } errors { code } } }"
    )
    published = await graphql_client.data(
        lifecycle % "publishCertification", {"id": cid}, token=token
    )
    assert published["publishCertification"]["certification"]["state"] == "PUBLISHED"
    again = await graphql_client.data(lifecycle % "publishCertification", {"id": cid}, token=token)
    assert again["publishCertification"] == {
        "certification": None,
        "errors": [{"code": "NOT_ALLOWED"}],
    }
    retired = await graphql_client.data(lifecycle % "retireCertification", {"id": cid}, token=token)
    assert retired["retireCertification"]["certification"]["state"] == "RETIRED"
    assert retired["retireCertification"]["certification"]["publishedAt"] is not None


async def test_publishing_an_internal_certification_without_courses_is_not_allowed(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = await create_cert(
        graphql_client, world.admin.token, name="Empty", kind="INTERNAL", type="PERPETUAL"
    )
    data = await graphql_client.data(
        "mutation P($id: ID!) { publishCertification(id: $id) "
        "{ certification { id } errors { code } } }",
        {"id": made["certification"]["id"]},
        token=world.admin.token,
    )
    assert data["publishCertification"] == {
        "certification": None,
        "errors": [{"code": "NOT_ALLOWED"}],
    }


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"policy": "no-such-policy"}, "POLICY_UNKNOWN", ["input", "policy"]),
        (
            {"policy": "external-evidence", "policyConfig": {"completionDate": "someday"}},
            "POLICY_CONFIG_INVALID",
            ["input", "policyConfig"],
        ),
        ({"policyConfig": [1, 2]}, "POLICY_CONFIG_INVALID", ["input", "policyConfig"]),
        ({"type": "RECURRING"}, "INVALID_INPUT", ["input", "validityMonths"]),
        ({"validityMonths": 12}, "INVALID_INPUT", ["input", "validityMonths"]),
    ],
)
async def test_create_certification_errors(
    graphql_client: GraphQLClient, world: World, fields: dict[str, Any], code: str, field: list[str]
) -> None:
    base = {"name": "Bad", "kind": "INTERNAL", "type": "PERPETUAL"}
    payload = await create_cert(graphql_client, world.admin.token, **{**base, **fields})
    assert payload["certification"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await models.Certification.all().count() == 0


async def test_policy_unknown_lists_the_installed_ones(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create_cert(
        graphql_client,
        world.admin.token,
        name="X",
        kind="INTERNAL",
        type="PERPETUAL",
        policy="quorum",
    )
    assert "mandatory-subset" in payload["errors"][0]["message"]


ASSIGN = """
mutation A($cert: ID!, $learners: [ID!]!, $due: DateTime) {
  assignCertification(certificationId: $cert, learnerIds: $learners, dueAt: $due) {
    enrollments { learner { name } dueAt status certification { name } }
    errors { code field }
  }
}"""


async def test_assign_certification(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = encode_id("Certification", await make_certification("Assigned", world.course_ids[:1]))
    due = "2026-04-01T00:00:00+02:00"
    data = await graphql_client.data(
        ASSIGN,
        {"cert": cert, "learners": [world.learner.id, world.other.id], "due": due},
        token=world.admin.token,
    )
    payload = data["assignCertification"]
    assert payload["errors"] == []
    assert [e["learner"]["name"] for e in payload["enrollments"]] == ["Lea Learner", "Otto Other"]
    # stored and returned in UTC
    assert {e["dueAt"] for e in payload["enrollments"]} == {"2026-03-31T22:00:00+00:00"}
    assert {e["status"] for e in payload["enrollments"]} == {"ENROLLED"}

    mine = await graphql_client.data(
        "{ viewer { certifications { edges { node { dueAt certification { name } } } } } }",
        token=world.learner.token,
    )
    assert mine["viewer"]["certifications"]["edges"] == [
        {"node": {"dueAt": "2026-03-31T22:00:00+00:00", "certification": {"name": "Assigned"}}}
    ]


async def test_assign_errors(graphql_client: GraphQLClient, world: World) -> None:
    cert = encode_id("Certification", await make_certification("Assigned", world.course_ids[:1]))
    unknown = await graphql_client.data(
        ASSIGN,
        {"cert": cert, "learners": [world.learner.id, encode_id("User", 999)]},
        token=world.admin.token,
    )
    assert unknown["assignCertification"] == {
        "enrollments": [],
        "errors": [{"code": "NOT_FOUND", "field": ["learnerIds", "1"]}],
    }
    empty = await graphql_client.data(
        ASSIGN, {"cert": cert, "learners": []}, token=world.admin.token
    )
    assert empty["assignCertification"]["errors"] == [
        {"code": "INVALID_INPUT", "field": ["learnerIds"]}
    ]
    assert await models.Enrollment.all().count() == 0


class _Context:
    """What run_use_case needs of the request context: the viewer and the loader reset."""

    def __init__(self) -> None:
        self.viewer = SYSTEM
        self.resets = 0

    def reset_loaders(self) -> None:
        self.resets += 1


def _info() -> Any:
    return SimpleNamespace(context=_Context())


def _unreachable(result: object) -> NoReturn:
    raise AssertionError(f"shaped {result!r} after a failure")


async def _echo(viewer: Actor, pk: int) -> int:
    return pk


async def test_run_use_case_turns_a_domain_error_into_the_payload_errors() -> None:
    info = _info()

    async def refuse(viewer: Actor) -> object:
        assert viewer is SYSTEM
        raise InvalidInput("name must not be empty", field=["input", "name"])

    payload = await run_use_case(info, CoursePayload, refuse, _unreachable)
    assert payload.course is None
    assert [(e.code, e.message, e.field) for e in payload.errors] == [
        (ErrorCode.INVALID_INPUT, "name must not be empty", ["input", "name"])
    ]
    assert info.context.resets == 1


async def test_run_use_case_catches_errors_raised_while_building_the_arguments() -> None:
    def bad_id() -> int:
        raise NotFound("no such course", field=["id"])

    payload = await run_use_case(
        _info(), ImportPayload, lambda viewer: _echo(viewer, bad_id()), _unreachable
    )
    assert (payload.imported, payload.row_errors, payload.row_error_count) == (0, [], 0)
    assert [(e.code, e.field) for e in payload.errors] == [(ErrorCode.NOT_FOUND, ["id"])]


async def test_run_use_case_shapes_the_result_sync_or_async() -> None:
    async def answer(viewer: Actor) -> str:
        return f"token of {viewer.user_id}"

    sync = await run_use_case(_info(), ApiTokenPayload, answer, lambda t: ApiTokenPayload(token=t))

    async def shape(token: str) -> ApiTokenPayload:
        return ApiTokenPayload(token=token.upper())

    later = await run_use_case(_info(), ApiTokenPayload, answer, shape)
    assert (sync.token, sync.errors) == ("token of None", [])
    assert (later.token, later.errors) == ("TOKEN OF NONE", [])


async def test_run_use_case_lets_access_and_shaping_errors_through() -> None:
    async def forbid(viewer: Actor) -> str:
        raise Forbidden("admins only")

    with pytest.raises(Forbidden):
        await run_use_case(_info(), ApiTokenPayload, forbid, _unreachable)

    async def fine(viewer: Actor) -> str:
        return "t"

    def shape(token: str) -> ApiTokenPayload:
        raise NotFound("read after the write failed")

    # a failure after the write is not the use case's refusal: it stays a GraphQL error
    with pytest.raises(NotFound):
        await run_use_case(_info(), ApiTokenPayload, fine, shape)
