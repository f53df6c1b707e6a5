"""Bulk calls (docs/api.md, "Bulk calls"): createUsers (1,000 users in one call, all or none,
a bounded number of statements, every row's problems at its real index, one request for the
rate limit), reviewEvidenceBatch (each review on its own, events per review), and a CSV
import row reporting all its problems (docs/files.md)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import get_operation_ast, parse

from gql.api.cost import estimate_cost
from gql.api.ids import encode_id
from gql.api.schema import build_schema
from gql.app import create_app
from gql.domain import bulk, enrollments
from gql.domain.errors import DomainErrors
from gql.domain.imports import HEADER, import_course_progress
from gql.settings import load_settings
from gql.store.models import (
    AuditEvent,
    CertificationKind,
    Enrollment,
    Evidence,
    EvidenceStatus,
    Role,
    User,
)
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    add_evidence,
    make_certification,
    make_person,
    table_counts,
)
from tests.conftest import EventLog, QueryCounter
from tests.files.conftest import blob_store
from tests.files.samples import BytesStream

ERRORS = "errors { code message field existingId }"
CREATE_USERS = (
    "mutation C($input: [UserInput!]!) { createUsers(input: $input) { "
    f"users {{ id name email role externalId manager {{ id }} }} {ERRORS} }} }}"
)
REVIEW_BATCH = (
    "mutation R($input: [ReviewEvidenceInput!]!) { reviewEvidenceBatch(input: $input) { "
    "reviewed results { index evidenceId evidence { id status reviewComment "
    "reviewedBy { name } enrollment { status } } " + ERRORS + " } " + ERRORS + " } }"
)


def rows(count: int, *, start: int = 0, prefix: str = "hr") -> list[dict[str, Any]]:
    return [
        {
            "name": f"Person {i:04}",
            "email": f"{prefix}.{i:04}@example.com",
            "role": "LEARNER",
            "externalId": f"{prefix.upper()}-{i:04}",
        }
        for i in range(start, start + count)
    ]


async def create_users(
    client: GraphQLClient, token: str, input: list[dict[str, Any]]
) -> dict[str, Any]:
    data = await client.data(CREATE_USERS, {"input": input}, token=token)
    payload: dict[str, Any] = data["createUsers"]
    return payload


# -- createUsers --------------------------------------------------------------------------


async def test_a_thousand_users_in_one_call_with_a_bounded_number_of_statements(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    sent = rows(1000)
    sent[5]["managerId"] = world.manager.id
    await graphql_client.data("{ viewer { id } }", token=world.admin.token)  # token bookkeeping
    sql_queries.reset()
    started = time.perf_counter()
    payload = await create_users(graphql_client, world.admin.token, sent)
    elapsed = time.perf_counter() - started

    assert payload["errors"] == []
    made = payload["users"]
    assert [u["email"] for u in made] == [r["email"] for r in sent]  # input order
    assert [u["externalId"] for u in made] == [r["externalId"] for r in sent]
    assert made[5]["manager"] == {"id": world.manager.id}
    assert {u["role"] for u in made} == {"LEARNER"}
    assert len({u["id"] for u in made}) == 1000
    stored = await User.filter(email__startswith="hr.").count()
    assert stored == 1000
    # The whole request: token, the checks (emails, externalIds, managers), one batched
    # insert, one read of the new rows, one batched audit insert, then the payload's
    # externalIds and managers; whatever the row count.
    assert sql_queries.count <= 14, sql_queries.statements
    inserts = [s for s in sql_queries.statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 2, inserts  # the users, their audit rows
    audits = await AuditEvent.filter(action="createUser", detail__startswith="createUsers").count()
    assert audits == 1000
    assert elapsed < 20, elapsed


async def test_every_rows_problems_come_back_at_their_real_index_and_nothing_is_written(
    graphql_client: GraphQLClient, world: World
) -> None:
    await User.filter(id=world.other.user.id).update(external_id="HR-TAKEN")
    sent = rows(30)
    sent[3]["email"] = "not-an-address"
    sent[7]["email"] = sent[2]["email"].upper()  # the same address as row 2 once cleaned
    sent[10]["email"] = "lea.learner@example.com"  # Lea has it
    sent[12]["managerId"] = "not-an-id"
    sent[15]["managerId"] = world.learner.id  # a learner manages nobody
    sent[20]["externalId"] = "   "
    sent[22]["externalId"] = "HR-TAKEN"
    sent[24]["externalId"] = sent[1]["externalId"]
    sent[25]["name"] = " "
    sent[25]["email"] = "also bad"
    before = await table_counts(audit=True)

    payload = await create_users(graphql_client, world.admin.token, sent)

    assert payload["users"] == []
    found = [(e["field"], e["code"], e["existingId"]) for e in payload["errors"]]
    assert found == [
        (["input", "3", "email"], "INVALID_INPUT", None),
        (["input", "7", "email"], "INVALID_INPUT", None),
        (["input", "10", "email"], "CONFLICT", world.learner.id),
        (["input", "12", "managerId"], "NOT_FOUND", None),
        (["input", "15", "managerId"], "INVALID_INPUT", None),
        (["input", "20", "externalId"], "INVALID_INPUT", None),
        (["input", "22", "externalId"], "CONFLICT", world.other.id),
        (["input", "24", "externalId"], "INVALID_INPUT", None),
        (["input", "25", "name"], "INVALID_INPUT", None),
        (["input", "25", "email"], "INVALID_INPUT", None),
    ]
    messages = {tuple(e["field"]): e["message"] for e in payload["errors"]}
    assert messages[("input", "7", "email")] == "the same email as input[2]"
    assert messages[("input", "24", "externalId")] == "the same externalId as input[1]"
    assert "not a User ID" in messages[("input", "12", "managerId")]
    assert await table_counts(audit=True) == before


async def test_a_re_run_converges_on_the_users_made_the_first_time(
    graphql_client: GraphQLClient, world: World
) -> None:
    first = await create_users(graphql_client, world.admin.token, rows(50))
    again = await create_users(graphql_client, world.admin.token, rows(50))
    assert again["users"] == []
    # one CONFLICT per taken value, each naming the user made the first time
    by_row: dict[int, set[str | None]] = {}
    for error in again["errors"]:
        assert error["code"] == "CONFLICT"
        by_row.setdefault(int(error["field"][1]), set()).add(error["existingId"])
    assert by_row == {i: {user["id"]} for i, user in enumerate(first["users"])}
    assert await User.filter(email__startswith="hr.").count() == 50


async def test_a_row_a_concurrent_call_took_is_a_conflict_at_its_index(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a racing createUsers does on PostgreSQL, made certain: the call's checks see the
    addresses free, the unique index refuses the insert; the answer names the holders."""
    holder = await bulk.create_users(SYSTEM, [bulk.NewUser("Early", "hr.0002@x.org", Role.LEARNER)])
    real = bulk._conflicts
    calls = 0

    async def blind_first(keys: Any) -> Any:
        nonlocal calls
        calls += 1
        return [] if calls == 1 else await real(keys)

    monkeypatch.setattr(bulk, "_conflicts", blind_first)
    before = await table_counts(audit=True)
    new = [bulk.NewUser(f"P{i}", f"hr.000{i}@x.org", Role.LEARNER) for i in range(4)]
    with pytest.raises(DomainErrors) as refused:
        await bulk.create_users(SYSTEM, new)
    [error] = refused.value.errors
    assert error.field == ("input", "2", "email")
    assert error.existing == ("User", holder[0].id)  # type: ignore[attr-defined]
    assert await table_counts(audit=True) == before


