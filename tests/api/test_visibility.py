"""quality.md security item 2 and the Relay IDs: what a viewer may not see reads exactly
like what does not exist (null), by direct field, nested, and through node(id:); refusals
are audited. Malformed IDs and IDs of another type read as null, never as an error."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gql.api.ids import decode_id, encode_id
from gql.domain import enrollments
from gql.store.models import AuditEvent, EvidenceStatus
from tests.api.conftest import (
    GraphQLClient,
    World,
    add_evidence,
    graphql_post_scope,
    make_certification,
)

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on User { name }
    ... on Enrollment { status learner { name } evidence { id downloadUrl } }
    ... on Evidence { evidenceStatus: status filename enrollment { id } }
    ... on Certification { name }
    ... on Course { name }
  }
}"""


async def enrolled(world: World) -> dict[str, Any]:
    """The learner and the other learner each started the same certification; the learner
    submitted proof for an external one."""
    cert = await make_certification("Shared", world.course_ids[:2])
    external = await make_certification("External", [], kind=_external(), issuer="Acme")
    mine = await enrollments.start_certification(world.learner.actor, cert)
    theirs = await enrollments.start_certification(world.other.actor, cert)
    mine_ext = await enrollments.start_certification(world.learner.actor, external)
    theirs_ext = await enrollments.start_certification(world.other.actor, external)
    my_proof = await add_evidence(mine_ext.id, EvidenceStatus.PENDING)
    their_proof = await add_evidence(theirs_ext.id, EvidenceStatus.PENDING)
    return {
        "mine": encode_id("Enrollment", mine.id),
        "theirs": encode_id("Enrollment", theirs.id),
        "my_proof": encode_id("Evidence", my_proof.id),
        "their_proof": encode_id("Evidence", their_proof.id),
        "their_enrollment_pk": theirs.id,
    }


def _external() -> Any:
    from gql.store.models import CertificationKind

    return CertificationKind.EXTERNAL


async def node(graphql_client: GraphQLClient, token: str, global_id: str) -> Any:
    return (await graphql_client.data(NODE, {"id": global_id}, token=token))["node"]


async def denials() -> list[str]:
    return [e.action for e in await AuditEvent.filter(action__startswith="denied:").order_by("id")]


async def test_a_learner_reads_own_objects_through_node(
    graphql_client: GraphQLClient, world: World
) -> None:
    ids = await enrolled(world)
    token = world.learner.token
    mine = await node(graphql_client, token, ids["mine"])
    assert mine["__typename"] == "Enrollment" and mine["learner"] == {"name": "Lea Learner"}
    proof = await node(graphql_client, token, ids["my_proof"])
    assert proof["__typename"] == "Evidence" and proof["evidenceStatus"] == "PENDING"
    me = await node(graphql_client, token, world.learner.id)
    assert me == {"__typename": "User", "id": world.learner.id, "name": "Lea Learner"}
    course = await node(graphql_client, token, world.course_gid(0))
    assert course["name"] == "Course 0"


async def test_another_learners_enrollment_reads_as_null_and_is_audited(
    graphql_client: GraphQLClient, world: World
) -> None:
    ids = await enrolled(world)
    before = await denials()
    assert await node(graphql_client, world.learner.token, ids["theirs"]) is None
    after = await denials()
    assert after == [*before, "denied:enrollment"]
    event = await AuditEvent.filter(action="denied:enrollment").order_by("-id").first()
    assert event is not None
    assert event.actor_id == world.learner.user.id
    assert event.object_id == str(ids["their_enrollment_pk"])


async def test_another_learners_evidence_reads_as_null(
    graphql_client: GraphQLClient, world: World
) -> None:
    ids = await enrolled(world)
    assert await node(graphql_client, world.learner.token, ids["their_proof"]) is None


async def test_another_learners_user_reads_as_null_directly_nested_and_by_node(
    graphql_client: GraphQLClient, world: World
) -> None:
    await enrolled(world)
    token = world.learner.token
    direct = await graphql_client.data(
        "query U($id: ID!) { user(id: $id) { name certifications { totalCount } } }",
        {"id": world.other.id},
        token=token,
    )
    assert direct == {"user": None}
    assert await node(graphql_client, token, world.other.id) is None


async def test_reading_another_learners_user_is_audited(
    graphql_client: GraphQLClient, world: World
) -> None:
    before = await denials()
    await graphql_client.data(
        "query U($id: ID!) { user(id: $id) { id } }",
        {"id": world.other.id},
        token=world.learner.token,
    )
    assert len(await denials()) == len(before) + 1


async def test_a_manager_sees_a_direct_reports_objects_but_not_others(
    graphql_client: GraphQLClient, world: World
) -> None:
    ids = await enrolled(world)
    token = world.manager.token
    report = await graphql_client.data(
        "query U($id: ID!) { user(id: $id) { name manager { name } "
        "certifications { edges { node { id certification { name } } } } } }",
        {"id": world.learner.id},
        token=token,
    )
    user = report["user"]
    assert user["name"] == "Lea Learner" and user["manager"] == {"name": "Max Manager"}
    assert {e["node"]["certification"]["name"] for e in user["certifications"]["edges"]} == {
        "Shared",
        "External",
    }
    assert (await node(graphql_client, token, ids["mine"]))["learner"] == {"name": "Lea Learner"}
    assert await node(graphql_client, token, ids["theirs"]) is None
    assert await node(graphql_client, token, world.other.id) is None


