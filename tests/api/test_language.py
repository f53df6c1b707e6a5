"""The API in the request's language (docs/api.md, Languages): Accept-Language picks English
or Dutch for explanations and refusals, Content-Language says which, and progressDetail gives
the counts behind the explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from gql.api.ids import encode_id
from gql.store.models import CertificationType
from tests.api.conftest import GraphQLClient, World, make_certification

START = (
    "mutation S($id: ID!) { startCertification(certificationId: $id) {"
    " enrollment { explanation progressDetail { done required remaining } }"
    " errors { code message field } } }"
)
PROGRESS = (
    "mutation P($input: RecordCourseProgressInput!) { recordCourseProgress(input: $input) {"
    " enrollments { explanation progressDetail { done required remaining } }"
    " errors { code message field } } }"
)
USERS = "query U($last: Int) { users(last: $last) { edges { node { name } } } }"


async def post(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any],
    token: str,
    language: str | None,
) -> tuple[dict[str, Any], str | None]:
    headers = {} if language is None else {"Accept-Language": language}
    response = await client.post(query, variables, token=token, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, response.headers.get("content-language")


@pytest.mark.parametrize(
    ("accept", "language", "explanation"),
    [
        ("nl-NL,nl;q=0.9,en;q=0.8", "nl", "0 van 2 verplichte cursussen voltooid"),
        ("fr", "en", "0 of 2 mandatory courses done"),
        (None, "en", "0 of 2 mandatory courses done"),
    ],
)
async def test_the_explanation_is_in_the_negotiated_language(
    graphql_client: GraphQLClient,
    world: World,
    accept: str | None,
    language: str,
    explanation: str,
) -> None:
    cert = await make_certification("Cloud", world.course_ids[:3], mandatory=[True, True, False])
    body, content_language = await post(
        graphql_client,
        START,
        {"id": encode_id("Certification", cert)},
        world.learner.token,
        accept,
    )
    assert content_language == language
    payload = body["data"]["startCertification"]
    assert payload["errors"] == []
    assert payload["enrollment"] == {
        "explanation": explanation,
        "progressDetail": {"done": 0, "required": 2, "remaining": 2},
    }


async def test_a_stored_explanation_is_told_in_the_language_of_each_read(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Cloud", world.course_ids[:2])
    await post(
        graphql_client, START, {"id": encode_id("Certification", cert)}, world.learner.token, None
    )
    done = {"courseId": world.course_gid(0), "completed": True}
    body, _ = await post(graphql_client, PROGRESS, {"input": done}, world.learner.token, "nl")
    [enrollment] = body["data"]["recordCourseProgress"]["enrollments"]
    assert enrollment == {
        "explanation": "1 van 2 verplichte cursussen voltooid",
        "progressDetail": {"done": 1, "required": 2, "remaining": 1},
    }
    body, _ = await post(graphql_client, PROGRESS, {"input": done}, world.learner.token, "en")
    [enrollment] = body["data"]["recordCourseProgress"]["enrollments"]
    assert enrollment["explanation"] == "1 of 2 mandatory courses done"


async def test_user_errors_of_mutations_are_in_dutch(
    graphql_client: GraphQLClient, world: World
) -> None:
    draft = await make_certification("Draft", world.course_ids[:1], publish=False)
    body, _ = await post(
        graphql_client,
        START,
        {"id": encode_id("Certification", draft)},
        world.learner.token,
        "nl",
    )
    [error] = body["data"]["startCertification"]["errors"]
    # a learner does not see drafts
    assert error == {
        "code": "NOT_FOUND",
        "message": "deze certificering bestaat niet",
        "field": ["certificationId"],
    }

    too_much = {"courseId": world.course_gid(0), "percent": 150}
    body, _ = await post(graphql_client, PROGRESS, {"input": too_much}, world.learner.token, "nl")
    assert body["data"]["recordCourseProgress"]["errors"] == [
        {
            "code": "INVALID_INPUT",
            "message": "percent moet tussen 0 en 100 liggen",
            "field": ["input", "percent"],
        }
    ]
    body, _ = await post(graphql_client, PROGRESS, {"input": too_much}, world.learner.token, "fr")
    [error] = body["data"]["recordCourseProgress"]["errors"]
    assert error["message"] == "percent must be between 0 and 100"


async def test_refusals_of_queries_are_in_dutch(
    graphql_client: GraphQLClient, world: World
) -> None:
    body, language = await post(graphql_client, USERS, {"last": 101}, world.admin.token, "nl")
    assert language == "nl"
    [error] = body["errors"]
    assert error["message"] == "last moet tussen 0 en 100 liggen"
    assert error["extensions"]["code"] == "INVALID_INPUT"
    body, _ = await post(graphql_client, USERS, {"last": 101}, world.admin.token, None)
    assert body["errors"][0]["message"] == "last must be between 0 and 100"


async def test_a_completion_is_dated_in_the_language(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification(
        "Yearly", world.course_ids[:1], type_=CertificationType.RECURRING, validity_months=12
    )
    gid = encode_id("Certification", cert)
    await post(graphql_client, START, {"id": gid}, world.learner.token, None)
    done = {"courseId": world.course_gid(0), "completed": True}
    body, _ = await post(graphql_client, PROGRESS, {"input": done}, world.learner.token, "nl")
    [enrollment] = body["data"]["recordCourseProgress"]["enrollments"]
    assert (
        enrollment["explanation"]
        == "1 van 1 verplichte cursussen voltooid; geldig tot 10 maart 2027"
    )
    query = "query { viewer { certifications { edges { node { explanation } } } } }"
    body, _ = await post(graphql_client, query, {}, world.learner.token, "en")
    [edge] = body["data"]["viewer"]["certifications"]["edges"]
    assert edge["node"]["explanation"] == "1 of 1 mandatory courses done; valid until 2027-03-10"