async def test_only_admins_create_users_and_at_most_a_thousand_at_once(
    graphql_client: GraphQLClient, world: World
) -> None:
    refused = await graphql_client.run(CREATE_USERS, {"input": rows(2)}, token=world.manager.token)
    assert refused["data"] == {"createUsers": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    too_many = await create_users(graphql_client, world.admin.token, rows(1001))
    assert [(e["code"], e["field"]) for e in too_many["errors"]] == [("INVALID_INPUT", ["input"])]
    assert too_many["users"] == []
    empty = await create_users(graphql_client, world.admin.token, [])
    assert empty == {"users": [], "errors": []}
    assert not await User.filter(email__startswith="hr.").exists()


@pytest_asyncio.fixture
async def limited_client(db: None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose rate limit lets two requests through at once."""
    settings = load_settings(
        {"CERTGRAPH_RATE_LIMIT_PER_MINUTE": "6", "CERTGRAPH_RATE_LIMIT_BURST": "2"}
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
    ) as client:
        yield client


async def test_a_thousand_users_cost_one_request_of_the_rate_limit(
    world: World, limited_client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {world.admin.token}"}
    big = await limited_client.post(
        "/graphql",
        json={"query": CREATE_USERS, "variables": {"input": rows(1000)}},
        headers=headers,
    )
    assert big.status_code == 200, big.text
    assert big.json()["data"]["createUsers"]["errors"] == []
    # the burst of 2 holds one more request: the thousand rows took one
    after = await limited_client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers=headers
    )
    assert after.status_code == 200
    third = await limited_client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers=headers
    )
    assert third.status_code == 429


# -- reviewEvidenceBatch ------------------------------------------------------------------


async def pending_evidence(learners: list[Person]) -> list[Evidence]:
    cert = await make_certification(
        "Cloud Architect", [], kind=CertificationKind.EXTERNAL, issuer="Board"
    )
    assigned = await enrollments.assign_certification(
        SYSTEM, cert, [p.user.id for p in learners], None
    )
    by_learner = {e.learner_id: e.id for e in assigned}
    return [await add_evidence(by_learner[p.user.id], EvidenceStatus.PENDING) for p in learners]


async def test_a_batch_of_reviews_is_decided_one_by_one_with_an_event_each(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    team = [world.learner] + [
        await make_person(f"Report {i}", Role.LEARNER, manager=world.manager.user) for i in range(3)
    ]
    evidence = await pending_evidence([*team, world.other])
    done_already = evidence[3]
    await Evidence.filter(id=done_already.id).update(status=EvidenceStatus.REJECTED)
    await events.clear()
    gid = [encode_id("Evidence", e.id) for e in evidence]
    sent = [
        {"evidenceId": gid[0], "decision": "APPROVE"},
        {"evidenceId": gid[1], "decision": "REJECT", "comment": "blurred scan"},
        {"evidenceId": gid[0], "decision": "REJECT"},  # again in the same call
        {"evidenceId": gid[3], "decision": "APPROVE"},  # reviewed before
        {"evidenceId": "nonsense", "decision": "APPROVE"},
        {"evidenceId": gid[4], "decision": "APPROVE"},  # not Max's report: hidden
        {"evidenceId": gid[2], "decision": "APPROVE", "comment": "ok"},
    ]

    data = await graphql_client.data(REVIEW_BATCH, {"input": sent}, token=world.manager.token)

    payload = data["reviewEvidenceBatch"]
    assert payload["reviewed"] == 3
    results = payload["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["evidenceId"] for r in results] == [s["evidenceId"] for s in sent]
    done = {r["index"]: r["evidence"] for r in results if r["evidence"] is not None}
    assert {i: (e["id"], e["status"], e["reviewComment"]) for i, e in done.items()} == {
        0: (gid[0], "APPROVED", None),
        1: (gid[1], "REJECTED", "blurred scan"),
        6: (gid[2], "APPROVED", "ok"),
    }
    assert done[0]["reviewedBy"] == {"name": "Max Manager"}
    assert done[0]["enrollment"]["status"] == "COMPLETED"
    refused = {r["index"]: [(e["code"], e["field"]) for e in r["errors"]] for r in results}
    assert refused == {
        0: [],
        1: [],
        2: [("INVALID_INPUT", ["input", "2", "evidenceId"])],
        3: [("NOT_ALLOWED", ["input", "3", "evidenceId"])],
        4: [("NOT_FOUND", ["input", "4", "evidenceId"])],
        5: [("NOT_FOUND", ["input", "5", "evidenceId"])],
        6: [],
    }
    assert [e["field"][1] for e in payload["errors"]] == ["2", "3", "4", "5"]
    assert "not an Evidence ID" in results[4]["errors"][0]["message"]
    assert results[5]["errors"][0]["message"] == "no such evidence"
    # stored as answered; one audit row and one evidence_reviewed event per review done
    statuses = {e.id: (await Evidence.get(id=e.id)).status for e in evidence}
    assert statuses == {
        evidence[0].id: EvidenceStatus.APPROVED,
        evidence[1].id: EvidenceStatus.REJECTED,
        evidence[2].id: EvidenceStatus.APPROVED,
        evidence[3].id: EvidenceStatus.REJECTED,
        evidence[4].id: EvidenceStatus.PENDING,
    }
    assert await AuditEvent.filter(action="reviewEvidence").count() == 3
    reviewed = await events.named("evidence_reviewed")
    assert sorted(e.data.evidence_id for e in reviewed) == sorted([gid[0], gid[1], gid[2]])  # type: ignore[attr-defined]
    assert {e.data.reviewer.name for e in reviewed} == {"Max Manager"}  # type: ignore[attr-defined]


async def test_a_batch_over_the_limit_does_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    [item] = await pending_evidence([world.learner])
    sent = [{"evidenceId": encode_id("Evidence", item.id), "decision": "APPROVE"}] * (
        bulk.MAX_REVIEWS_PER_CALL + 1
    )
    data = await graphql_client.data(REVIEW_BATCH, {"input": sent}, token=world.admin.token)
    payload = data["reviewEvidenceBatch"]
    assert (payload["reviewed"], payload["results"]) == (0, [])
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", ["input"])]
    assert (await Evidence.get(id=item.id)).status == EvidenceStatus.PENDING


async def test_two_hundred_reviews_in_one_call(
    graphql_client: GraphQLClient, world: World, events: EventLog
) -> None:
    made = await bulk.create_users(
        SYSTEM,
        [bulk.NewUser(f"L{i}", f"l{i}@example.com", Role.LEARNER) for i in range(200)],
    )
    cert = await make_certification(
        "Cloud Architect", [], kind=CertificationKind.EXTERNAL, issuer="Board"
    )
    assigned = await enrollments.assign_certification(SYSTEM, cert, [u.id for u in made], None)
    await Evidence.bulk_create(
        [
            Evidence(
                enrollment_id=e.id,
                sha256="ab" * 32,
                filename="proof.pdf",
                content_type="application/pdf",
                size_bytes=1234,
                status=EvidenceStatus.PENDING,
                submitted_at=e.enrolled_at,
            )
            for e in assigned
        ]
    )
    ids = [e.id for e in await Evidence.all().order_by("id")]
    await events.clear()
    sent = [{"evidenceId": encode_id("Evidence", pk), "decision": "APPROVE"} for pk in ids]
    started = time.perf_counter()
    data = await graphql_client.data(REVIEW_BATCH, {"input": sent}, token=world.admin.token)
    elapsed = time.perf_counter() - started
    payload = data["reviewEvidenceBatch"]
    assert payload["reviewed"] == 200 and payload["errors"] == []
    assert {r["evidence"]["enrollment"]["status"] for r in payload["results"]} == {"COMPLETED"}
    assert len(await events.named("evidence_reviewed")) == 200
    assert await Enrollment.filter(certification_id=cert).count() == 200
    assert elapsed < 25, elapsed


# -- CSV import: a row's problems together ------------------------------------------------


async def test_an_import_row_reports_all_its_problems(world: World) -> None:
    header = ",".join(HEADER)
    course = world.course_ids[0]
    text = (
        f"{header}\n"
        f"nobody@example.com,999999,150,2026-13-01\n"  # 2: four problems
        f",abc,,\n"  # 3: three
        f"{world.learner.user.email},{course},40,2026-01-01T00:00:00Z\n"  # 4: one (cross-field)
        f"ghost@example.com,{course},50,\n"  # 5: one
    )
    result = await import_course_progress(
        world.admin.actor,
        BytesStream(text.encode()),
        blobs=blob_store(),
        filename="progress.csv",
        declared_type="text/csv",
    )
    assert result.imported == 0
    assert result.error_count == 4  # rows with errors
    messages = dict(result.row_errors)
    assert messages[2].split("; ") == [
        "no user with email 'nobody@example.com'",
        "no course with ID 999999",
        "percent '150' is not a whole number from 0 to 100",
        "completed_at '2026-13-01' is not an ISO 8601 date-time "
        "(e.g. 2026-03-01T09:00:00Z or 2026-03-01)",
    ]
    assert messages[3].split("; ") == [
        "learner_email is empty",
        "course_id 'abc' is not a Course ID",
        "give percent, completed_at or both",
    ]
    assert messages[4] == (
        "a row with completed_at records a completion: leave percent empty or make it 100"
    )
    assert messages[5] == "no user with email 'ghost@example.com'"


def test_the_cost_of_a_bulk_call_does_not_grow_with_its_rows() -> None:
    """docs/api.md, "Bulk calls": the estimate counts the document, not the rows sent."""
    schema = build_schema().graphql_schema
    document = parse(
        "mutation C($input: [UserInput!]!) { createUsers(input: $input) { "
        "users { id email externalId } errors { code field existingId } } }"
    )
    operation = get_operation_ast(document)
    assert operation is not None
    for count in (1, 1000):
        variables = {"input": rows(count)}
        assert estimate_cost(schema, operation, {}, variables, max_page_size=100) == 63
