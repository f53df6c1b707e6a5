"""External recurring certifications through the API: new proof is taken in an open window or
after expiry, a learner-stated completedOn must fall within the cycle and not in the future,
and the award it earns extends or restarts the validity as for courses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gql import clock
from gql.store.models import CertificationKind, CertificationType, Evidence
from tests.api.conftest import GraphQLClient, Person, World, make_certification
from tests.api.uploads_support import REVIEW, SUBMIT, FilePart, UploadClient
from tests.files.samples import pdf

from .api import awards, cert_gid, iso, my_enrollment, my_list

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def uploads(http: httpx.AsyncClient) -> UploadClient:
    return UploadClient(http)


async def submit(
    uploads: UploadClient, person: Person, cert: int, completed_on: str | None = None
) -> dict[str, Any]:
    data = await uploads.data(
        SUBMIT,
        {"cert": cert_gid(cert), "completedOn": completed_on},
        {"variables.file": FilePart(pdf(f"{person.user.name} {completed_on}"))},
        token=person.token,
    )
    payload: dict[str, Any] = data["submitEvidence"]
    return payload


async def approve(
    graphql_client: GraphQLClient, reviewer: Person, evidence_id: str
) -> dict[str, Any]:
    data = await graphql_client.data(
        REVIEW, {"id": evidence_id, "decision": "APPROVE"}, token=reviewer.token
    )
    payload: dict[str, Any] = data["reviewEvidence"]
    assert payload["errors"] == [], payload["errors"]
    return payload


def refusal(payload: dict[str, Any]) -> tuple[str, list[str] | None]:
    assert payload["evidence"] is None
    [error] = payload["errors"]
    return error["code"], error["field"]


async def external_yearly(**config: Any) -> int:
    return await make_certification(
        "Cloud Architect",
        [],
        kind=CertificationKind.EXTERNAL,
        type_=CertificationType.RECURRING,
        validity_months=12,
        issuer="Example Board",
        policy_config=config or None,
    )


async def certified_at_t0(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World, **config: Any
) -> int:
    """The learner's proof, stating T0's day, approved by their manager at T0."""
    cert = await external_yearly(**config)
    submitted = await submit(uploads, world.learner, cert, "2026-03-10")
    await approve(graphql_client, world.manager, submitted["evidence"]["id"])
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    awarded = "2026-03-10T00:00:00" if config.get("completionDate") == "learner" else iso(T0)
    assert [a[1][:19] for a in awards(enrollment)] == [awarded[:19]]
    return cert


async def test_proof_is_refused_until_the_window_opens_and_taken_from_then(
    uploads: UploadClient, graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await certified_at_t0(uploads, graphql_client, world, completionDate="learner")
    opens = datetime(2027, 3, 10, tzinfo=UTC) - timedelta(days=30)  # 2027-02-08 00:00

    clock.freeze(opens - timedelta(microseconds=1))
    early = await submit(uploads, world.learner, cert, "2027-02-07")
    assert refusal(early)[0] == "NOT_ALLOWED"
    assert "recertification window" in early["errors"][0]["message"]

    clock.freeze(opens + timedelta(hours=10))
    taken = await submit(uploads, world.learner, cert, "2027-02-08")
    assert taken["errors"] == []
    assert taken["evidence"]["status"] == "PENDING"
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    # the award of cycle 1 is still in force while the new proof waits
    assert (enrollment["status"], enrollment["cycle"]) == ("COMPLETED", 2)
    assert await my_list(graphql_client, world.learner, pending=True) == [
        ("Cloud Architect", "COMPLETED")
    ]


async def test_completed_on_must_fall_within_the_cycle_and_not_in_the_future(
    uploads: UploadClient, graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await certified_at_t0(uploads, graphql_client, world, completionDate="learner")
    clock.freeze(datetime(2027, 2, 20, 9, 0, tzinfo=UTC))  # cycle 2 began on 2027-02-08

    before_cycle = await submit(uploads, world.learner, cert, "2027-02-07")
    assert refusal(before_cycle) == ("INVALID_INPUT", ["completedOn"])
    assert "2027-02-08" in before_cycle["errors"][0]["message"]
    in_the_future = await submit(uploads, world.learner, cert, "2027-02-22")
    assert refusal(in_the_future) == ("INVALID_INPUT", ["completedOn"])
    missing = await submit(uploads, world.learner, cert, None)
    assert refusal(missing) == ("INVALID_INPUT", ["completedOn"])
    assert await Evidence.all().count() == 1  # only cycle 1's proof: refusals leave nothing

    on_the_first_day = await submit(uploads, world.learner, cert, "2027-02-08")
    assert on_the_first_day["errors"] == []


async def test_renewed_proof_in_the_window_extends_from_the_previous_expiry(
    uploads: UploadClient, graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await certified_at_t0(uploads, graphql_client, world, completionDate="learner")
    clock.freeze(datetime(2027, 2, 20, 9, 0, tzinfo=UTC))
    submitted = await submit(uploads, world.learner, cert, "2027-02-15")

    approved = await approve(graphql_client, world.manager, submitted["evidence"]["id"])

    assert approved["evidence"]["enrollment"]["status"] == "COMPLETED"
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    assert awards(enrollment) == [
        (1, "2026-03-10T00:00:00+00:00", "2027-03-10T00:00:00+00:00"),
        (2, "2027-02-15T00:00:00+00:00", "2028-03-10T00:00:00+00:00"),
    ]
    assert (enrollment["cycle"], enrollment["expiresAt"]) == (2, "2028-03-10T00:00:00+00:00")
    # the proof of cycle 2 counts for cycle 2 only: a new window refuses nothing earlier
    assert await my_list(graphql_client, world.learner, pending=True) == []


async def test_proof_after_expiry_restarts_the_validity_from_the_new_award(
    uploads: UploadClient, graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await certified_at_t0(uploads, graphql_client, world)  # dated by the approval
    clock.freeze(datetime(2027, 6, 1, 9, 0, tzinfo=UTC))
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "EXPIRED"

    submitted = await submit(uploads, world.learner, cert)
    assert submitted["errors"] == []
    # still EXPIRED while it waits (an expired award outranks the pending verdict), and a
    # second submission waits for the first decision
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "EXPIRED"
    assert refusal(await submit(uploads, world.learner, cert))[0] == "NOT_ALLOWED"

    clock.advance(timedelta(days=2))
    await approve(graphql_client, world.manager, submitted["evidence"]["id"])

    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    assert enrollment["status"] == "COMPLETED"
    assert awards(enrollment)[1] == (2, "2027-06-03T09:00:00+00:00", "2028-06-03T09:00:00+00:00")


async def test_a_stated_day_that_is_already_today_east_of_utc_awards_no_later_than_now(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await external_yearly(completionDate="learner", requiresApproval=False)
    evening = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # already March 11 at UTC+14
    clock.freeze(evening)

    submitted = await submit(uploads, world.learner, cert, "2026-03-11")

    assert submitted["errors"] == []
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    assert enrollment["status"] == "COMPLETED"
    # not 2026-03-11T00:00Z, which is still four hours away
    assert awards(enrollment) == [(1, iso(evening), "2027-03-10T20:00:00+00:00")]
    assert enrollment["completedAt"] == iso(evening)