async def test_a_learner_sees_their_manager_but_the_manager_list_stays_hidden(
    graphql_client: GraphQLClient, world: World
) -> None:
    data = await graphql_client.data(
        "query U($id: ID!) { user(id: $id) { name certifications { totalCount } } }",
        {"id": world.manager.id},
        token=world.learner.token,
    )
    # Seeing your manager's name does not open their enrollments.
    assert data["user"] == {"name": "Max Manager", "certifications": {"totalCount": 0}}


async def test_an_admin_sees_everyone(graphql_client: GraphQLClient, world: World) -> None:
    ids = await enrolled(world)
    token = world.admin.token
    assert (await node(graphql_client, token, ids["theirs"]))["learner"] == {"name": "Otto Other"}
    assert (await node(graphql_client, token, ids["their_proof"]))["filename"] == "proof.pdf"
    assert (await node(graphql_client, token, world.other.id))["name"] == "Otto Other"


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "not base64!",
        "VXNlcg==",  # "User" without a pk
        encode_id("Robot", 1),
        encode_id("User", 999_999),
        "VXNlcjotMQ==",  # "User:-1"
        "VXNlcjox\n",
    ],
)
async def test_malformed_unknown_or_foreign_ids_read_as_null(
    graphql_client: GraphQLClient, world: World, bad_id: str
) -> None:
    token = world.admin.token
    assert await node(graphql_client, token, bad_id) is None
    data = await graphql_client.data(
        "query Q($id: ID!) { user(id: $id) { id } certification(id: $id) { id } "
        "course(id: $id) { id } }",
        {"id": bad_id},
        token=token,
    )
    assert data == {"user": None, "certification": None, "course": None}


async def test_an_id_of_another_type_reads_as_null(
    graphql_client: GraphQLClient, world: World
) -> None:
    course_id = world.course_gid(0)
    data = await graphql_client.data(
        "query Q($id: ID!) { user(id: $id) { id } certification(id: $id) { id } "
        "course(id: $id) { id } }",
        {"id": course_id},
        token=world.admin.token,
    )
    assert data == {"user": None, "certification": None, "course": {"id": course_id}}


async def test_evidence_download_url_is_a_signed_path_of_the_evidence(
    graphql_client: GraphQLClient, world: World
) -> None:
    ids = await enrolled(world)
    mine = await node(graphql_client, world.learner.token, ids["mine"])
    assert mine["evidence"] == []
    proof = await graphql_client.data(
        "query N($id: ID!) { node(id: $id) { ... on Evidence { id downloadUrl sizeBytes sha256 "
        "contentType completedOn note submittedAt reviewedBy { name } } } }",
        {"id": ids["my_proof"]},
        token=world.learner.token,
    )
    evidence = proof["node"]
    evidence_pk = decode_id(ids["my_proof"], "Evidence")
    assert re.fullmatch(
        rf"http://certgraph\.test/files/evidence/{evidence_pk}\?exp=\d+&sig=[\w-]+",
        evidence["downloadUrl"],
    )
    assert evidence["sizeBytes"] == 1234 and evidence["sha256"] == "ab" * 32
    assert evidence["completedOn"] == "2026-01-15" and evidence["reviewedBy"] is None
    assert evidence["submittedAt"].endswith("+00:00")


async def test_mutations_answer_not_found_for_malformed_ids(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.data(
        'mutation { startCertification(certificationId: "bogus") { enrollment { id } '
        "errors { code message field } } }",
        token=world.learner.token,
    )
    payload = result["startCertification"]
    assert payload["enrollment"] is None
    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["certificationId"])
    # what an ID looks like is said only for one that does not decode (tests/api/test_bad_ids.py)
    assert error["message"].startswith('no such certification: "bogus" is not a Certification ID')
    wrong_type = await graphql_client.data(
        "mutation M($id: ID!) { recordCourseProgress(input: {courseId: $id, percent: 10}) "
        "{ errors { code field } } }",
        {"id": world.learner.id},
        token=world.learner.token,
    )
    assert wrong_type["recordCourseProgress"]["errors"] == [
        {"code": "NOT_FOUND", "field": ["input", "courseId"]}
    ]


async def test_a_hidden_read_is_audited_even_when_the_answer_never_reaches_the_client(
    http: httpx.AsyncClient, app: Starlette, world: World
) -> None:
    """The batch of denied reads is written after the answer is sent; a request cut short
    while sending (a client gone, a timeout) still writes it."""
    ids = await enrolled(world)
    before = await denials()
    body = json.dumps({"query": NODE, "variables": {"id": ids["theirs"]}}).encode()
    scope = graphql_post_scope(body, world.learner.token)
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("the client went away")

    with pytest.raises(OSError):
        await app(scope, receive, send)
    await app.state.services.detached.finish()  # the flush outlives the cut-short request
    assert await denials() == [*before, "denied:enrollment"]
