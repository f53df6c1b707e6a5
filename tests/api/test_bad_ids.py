"""A bad ID (issue 13 item 6): a mutation argument that is not an ID of the type it takes
answers NOT_FOUND saying what an ID looks like and where it comes from, names the argument,
and changes nothing; a well-formed ID of a missing or hidden object answers as before, with
no hint; access checks come first; queries keep answering null (docs/api.md, "IDs")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.domain import enrollments
from gql.store import models
from gql.store.models import AuditEvent, CertificationKind, EvidenceStatus
from tests.files.samples import pdf, png

from .conftest import (
    SYSTEM,
    GraphQLClient,
    World,
    add_evidence,
    make_certification,
    table_counts,
)
from .uploads_support import FilePart, UploadClient

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HINT = "IDs are opaque strings from an object's `id` field"
MISSING_PK = 999_999


@dataclass(frozen=True)
class Case:
    """A mutation with one bad ID argument `$id` (other arguments are the world's)."""

    document: str
    who: str  # admin, manager or learner
    type_name: str
    field: list[str]


CASES = {
    "startCertification": Case(
        "mutation($id: ID!) { startCertification(certificationId: $id) { %s } }",
        "learner",
        "Certification",
        ["certificationId"],
    ),
    "recordCourseProgress.courseId": Case(
        "mutation($id: ID!) { recordCourseProgress(input: {courseId: $id, percent: 10}) { %s } }",
        "learner",
        "Course",
        ["input", "courseId"],
    ),
    "recordCourseProgress.learnerId": Case(
        "mutation($id: ID!, $course: ID!) { recordCourseProgress("
        "input: {courseId: $course, learnerId: $id, completed: true}) { %s } }",
        "admin",
        "User",
        ["input", "learnerId"],
    ),
    "createUser.managerId": Case(
        'mutation($id: ID!) { createUser(input: {name: "Nora New", email: '
        '"nora@example.com", role: LEARNER, managerId: $id}) { %s } }',
        "admin",
        "User",
        ["managerId"],
    ),
    "createApiToken": Case(
        "mutation($id: ID!) { createApiToken(userId: $id) { %s } }", "admin", "User", ["userId"]
    ),
    "updateCourse": Case(
        'mutation($id: ID!) { updateCourse(id: $id, input: {name: "Renamed"}) { %s } }',
        "admin",
        "Course",
        ["id"],
    ),
    "updateCertification": Case(
        "mutation($id: ID!) { updateCertification(id: $id, input: "
        '{name: "Renamed", kind: INTERNAL, type: PERPETUAL}) { %s } }',
        "admin",
        "Certification",
        ["id"],
    ),
    "setCertificationCourses.certificationId": Case(
        "mutation($id: ID!) { setCertificationCourses(certificationId: $id, courses: []) { %s } }",
        "admin",
        "Certification",
        ["certificationId"],
    ),
    "setCertificationCourses.courseId": Case(
        "mutation($id: ID!, $cert: ID!, $course: ID!) { setCertificationCourses("
        "certificationId: $cert, courses: [{courseId: $course, mandatory: true}, "
        "{courseId: $id, mandatory: false}]) { %s } }",
        "admin",
        "Course",
        ["courses", "1", "courseId"],
    ),
    "publishCertification": Case(
        "mutation($id: ID!) { publishCertification(id: $id) { %s } }",
        "admin",
        "Certification",
        ["id"],
    ),
    "retireCertification": Case(
        "mutation($id: ID!) { retireCertification(id: $id) { %s } }",
        "admin",
        "Certification",
        ["id"],
    ),
    "assignCertification.certificationId": Case(
        "mutation($id: ID!, $learner: ID!) { assignCertification(certificationId: $id, "
        "learnerIds: [$learner]) { %s } }",
        "admin",
        "Certification",
        ["certificationId"],
    ),
    "assignCertification.learnerIds": Case(
        "mutation($id: ID!, $cert: ID!, $learner: ID!) { assignCertification("
        "certificationId: $cert, learnerIds: [$learner, $id]) { %s } }",
        "admin",
        "User",
        ["learnerIds", "1"],
    ),
    "reviewEvidence": Case(
        "mutation($id: ID!) { reviewEvidence(evidenceId: $id, decision: APPROVE) { %s } }",
        "manager",
        "Evidence",
        ["evidenceId"],
    ),
}
PAYLOAD = "errors { code message field }"

# Values that are not IDs: what people paste where an ID goes.
NOT_IDS = {
    "a word": "abc",
    "a name": "Secure Coding Basics",
    "a number": "2",
    "README's placeholder": "<the id of Secure Coding Basics from step 3>",
}


async def counts() -> dict[str, int]:
    """How many rows each table holds, and the names a refused update would change."""
    found = await table_counts(audit=True)
    names = await models.Course.all().values_list("name", flat=True)
    names += await models.Certification.all().values_list("name", flat=True)
    found["renamed"] = sum(name == "Renamed" for name in names)
    return found


async def variables_of(world: World) -> dict[str, str]:
    cert = await make_certification("Basics", world.course_ids[:1])
    return {
        "course": world.course_gid(0),
        "cert": encode_id("Certification", cert),
        "learner": world.learner.id,
    }


async def send(
    client: GraphQLClient, world: World, case: Case, value: str, extra: dict[str, str]
) -> dict[str, Any]:
    document = case.document % PAYLOAD
    variables = {"id": value, **{k: v for k, v in extra.items() if f"${k}" in document}}
    token = getattr(world, case.who).token
    data = await client.data(document, variables, token=token)
    [payload] = data.values()
    [error] = payload["errors"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize("name", sorted(CASES))
async def test_an_argument_that_is_not_an_id_says_what_an_id_is(
    graphql_client: GraphQLClient, world: World, name: str
) -> None:
    case = CASES[name]
    extra = await variables_of(world)
    before = await counts()
    for label, value in NOT_IDS.items():
        error = await send(graphql_client, world, case, value, extra)
        assert error["code"] == "NOT_FOUND", (label, error)
        assert error["field"] == case.field, (label, error)
        article = "an" if case.type_name == "Evidence" else "a"
        assert error["message"].startswith(
            f'no such {case.type_name.lower()}: "{value}" is not {article} {case.type_name} ID'
        ), (label, error)
        assert HINT in error["message"]
    assert await counts() == before  # nothing written, not even to the audit log


@pytest.mark.parametrize("name", sorted(CASES))
async def test_an_id_of_another_type_is_named_as_such(
    graphql_client: GraphQLClient, world: World, name: str
) -> None:
    case = CASES[name]
    extra = await variables_of(world)
    other_type, other = (
        ("Course", world.course_gid(1)) if case.type_name != "Course" else ("User", world.other.id)
    )
    before = await counts()
    error = await send(graphql_client, world, case, other, extra)
    assert (error["code"], error["field"]) == ("NOT_FOUND", case.field)
    assert f"is a {other_type} ID, not a" in error["message"] and HINT in error["message"]
    assert await counts() == before


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_well_formed_id_of_nothing_gets_no_hint(
    graphql_client: GraphQLClient, world: World, name: str
) -> None:
    case = CASES[name]
    extra = await variables_of(world)
    before = await counts()
    error = await send(graphql_client, world, case, encode_id(case.type_name, MISSING_PK), extra)
    assert error["code"] in ("NOT_FOUND", "INVALID_INPUT"), error
    assert "ID" not in error["message"] and HINT not in error["message"]
    assert await counts() == before


async def test_a_hidden_object_reads_exactly_like_a_missing_one(
    graphql_client: GraphQLClient, world: World
) -> None:
    """Another manager's report's evidence, reviewed by Max: the missing one's answer."""
    cert = await make_certification(
        "Cloud Architect", [], kind=CertificationKind.EXTERNAL, issuer="Board"
    )
    [enrollment] = await enrollments.assign_certification(SYSTEM, cert, [world.other.user.id], None)
    hidden = await add_evidence(enrollment.id, EvidenceStatus.PENDING)
    case = CASES["reviewEvidence"]
    answers = [
        await send(graphql_client, world, case, encode_id("Evidence", pk), {})
        for pk in (hidden.id, MISSING_PK)
    ]
    assert (
        answers[0]
        == answers[1]
        == {
            "code": "NOT_FOUND",
            "message": "no such evidence",
            "field": ["evidenceId"],
        }
    )


async def test_the_access_check_comes_first(graphql_client: GraphQLClient, world: World) -> None:
    """A learner calling an admin mutation with a bad ID is FORBIDDEN (and audited), as with
    a good one: the ID is not even looked at."""
    result = await graphql_client.run(
        CASES["updateCourse"].document % PAYLOAD, {"id": "abc"}, token=world.learner.token
    )
    assert result["data"] == {"updateCourse": None}
    [error] = result["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and HINT not in error["message"]
    assert await AuditEvent.filter(action="denied:updateCourse").count() == 1


async def test_two_bad_course_ids_are_named_not_found_not_duplicates(
    graphql_client: GraphQLClient, world: World
) -> None:
    """Both decode to the same unknown key; the domain's "listed once" is about an argument
    that did not decode, so the hint replaces it."""
    extra = await variables_of(world)
    data = await graphql_client.data(
        "mutation($cert: ID!) { setCertificationCourses(certificationId: $cert, courses: "
        '[{courseId: "x", mandatory: true}, {courseId: "y", mandatory: true}]) '
        "{ errors { code message field } } }",
        {"cert": extra["cert"]},
        token=world.admin.token,
    )
    [error] = data["setCertificationCourses"]["errors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["courses", "1", "courseId"])
    assert error["message"].startswith('no such course: "y" is not a Course ID')


async def test_a_long_value_is_shown_cut(graphql_client: GraphQLClient, world: World) -> None:
    error = await send(graphql_client, world, CASES["startCertification"], "x" * 5000, {})
    assert '"' + "x" * 60 + '…" is not a Certification ID' in error["message"]
    assert len(error["message"]) < 300


async def test_uploads_name_a_bad_id_too(http: httpx.AsyncClient, world: World) -> None:
    """The multipart mutations decode their ID inside the use case: the same hint."""
    uploads = UploadClient(http)
    before = await counts()
    submitted = await uploads.data(
        "mutation($cert: ID!, $file: Upload!) { submitEvidence(certificationId: $cert, "
        "file: $file) { evidence { id } errors { code message field } } }",
        {"cert": "abc"},
        {"variables.file": FilePart(pdf())},
        token=world.learner.token,
    )
    badge = await uploads.data(
        "mutation($cert: ID!, $file: Upload!) { uploadCertificationBadge(certificationId: "
        "$cert, file: $file) { certification { id } errors { code message field } } }",
        {"cert": world.course_gid(0)},
        {"variables.file": FilePart(png(), "badge.png", "image/png")},
        token=world.admin.token,
    )
    [submit_error] = submitted["submitEvidence"]["errors"]
    assert (submit_error["code"], submit_error["field"]) == ("NOT_FOUND", ["certificationId"])
    assert submit_error["message"].startswith(
        'no such certification: "abc" is not a Certification ID'
    )
    [badge_error] = badge["uploadCertificationBadge"]["errors"]
    assert (badge_error["code"], badge_error["field"]) == ("NOT_FOUND", ["certificationId"])
    assert "is a Course ID, not a Certification ID" in badge_error["message"]
    assert await counts() == before


async def test_queries_keep_answering_null(graphql_client: GraphQLClient, world: World) -> None:
    """Lookups answer null for a bad ID, without an error (docs/api.md, "IDs")."""
    for value in [*NOT_IDS.values(), world.learner.id]:
        data = await graphql_client.data(
            "query($id: ID!) { node(id: $id) { id } course(id: $id) { id } "
            "certification(id: $id) { id } certificationReport(certificationId: $id) "
            "{ enrolled } }",
            {"id": value},
            token=world.admin.token,
        )
        assert data == {
            "node": None if value != world.learner.id else {"id": value},
            "course": None,
            "certification": None,
            "certificationReport": None,
        }


async def test_docs_api_shows_the_answer_the_server_gives(
    graphql_client: GraphQLClient, world: World
) -> None:
    blocks = re.findall(r"```json\n(.*?)```", API_DOC.read_text(encoding="utf-8"), re.S)
    [shown] = [json.loads(block) for block in blocks if "is not a Course ID" in block]
    error = await send(
        graphql_client, world, CASES["recordCourseProgress.courseId"], "Secure Coding Basics", {}
    )
    assert error == shown
