"""Headers a browser client on another origin needs (issue 17 item 5): the request headers
urql and Apollo Client send pass the CORS preflight, X-Request-ID / Retry-After /
WWW-Authenticate are exposed, and X-Request-ID is on every answer: preflights, probes, file
and export downloads (docs/api.md, CORS and Errors)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.app import create_app
from gql.http.cors import CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS
from gql.settings import Settings
from tests.api.conftest import GraphQLClient, World, make_certification
from tests.api.uploads_support import FilePart, UploadClient
from tests.files.samples import png

SPA = "https://app.example.com"
TRACE = "trace-1234abcd"


@pytest.fixture
def settings(data_dir: Any) -> Settings:
    return Settings(data_dir=data_dir, cors_origins=[SPA])


def preflight(headers: str, origin: str = SPA) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


def listed(response: httpx.Response, header: str) -> set[str]:
    return {name.strip().lower() for name in response.headers.get(header, "").split(",") if name}


def test_the_allowed_headers_are_the_documented_ones() -> None:
    assert [h.lower() for h in CORS_ALLOWED_HEADERS] == [
        "authorization",
        "content-type",
        "x-request-id",
        "apollo-require-preflight",
        "x-apollo-operation-name",
        "apollographql-client-name",
        "apollographql-client-version",
        "graphql-preflight",
    ]
    assert {h.lower() for h in CORS_EXPOSED_HEADERS} == {
        "x-request-id",
        "retry-after",
        "www-authenticate",
    }


@pytest.mark.parametrize("header", [*CORS_ALLOWED_HEADERS, ", ".join(CORS_ALLOWED_HEADERS)])
async def test_a_preflight_with_a_client_header_is_allowed(
    http: httpx.AsyncClient, header: str
) -> None:
    response = await http.options("/graphql", headers=preflight(header.lower()))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SPA
    allowed = listed(response, "access-control-allow-headers")
    assert {h.strip().lower() for h in header.split(",")} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["x-request-id"]


async def test_apollo_upload_clients_preflight_is_allowed(http: httpx.AsyncClient) -> None:
    """What apollo-upload-client asks before a multipart POST, exactly as a browser sends it."""
    response = await http.options(
        "/graphql",
        headers=preflight(
            "apollo-require-preflight,apollographql-client-name,"
            "apollographql-client-version,authorization,x-apollo-operation-name,x-request-id"
        ),
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA


async def test_a_refused_preflight_is_a_json_error(http: httpx.AsyncClient) -> None:
    """Not 2xx, so the browser sends nothing; another origin is not even named back."""
    for headers, reason in (
        (preflight("x-custom-thing"), "headers"),
        (preflight("authorization", "https://evil.example"), "origin"),
    ):
        response = await http.options("/graphql", headers={**headers, "X-Request-ID": TRACE})
        assert response.status_code == 400
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert f"Disallowed CORS {reason}" in body["errors"][0]["message"]
        assert response.headers["x-request-id"] == TRACE
    assert "access-control-allow-origin" not in response.headers


async def test_answers_expose_the_request_id_retry_after_and_the_challenge(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, world: World
) -> None:
    answered = await graphql_client.post(
        "{ viewer { id } }", token=world.learner.token, headers={"Origin": SPA}
    )
    refused = await http.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"Origin": SPA}
    )
    for response in (answered, refused):
        assert response.headers["access-control-allow-origin"] == SPA
        assert {"x-request-id", "retry-after", "www-authenticate"} <= listed(
            response, "access-control-expose-headers"
        )
        assert response.headers["x-request-id"]
    assert answered.status_code == 200 and refused.status_code == 401


async def test_a_429_is_readable_cross_origin(db: None, data_dir: Any, world: World) -> None:
    app = create_app(
        Settings(data_dir=data_dir, cors_origins=[SPA], rate_limit_per_minute=1, rate_limit_burst=1)
    )
    headers = {"Origin": SPA, "Authorization": f"Bearer {world.learner.token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
    ) as http:
        await http.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
        refused = await http.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == SPA
    assert "retry-after" in listed(refused, "access-control-expose-headers")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-request-id"]


# -- X-Request-ID on every answer -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/nope"])
async def test_probes_and_unknown_paths_carry_the_request_id(
    http: httpx.AsyncClient, path: str
) -> None:
    kept = await http.get(path, headers={"X-Request-ID": TRACE})
    assert kept.headers["x-request-id"] == TRACE
    made = await http.get(path)
    assert len(made.headers["x-request-id"]) == 32


async def test_a_preflight_carries_the_clients_request_id(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/graphql", headers={**preflight("authorization"), "X-Request-ID": TRACE}
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == TRACE


BADGE = """
mutation($cert: ID!, $file: Upload!) {
  uploadCertificationBadge(certificationId: $cert, file: $file) {
    certification { badge { imageUrl } } errors { code }
  }
}
"""
EXPORT = "mutation { exportEnrollments { url errors { code } } }"


async def test_file_and_export_downloads_carry_the_request_id(
    http: httpx.AsyncClient, world: World
) -> None:
    cert = encode_id("Certification", await make_certification("Cloud", world.course_ids[:1]))
    data = await UploadClient(http).data(
        BADGE,
        {"cert": cert},
        {"variables.file": FilePart(png(4, 4), "badge.png", "image/png")},
        token=world.admin.token,
    )
    image_url = data["uploadCertificationBadge"]["certification"]["badge"]["imageUrl"]
    image = await http.get(image_url, headers={"X-Request-ID": TRACE, "Origin": SPA})
    assert image.status_code == 200 and image.content == png(4, 4)
    assert image.headers["x-request-id"] == TRACE

    export = await GraphQLClient(http).data(EXPORT, token=world.admin.token)
    csv = await http.get(export["exportEnrollments"]["url"], headers={"X-Request-ID": TRACE})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["x-request-id"] == TRACE

    # and their refusals
    for url in (image_url + "0", export["exportEnrollments"]["url"] + "0"):
        refused = await http.get(url, headers={"X-Request-ID": TRACE})
        assert refused.status_code == 403 and refused.headers["x-request-id"] == TRACE
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_413_carries_the_request_id(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        "/graphql",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={
            "Authorization": f"Bearer {world.learner.token}",
            "Content-Type": "application/json",
            "X-Request-ID": TRACE,
            "Origin": SPA,
        },
    )
    assert response.status_code == 413
    assert response.headers["x-request-id"] == TRACE
    assert response.headers["access-control-allow-origin"] == SPA
