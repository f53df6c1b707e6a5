"""Dates and instants over the API (docs/api.md): Award.earnedOn / expiresOn and
Enrollment.completedOn / expiresOn are calendar days no time zone moves, taken in the
organisation's time zone (CERTGRAPH_TIME_ZONE) for awards earned at an instant; startedAt is
set once an enrollment is past ENROLLED; and the days cost no extra statement."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.settings import Settings, SettingsError, load_settings
from gql.store.models import CertificationKind, CertificationType
from tests.conftest import QueryCounter
from tests.files.samples import pdf

from .conftest import GraphQLClient, World, make_certification
from .uploads_support import FilePart, UploadClient

ENROLLMENT = """
  status startedAt completedAt expiresAt completedOn expiresOn
  awards { cycle awardedAt expiresAt earnedOn expiresOn }
"""

PROGRESS = (
    "mutation P($input: RecordCourseProgressInput!) { recordCourseProgress(input: $input) {"
    " enrollments {" + ENROLLMENT + "} errors { code message } } }"
)

SUBMIT = """
mutation S($cert: ID!, $file: Upload!, $completedOn: Date) {
  submitEvidence(certificationId: $cert, file: $file, completedOn: $completedOn) {
    evidence { id completedOn } errors { code message }
  }
}"""

REVIEW = (
    "mutation R($id: ID!) { reviewEvidence(evidenceId: $id, decision: APPROVE) {"
    " evidence { completedOn enrollment {" + ENROLLMENT + "} } errors { code message } } }"
)

MINE = "query M { viewer { certifications(first: 20) { edges { node {" + ENROLLMENT + "} } } } }"


@pytest.fixture
def settings(data_dir: Path, request: pytest.FixtureRequest) -> Settings:
    """The app's settings, in the organisation's time zone the test names (UTC by default)."""
    return Settings(data_dir=data_dir, time_zone=getattr(request, "param", "UTC"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("settings", "earned_on", "expires_on"),
    [
        ("America/Los_Angeles", "2026-11-19", "2028-11-19"),
        ("UTC", "2026-11-20", "2028-11-20"),
    ],
    indirect=["settings"],
)
async def test_a_course_award_is_dated_in_the_organisations_time_zone(
    graphql_client: GraphQLClient,
    world: World,
    earned_on: str,
    expires_on: str,
) -> None:
    clock.freeze(at("2026-11-20T03:00:00+00:00"))
    enrollment = await _assign_and_complete(graphql_client, world)
    assert enrollment["status"] == "COMPLETED"
    assert enrollment["startedAt"] == "2026-11-20T03:00:00+00:00"  # never pressed Start
    assert (enrollment["completedOn"], enrollment["expiresOn"]) == (earned_on, expires_on)
    # the instants are as they were
    assert enrollment["completedAt"] == "2026-11-20T03:00:00+00:00"
    assert enrollment["expiresAt"] == "2028-11-20T03:00:00+00:00"
    [award] = enrollment["awards"]
    assert (award["earnedOn"], award["expiresOn"]) == (earned_on, expires_on)


async def _assign_and_complete(graphql_client: GraphQLClient, world: World) -> dict[str, Any]:
    """An admin assigns the learner, who completes the course without pressing Start."""
    cert = await make_certification(
        "Fire safety", world.course_ids[1:2], type_=CertificationType.RECURRING, validity_months=24
    )
    assign = (
        "mutation A($c: ID!, $l: [ID!]!) { assignCertification(certificationId: $c,"
        " learnerIds: $l) { errors { code } } }"
    )
    data = await graphql_client.data(
        assign,
        {"c": encode_id("Certification", cert), "l": [world.learner.id]},
        token=world.admin.token,
    )
    assert data["assignCertification"]["errors"] == []
    data = await graphql_client.data(
        PROGRESS,
        {"input": {"courseId": world.course_gid(1), "completed": True}},
        token=world.learner.token,
    )
    [enrollment] = data["recordCourseProgress"]["enrollments"]
    result: dict[str, Any] = enrollment
    return result


@pytest.mark.parametrize("settings", ["America/Los_Angeles", "UTC"], indirect=True)
async def test_proof_earned_on_a_day_shows_that_day_in_every_time_zone(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, world: World
) -> None:
    """The frontend's case: evidence "earned on 2026-11-20" is completed on 2026-11-20 and
    expires on 2028-11-20 whatever zone the organisation or the viewer is in."""
    cert = await make_certification(
        "Cloud Architect",
        [],
        kind=CertificationKind.EXTERNAL,
        type_=CertificationType.RECURRING,
        validity_months=24,
        issuer="Example Board",
        policy_config={"completionDate": "learner"},
    )
    clock.freeze(at("2026-11-25T18:00:00+00:00"))
    uploads = UploadClient(http)
    submitted = await uploads.data(
        SUBMIT,
        {"cert": encode_id("Certification", cert), "completedOn": "2026-11-20"},
        {"variables.file": FilePart(pdf())},
        token=world.learner.token,
    )
    evidence = submitted["submitEvidence"]["evidence"]
    assert evidence["completedOn"] == "2026-11-20"
    data = await graphql_client.data(REVIEW, {"id": evidence["id"]}, token=world.manager.token)
    enrollment = data["reviewEvidence"]["evidence"]["enrollment"]
    assert enrollment["status"] == "COMPLETED"
    assert (enrollment["completedOn"], enrollment["expiresOn"]) == ("2026-11-20", "2028-11-20")
    [award] = enrollment["awards"]
    assert (award["earnedOn"], award["expiresOn"]) == ("2026-11-20", "2028-11-20")
    assert enrollment["startedAt"] is not None


async def test_the_days_cost_no_statement(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    await _assign_and_complete(graphql_client, world)
    without_days = MINE.replace("completedOn expiresOn", "").replace("earnedOn expiresOn", "")
    sql_queries.reset()
    await graphql_client.data(without_days, token=world.learner.token)
    plain = sql_queries.count
    sql_queries.reset()
    data = await graphql_client.data(MINE, token=world.learner.token)
    assert sql_queries.count == plain
    [edge] = data["viewer"]["certifications"]["edges"]
    assert edge["node"]["awards"][0]["earnedOn"] is not None


def test_an_unknown_time_zone_is_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match="CERTGRAPH_TIME_ZONE"):
        load_settings({"CERTGRAPH_TIME_ZONE": "Mars/Olympus_Mons"})
    assert load_settings({"CERTGRAPH_TIME_ZONE": "Europe/Berlin"}).time_zone == "Europe/Berlin"
    assert load_settings({}).time_zone == "UTC"
