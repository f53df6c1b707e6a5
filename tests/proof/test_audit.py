"""The audit trail through the API: every admin action, review, award, token issue, upload
and authorization refusal writes a row (table-driven over the mutations), and admins read
the log with `auditEvents` (filters, keyset pages, newest first); nobody else can."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql.api.ids import encode_id
from gql.domain.access import Actor
from gql.domain.enrollments import record_course_progress, start_certification
from gql.domain.evidence import submit_evidence
from gql.store.models import AuditEvent, CertificationKind
from tests.api.conftest import (
    GraphQLClient,
    World,
    app,
    graphql_client,
    http,
    make_certification,
    settings,
    world,
)
from tests.files.conftest import blob_store
from tests.files.samples import BytesStream, pdf, png

__all__ = ["app", "graphql_client", "http", "settings", "world"]  # fixtures for this module


@dataclass
class Stage:
    """What the table's rows act on."""

    world: World
    published: str  # INTERNAL, courses 0 and 1
    published_pk: int
    draft: str  # INTERNAL draft with course 2
    external: str  # EXTERNAL, published
    pending_evidence: str  # the learner's, PENDING
    ids: dict[str, str] = field(default_factory=dict)


@pytest_asyncio.fixture
async def stage(world: World) -> Stage:
    published = await make_certification("Published", world.course_ids[:2])
    draft = await make_certification("Draft", world.course_ids[2:3], publish=False)
    external = await make_certification(
        "External", [], kind=CertificationKind.EXTERNAL, issuer="Board"
    )
    evidence = await submit_evidence(
        Actor.of(world.learner.user),
        external,
        BytesStream(pdf()),
        blobs=blob_store(),
        filename="proof.pdf",
    )
    return Stage(
        world,
        published=encode_id("Certification", published),
        published_pk=published,
        draft=encode_id("Certification", draft),
        external=encode_id("Certification", external),
        pending_evidence=encode_id("Evidence", evidence.id),
    )


