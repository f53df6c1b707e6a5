"""Evidence through the API (domain.md "Evidence"), sent as hand-built multipart requests:
who may submit when, resubmission, who may review and once, the external-evidence config,
the review queue per role, and the signed download of what was stored."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.settings import Settings, get_settings
from gql.store.models import AuditEvent, CertificationKind, Evidence, EvidenceStatus
from tests.conftest import stored_files
from tests.files.samples import jpeg, pdf, png

from .conftest import GraphQLClient, Person, World, make_certification, make_person
from .uploads_support import (
    REVIEW,
    SUBMIT,
    FilePart,
    UploadClient,
    evidence_rows,
    external_certification,
)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


@pytest.fixture
def uploads(http: httpx.AsyncClient) -> UploadClient:
    return UploadClient(http)


async def submit(
    uploads: UploadClient,
    person: Person,
    cert: str,
    file: FilePart | None = None,
    **variables: Any,
) -> dict[str, Any]:
    data = await uploads.data(
        SUBMIT,
        {"cert": cert, **variables},
        {"variables.file": file or FilePart(pdf())},
        token=person.token,
    )
    payload: dict[str, Any] = data["submitEvidence"]
    return payload


async def review(
    graphql_client: GraphQLClient,
    person: Person,
    evidence_id: str,
    decision: str,
    comment: str | None = None,
) -> dict[str, Any]:
    variables = {"id": evidence_id, "decision": decision, "comment": comment}
    payload: dict[str, Any] = (await graphql_client.data(REVIEW, variables, token=person.token))[
        "reviewEvidence"
    ]
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]


async def enrollment_status(graphql_client: GraphQLClient, person: Person, cert: str) -> str | None:
    data = await graphql_client.data(
        "query C($id: ID!) { certification(id: $id) { viewerEnrollment { status } } }",
        {"id": cert},
        token=person.token,
    )
    enrollment = data["certification"]["viewerEnrollment"]
    return None if enrollment is None else str(enrollment["status"])


# -- submitting -----------------------------------------------------------------------------


async def test_a_learner_submits_proof_and_downloads_the_same_bytes(
    uploads: UploadClient, http: httpx.AsyncClient, world: World, data_dir: Path
) -> None:
    cert = await external_certification()
    content = pdf("certificate of Lea")
    payload = await submit(
        uploads,
        world.learner,
        cert,
        FilePart(content, "Lea's certificate.pdf"),
        completedOn="2026-01-15",
        note="passed in January",
    )

    assert payload["errors"] == []
    evidence = payload["evidence"]
    digest = hashlib.sha256(content).hexdigest()
    assert evidence["status"] == "PENDING"
    assert evidence["filename"] == "Lea's certificate.pdf"
    assert evidence["contentType"] == "application/pdf"
    assert evidence["sizeBytes"] == len(content) and evidence["sha256"] == digest
    assert evidence["completedOn"] == "2026-01-15" and evidence["note"] == "passed in January"
    assert evidence["reviewedBy"] is None and evidence["reviewedAt"] is None
    # self-enrolled and waiting for review
    assert evidence["enrollment"]["status"] == "PENDING_APPROVAL"
    assert evidence["enrollment"]["learner"] == {"name": "Lea Learner"}
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]

    download = await http.get(evidence["downloadUrl"])
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == digest
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("content", "filename", "content_type", "sniffed"),
    [
        (png(), "scan.png", "image/png", "image/png"),
        (jpeg(), "photo.jpeg", "image/jpeg", "image/jpeg"),
        (pdf(), "no-type", None, "application/pdf"),
        (png(), "anything", "application/octet-stream", "image/png"),
    ],
)
async def test_pdf_png_and_jpeg_are_taken_by_their_bytes(
    uploads: UploadClient,
    world: World,
    content: bytes,
    filename: str,
    content_type: str | None,
    sniffed: str,
) -> None:
    cert = await external_certification()
    payload = await submit(uploads, world.learner, cert, FilePart(content, filename, content_type))
    assert payload["errors"] == []
    assert payload["evidence"]["contentType"] == sniffed


async def test_no_new_proof_while_pending_or_completed(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, data_dir: Path
) -> None:
    cert = await external_certification()
    first = await submit(uploads, world.learner, cert)
    files_before = stored_files(data_dir)

    while_pending = await submit(uploads, world.learner, cert, FilePart(pdf("second")))
    assert codes(while_pending) == ["NOT_ALLOWED"] and while_pending["evidence"] is None
    assert "waiting for review" in while_pending["errors"][0]["message"]

    approved = await review(graphql_client, world.manager, first["evidence"]["id"], "APPROVE")
    assert approved["evidence"]["enrollment"]["status"] == "COMPLETED"
    when_completed = await submit(uploads, world.learner, cert, FilePart(pdf("third")))
    assert codes(when_completed) == ["NOT_ALLOWED"]

    assert await evidence_rows() == 1
    assert stored_files(data_dir) == files_before  # the refused files left nothing


async def test_resubmission_after_rejection(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_certification()
    first = await submit(uploads, world.learner, cert)
    rejected = await review(
        graphql_client, world.manager, first["evidence"]["id"], "REJECT", "blurry scan"
    )
    assert rejected["errors"] == []
    assert rejected["evidence"]["status"] == "REJECTED"
    assert rejected["evidence"]["reviewComment"] == "blurry scan"
    assert rejected["evidence"]["reviewedBy"] == {"name": "Max Manager"}
    assert rejected["evidence"]["enrollment"]["status"] == "REJECTED"

    second = await submit(uploads, world.learner, cert, FilePart(png(seed=3), "sharp.png", None))
    assert second["errors"] == []
    assert second["evidence"]["enrollment"]["status"] == "PENDING_APPROVAL"
    approved = await review(graphql_client, world.admin, second["evidence"]["id"], "APPROVE")
    assert approved["evidence"]["enrollment"]["status"] == "COMPLETED"
    assert await enrollment_status(graphql_client, world.learner, cert) == "COMPLETED"


async def test_only_external_published_certifications_take_proof(
    uploads: UploadClient, world: World, data_dir: Path
) -> None:
    internal = encode_id("Certification", await make_certification("Basics", world.course_ids))
    draft = encode_id(
        "Certification",
        await make_certification(
            "Draft", [], kind=CertificationKind.EXTERNAL, issuer="Board", publish=False
        ),
    )
    assert codes(await submit(uploads, world.learner, internal)) == ["NOT_ALLOWED"]
    not_found = await submit(uploads, world.learner, draft)
    assert not_found["errors"] == [
        {"code": "NOT_FOUND", "message": "no such certification", "field": ["certificationId"]}
    ]
    assert codes(await submit(uploads, world.learner, "bogus")) == ["NOT_FOUND"]
    assert await evidence_rows() == 0 and stored_files(data_dir) == []


async def test_a_file_variable_sent_as_json_is_refused(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_certification()
    data = await graphql_client.data(
        SUBMIT, {"cert": cert, "file": "%PDF-1.4"}, token=world.learner.token
    )
    assert data["submitEvidence"]["errors"] == [
        {
            "code": "INVALID_INPUT",
            "message": "file must be sent as a file part of a multipart request "
            "(GraphQL multipart request spec)",
            "field": ["file"],
        }
    ]
    assert await evidence_rows() == 0


async def test_a_learner_cannot_see_another_learners_evidence(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_certification()
    mine = (await submit(uploads, world.learner, cert))["evidence"]
    query = "query N($id: ID!) { node(id: $id) { ... on Evidence { id downloadUrl } } }"

    seen_by_other = await graphql_client.data(query, {"id": mine["id"]}, token=world.other.token)
    seen_by_manager = await graphql_client.data(
        query, {"id": mine["id"]}, token=world.manager.token
    )
    enrollment = await graphql_client.data(
        "query N($id: ID!) { node(id: $id) { ... on Enrollment { evidence { downloadUrl } } } }",
        {"id": mine["enrollment"]["id"]},
        token=world.other.token,
    )

    assert seen_by_other == {"node": None} and enrollment == {"node": None}
    assert seen_by_manager["node"]["downloadUrl"].startswith(
        "http://certgraph.test/files/evidence/"
    )
    assert await AuditEvent.filter(action="denied:evidence").count() == 1


# -- reviewing ------------------------------------------------------------------------------


async def test_who_may_review(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_certification()
    evidence_id = (await submit(uploads, world.learner, cert))["evidence"]["id"]
    other_manager = await make_person("Olga Manager", world.manager.user.role)

    own = await review(graphql_client, world.learner, evidence_id, "APPROVE")
    other_learner = await review(graphql_client, world.other, evidence_id, "APPROVE")
    not_their_report = await review(graphql_client, other_manager, evidence_id, "APPROVE")
    assert codes(own) == ["NOT_ALLOWED"]
    assert own["errors"][0]["message"] == "nobody reviews their own evidence"
    assert codes(other_learner) == ["NOT_FOUND"]  # reads as if it did not exist
    assert codes(not_their_report) == ["NOT_FOUND"]
    assert (await Evidence.get()).status == EvidenceStatus.PENDING

    by_manager = await review(graphql_client, world.manager, evidence_id, "APPROVE", "well done")
    assert by_manager["errors"] == []
    assert by_manager["evidence"]["status"] == "APPROVED"
    assert by_manager["evidence"]["reviewedBy"] == {"name": "Max Manager"}

    again = await review(graphql_client, world.admin, evidence_id, "REJECT")
    assert codes(again) == ["NOT_ALLOWED"]
    assert "already reviewed" in again["errors"][0]["message"]
    assert (await Evidence.get()).status == EvidenceStatus.APPROVED


@pytest.mark.parametrize("role", ["manager", "admin"])
async def test_nobody_reviews_their_own_evidence(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, role: str
) -> None:
    reviewer: Person = getattr(world, role)
    cert = await external_certification()
    evidence_id = (await submit(uploads, reviewer, cert))["evidence"]["id"]

    payload = await review(graphql_client, reviewer, evidence_id, "APPROVE")

    assert codes(payload) == ["NOT_ALLOWED"]
    assert (await Evidence.get()).status == EvidenceStatus.PENDING
    assert await AuditEvent.filter(action="denied:reviewEvidence").count() == 1


async def test_a_learner_calling_review_on_a_malformed_id_gets_not_found(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await review(graphql_client, world.admin, "bogus", "APPROVE")
    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["evidenceId"])
    assert error["message"].startswith('no such evidence: "bogus" is not an Evidence ID')


async def test_review_queue_per_role(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_certification()
    report = (await submit(uploads, world.learner, cert))["evidence"]["id"]
    outsider = (await submit(uploads, world.other, cert))["evidence"]["id"]
    managers_own = (await submit(uploads, world.manager, cert))["evidence"]["id"]
    admins_own = (await submit(uploads, world.admin, cert))["evidence"]["id"]
    query = (
        "{ evidenceReviewQueue { totalCount edges { node { id status "
        "enrollment { learner { name } } } } } }"
    )

    async def queue(person: Person) -> list[str]:
        data = await graphql_client.data(query, token=person.token)
        connection = data["evidenceReviewQueue"]
        assert connection["totalCount"] == len(connection["edges"])
        return [edge["node"]["id"] for edge in connection["edges"]]

    assert await queue(world.learner) == []
    assert await queue(world.manager) == [report]  # direct reports only, not their own
    assert await queue(world.admin) == [report, outsider, managers_own]  # oldest first
    assert admins_own not in await queue(world.admin)

    await review(graphql_client, world.admin, report, "REJECT")
    assert await queue(world.manager) == []
    assert await queue(world.admin) == [outsider, managers_own]


# -- the external-evidence config -------------------------------------------------------------


async def test_without_required_approval_a_submission_completes(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    cert = await external_certification(requiresApproval=False)
    payload = await submit(uploads, world.learner, cert)
    enrollment = payload["evidence"]["enrollment"]
    assert enrollment["status"] == "COMPLETED"
    assert enrollment["awards"] == [{"awardedAt": frozen_now.isoformat()}]
    assert await graphql_client.data(
        "{ evidenceReviewQueue { totalCount } }", token=world.admin.token
    ) == {
        "evidenceReviewQueue": {"totalCount": 1}  # still PENDING: a reviewer may look at it
    }


async def test_dated_by_the_learner_needs_completed_on_and_awards_on_it(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    cert = await external_certification(completionDate="learner")
    missing = await submit(uploads, world.learner, cert)
    assert missing["errors"][0]["code"] == "INVALID_INPUT"
    assert missing["errors"][0]["field"] == ["completedOn"]
    future = await submit(
        uploads,
        world.learner,
        cert,
        completedOn=(frozen_now.date() + timedelta(days=2)).isoformat(),
    )
    assert codes(future) == ["INVALID_INPUT"]
    assert await evidence_rows() == 0

    earned = date(2026, 2, 20)
    submitted = await submit(uploads, world.learner, cert, completedOn=earned.isoformat())
    approved = await review(graphql_client, world.manager, submitted["evidence"]["id"], "APPROVE")
    assert approved["evidence"]["enrollment"]["awards"] == [
        {"awardedAt": "2026-02-20T00:00:00+00:00"}
    ]
    assert approved["evidence"]["enrollment"]["completedAt"] == "2026-02-20T00:00:00+00:00"


async def test_dated_by_approval_awards_at_the_review(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    cert = await external_certification(completionDate="approval")
    submitted = await submit(uploads, world.learner, cert, completedOn="2025-12-01")
    approved = await review(graphql_client, world.manager, submitted["evidence"]["id"], "APPROVE")
    assert approved["evidence"]["enrollment"]["completedAt"] == frozen_now.isoformat()


async def test_mandatory_courses_first_when_the_config_says_so(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, data_dir: Path
) -> None:
    cert = await external_certification(world.course_ids[:1], requireMandatoryCourses=True)
    refused = await submit(uploads, world.learner, cert)
    assert codes(refused) == ["NOT_ALLOWED"]
    assert refused["errors"][0]["message"] == "complete the 1 remaining mandatory course(s) first"
    assert await evidence_rows() == 0 and stored_files(data_dir) == []

    done = await graphql_client.data(
        "mutation P($c: ID!) { recordCourseProgress(input: {courseId: $c, completed: true}) "
        "{ errors { code } } }",
        {"c": world.course_gid(0)},
        token=world.learner.token,
    )
    assert done == {"recordCourseProgress": {"errors": []}}
    accepted = await submit(uploads, world.learner, cert)
    assert accepted["errors"] == []
    assert accepted["evidence"]["enrollment"]["status"] == "PENDING_APPROVAL"