Variables = Callable[[Stage], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    document: str
    variables: Variables
    action: str
    object_type: str
    actor: str = "admin"  # admin | manager | learner
    files: dict[str, tuple[str, bytes, str]] | None = None
    admin_only: bool = True


def csv_for(stage: Stage) -> bytes:
    email = stage.world.learner.user.email
    header = "learner_email,course_id,percent,completed_at"
    return f"{header}\n{email},{stage.world.course_gid(3)},50,\n".encode()


ROWS: dict[str, Row] = {
    "createUser": Row(
        "mutation($i: UserInput!) { createUser(input: $i) { errors { code } } }",
        lambda s: {"i": {"name": "New One", "email": "new.one@example.com", "role": "LEARNER"}},
        "createUser",
        "User",
    ),
    "createApiToken": Row(
        "mutation($id: ID!) { createApiToken(userId: $id) { errors { code } } }",
        lambda s: {"id": s.world.other.id},  # one's own is anyone's to make: another's is not
        "createApiToken",
        "ApiToken",
    ),
    "createCourse": Row(
        'mutation { createCourse(input: {name: "Audited"}) { errors { code } } }',
        lambda s: {},
        "createCourse",
        "Course",
    ),
    "updateCourse": Row(
        "mutation($id: ID!) { updateCourse(id: $id, input: "
        '{name: "Renamed"}) { errors { code } } }',
        lambda s: {"id": s.world.course_gid(0)},
        "updateCourse",
        "Course",
    ),
    "createCertification": Row(
        "mutation { createCertification(input: "
        '{name: "Audited", kind: INTERNAL, type: PERPETUAL}) { errors { code } } }',
        lambda s: {},
        "createCertification",
        "Certification",
    ),
    "updateCertification": Row(
        "mutation($id: ID!) { updateCertification(id: $id, input: "
        '{name: "Draft 2", kind: INTERNAL, type: PERPETUAL}) { errors { code } } }',
        lambda s: {"id": s.draft},
        "updateCertification",
        "Certification",
    ),
    "setCertificationCourses": Row(
        "mutation($id: ID!, $c: ID!) { setCertificationCourses(certificationId: $id, "
        "courses: [{courseId: $c, mandatory: true}]) { errors { code } } }",
        lambda s: {"id": s.draft, "c": s.world.course_gid(3)},
        "setCertificationCourses",
        "Certification",
    ),
    "publishCertification": Row(
        "mutation($id: ID!) { publishCertification(id: $id) { errors { code } } }",
        lambda s: {"id": s.draft},
        "publishCertification",
        "Certification",
    ),
    "retireCertification": Row(
        "mutation($id: ID!) { retireCertification(id: $id) { errors { code } } }",
        lambda s: {"id": s.published},
        "retireCertification",
        "Certification",
    ),
    "assignCertification": Row(
        "mutation($id: ID!, $l: ID!) { assignCertification(certificationId: $id, "
        "learnerIds: [$l]) { errors { code } } }",
        lambda s: {"id": s.published, "l": s.world.other.id},
        "assignCertification",
        "Enrollment",
    ),
    "recordCourseProgress": Row(
        "mutation($c: ID!, $l: ID!) { recordCourseProgress(input: "
        "{courseId: $c, learnerId: $l, percent: 40}) { errors { code } } }",
        lambda s: {"c": s.world.course_gid(3), "l": s.world.other.id},
        "recordCourseProgress",
        "CourseProgress",
    ),
    "uploadCertificationBadge": Row(
        "mutation($id: ID!, $file: Upload!) { uploadCertificationBadge(certificationId: $id, "
        "file: $file) { errors { code } } }",
        lambda s: {"id": s.published},
        "uploadCertificationBadge",
        "Certification",
        files={"file": ("badge.png", png(), "image/png")},
    ),
    "importCourseProgress": Row(
        "mutation($file: Upload!) { importCourseProgress(file: $file) { errors { code } } }",
        lambda s: {},
        "importCourseProgress",
        "CourseProgress",
        files={"file": ("progress.csv", b"", "text/csv")},  # filled in per stage
    ),
    "reviewEvidence": Row(
        "mutation($id: ID!) { reviewEvidence(evidenceId: $id, decision: APPROVE) "
        "{ errors { code } } }",
        lambda s: {"id": s.pending_evidence},
        "reviewEvidence",
        "Evidence",
        actor="manager",
        admin_only=False,
    ),
    "award (completing the last course)": Row(
        "mutation($c: ID!) { recordCourseProgress(input: {courseId: $c, completed: true}) "
        "{ errors { code } } }",
        lambda s: {"c": s.world.course_gid(1)},
        "award",
        "Enrollment",
        actor="learner",
        admin_only=False,
    ),
    "submitEvidence": Row(
        "mutation($id: ID!, $file: Upload!) { submitEvidence(certificationId: $id, "
        "file: $file) { errors { code } } }",
        lambda s: {"id": s.external},
        "submitEvidence",
        "Evidence",
        actor="other",
        files={"file": ("proof.pdf", pdf("other"), "application/pdf")},
        admin_only=False,
    ),
}


def token_of(stage: Stage, actor: str) -> str:
    person = getattr(stage.world, actor)
    token: str = person.token
    return token


async def send(http: httpx.AsyncClient, stage: Stage, row: Row, token: str) -> dict[str, Any]:
    variables = row.variables(stage)
    if row.files is None:
        response = await http.post(
            "/graphql",
            json={"query": row.document, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    else:
        files = dict(row.files)
        if "progress.csv" in {name for name, _, _ in files.values()}:
            files = {"file": ("progress.csv", csv_for(stage), "text/csv")}
        names = sorted(files)
        operations = {"query": row.document, "variables": {**variables, **dict.fromkeys(names)}}
        response = await http.post(
            "/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({str(i): [f"variables.{n}"] for i, n in enumerate(names)}),
            },
            files={str(i): files[n] for i, n in enumerate(names)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit_rows(action: str, object_type: str | None = None) -> list[AuditEvent]:
    rows = AuditEvent.filter(action=action)
    if object_type is not None:
        rows = rows.filter(object_type=object_type)
    return list(await rows.order_by("id"))


@pytest.mark.parametrize("name", sorted(ROWS))
async def test_each_action_writes_one_audit_row_by_its_actor(
    http: httpx.AsyncClient, stage: Stage, name: str
) -> None:
    row = ROWS[name]
    if row.action == "award":
        # The learner has course 0 done: completing course 1 completes the certification.
        learner = stage.world.learner.actor
        await start_certification(learner, stage.published_pk)
        await record_course_progress(learner, course_id=stage.world.course_ids[0], completed=True)
    before = await audit_rows(row.action, row.object_type)
    body = await send(http, stage, row, token_of(stage, row.actor))
    assert "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["errors"] == [], payload
    after = await audit_rows(row.action, row.object_type)
    new = after[len(before) :]
    assert len(new) == 1, [(r.action, r.object_type, r.object_id) for r in new]
    assert new[0].actor_id == getattr(stage.world, row.actor).user.id


ADMIN_ONLY = sorted(name for name, row in ROWS.items() if row.admin_only)


@pytest.mark.parametrize("name", ADMIN_ONLY)
async def test_each_admin_action_refused_to_a_learner_writes_a_denied_row(
    http: httpx.AsyncClient, stage: Stage, name: str
) -> None:
    row = ROWS[name]
    before = await audit_rows(f"denied:{row.action}")
    body = await send(http, stage, row, stage.world.learner.token)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    after = await audit_rows(f"denied:{row.action}")
    assert len(after) == len(before) + 1
    assert after[-1].actor_id == stage.world.learner.user.id
    assert after[-1].detail  # why it was refused


async def test_reviewing_ones_own_evidence_and_reading_anothers_enrollment_are_audited(
    graphql_client: GraphQLClient, http: httpx.AsyncClient, stage: Stage
) -> None:
    own = await send(
        http,
        stage,
        Row(
            ROWS["reviewEvidence"].document,
            lambda s: {"id": s.pending_evidence},
            "reviewEvidence",
            "Evidence",
        ),
        stage.world.learner.token,  # the learner's own evidence
    )
    assert own["data"]["reviewEvidence"]["errors"][0]["code"] == "NOT_ALLOWED"
    refusals = await audit_rows("denied:reviewEvidence")
    assert [r.actor_id for r in refusals] == [stage.world.learner.user.id]

    enrollment = (
        await http.post(
            "/graphql",
            json={"query": "{ viewer { certifications { edges { node { id } } } } }"},
            headers={"Authorization": f"Bearer {stage.world.learner.token}"},
        )
    ).json()["data"]["viewer"]["certifications"]["edges"][0]["node"]["id"]
    hidden = await graphql_client.data(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": enrollment},
        token=stage.world.other.token,
    )
    assert hidden == {"node": None}
    assert [r.actor_id for r in await audit_rows("denied:enrollment")] == [
        stage.world.other.user.id
    ]


# -- reading the log -------------------------------------------------------------------------

AUDIT_EVENTS = """
query($action: String, $actorId: ID, $objectType: String, $objectId: String,
      $since: DateTime, $until: DateTime, $first: Int, $after: String) {
  auditEvents(action: $action, actorId: $actorId, objectType: $objectType,
              objectId: $objectId, since: $since, until: $until, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id at action objectType objectId objectGlobalId after detail
                          actor { id email } } }
  }
}
"""


async def read_log(graphql_client: GraphQLClient, token: str, **filters: Any) -> dict[str, Any]:
    data = await graphql_client.data(AUDIT_EVENTS, filters, token=token)
    log: dict[str, Any] = data["auditEvents"]
    return log


async def test_an_admin_reads_and_filters_the_log_newest_first(
    graphql_client: GraphQLClient, world: World
) -> None:
    admin = world.admin
    for name in ("One", "Two", "Three"):
        await graphql_client.data(
            "mutation($n: String!) { createCourse(input: {name: $n}) { errors { code } } }",
            {"n": name},
            token=admin.token,
        )
    refused = await graphql_client.run(
        'mutation { createCourse(input: {name: "No"}) { errors { code } } }',
        token=world.learner.token,
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    everything = await read_log(graphql_client, admin.token, first=100)
    nodes = [edge["node"] for edge in everything["edges"]]
    assert everything["totalCount"] == len(nodes) > 4
    times = [node["at"] for node in nodes]
    assert times == sorted(times, reverse=True)
    assert nodes[0]["action"] == "denied:createCourse"

    # (the world's courses were made by the operator, with no actor)
    courses = await read_log(graphql_client, admin.token, action="createCourse", actorId=admin.id)
    assert [n["node"]["after"]["name"] for n in courses["edges"]] == ["Three", "Two", "One"]
    assert {n["node"]["actor"]["email"] for n in courses["edges"]} == {admin.user.email}
    first_course = courses["edges"][-1]["node"]
    assert first_course["objectGlobalId"] == encode_id("Course", int(first_course["objectId"]))

    denied = await read_log(graphql_client, admin.token, action="denied:*")
    assert [n["node"]["action"] for n in denied["edges"]] == ["denied:createCourse"]
    assert denied["edges"][0]["node"]["actor"]["id"] == world.learner.id

    by_learner = await read_log(graphql_client, admin.token, actorId=world.learner.id)
    assert [n["node"]["action"] for n in by_learner["edges"]] == ["denied:createCourse"]
    by_object = await read_log(graphql_client, admin.token, objectId=first_course["objectGlobalId"])
    assert [n["node"]["id"] for n in by_object["edges"]] == [first_course["id"]]
    by_key = await read_log(
        graphql_client, admin.token, objectType="Course", objectId=first_course["objectId"]
    )
    assert by_key["totalCount"] == 1

    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert (await read_log(graphql_client, admin.token, since=later))["totalCount"] == 0
    assert (await read_log(graphql_client, admin.token, until=later))["totalCount"] == len(nodes)

    # Keyset pages of two reassemble the whole log, in order, without overlap.
    seen: list[str] = []
    after = None
    while True:
        page = await read_log(graphql_client, admin.token, first=2, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [node["id"] for node in nodes]


async def test_only_admins_read_the_log_and_a_refused_read_is_audited(
    graphql_client: GraphQLClient, world: World
) -> None:
    for person in (world.learner, world.manager):
        result = await graphql_client.run(AUDIT_EVENTS, {}, token=person.token)
        assert result["data"] is None
        assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]
    denied = await audit_rows("denied:auditEvents")
    assert [r.actor_id for r in denied] == [world.learner.user.id, world.manager.user.id]


async def test_bad_log_arguments_are_clear_errors(
    graphql_client: GraphQLClient, world: World
) -> None:
    too_many = await graphql_client.run(AUDIT_EVENTS, {"first": 1000}, token=world.admin.token)
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    backwards = await graphql_client.run(
        AUDIT_EVENTS,
        {"since": "2026-03-10T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        token=world.admin.token,
    )
    assert backwards["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    bad_cursor = await graphql_client.run(
        AUDIT_EVENTS, {"after": "nonsense"}, token=world.admin.token
    )
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
