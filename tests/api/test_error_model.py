"""One error model (issue 17 items 1 and 5): every non-2xx answer of /graphql, and every error
answer of the other routes, is `{"data": null, "errors": [{"message", "extensions": {"code"}}]}`
as JSON with X-Request-ID (docs/api.md, Errors); root mutation fields are nullable, so one
refused mutation nulls only itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import pytest_asyncio

from gql.api.ids import encode_id
from gql.api.schema import print_sdl
from gql.api.view import MAX_JSON_BODY_BYTES, MULTIPART_FIELDS_BYTES, CertgraphGraphQL
from gql.app import create_app
from gql.domain import courses
from gql.settings import Settings
from gql.store.models import AuditEvent, Course, Enrollment
from tests.api.conftest import World, make_certification, table_counts

VIEWER = "{ viewer { id } }"
Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def client_for(db: None, data_dir: Path) -> AsyncIterator[Client]:
    """`await client_for(**settings)`: an HTTP client of an app built with those settings."""
    clients: list[httpx.AsyncClient] = []

    async def make(*, raise_app_exceptions: bool = True, **settings: Any) -> httpx.AsyncClient:
        app = create_app(Settings(data_dir=data_dir, **settings))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        client = httpx.AsyncClient(transport=transport, base_url="http://certgraph.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def bearer(person: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one shape: JSON, data null, one error with a message and this code, a request id.
    Returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert set(body) == {"data", "errors"} and body["data"] is None, body
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"], error
    assert error["extensions"]["code"] == code, error
    result: dict[str, Any] = error
    return result


# -- /graphql before GraphQL runs --------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"],
    ids=["none", "bad", "basic"],
)
async def test_401_is_json_with_the_challenge(
    http: httpx.AsyncClient, world: World, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == 'Bearer realm="certgraph"'


async def test_a_json_array_is_refused_as_batching_and_runs_nothing(
    http: httpx.AsyncClient, world: World
) -> None:
    before = await table_counts()
    response = await http.post(
        "/graphql",
        json=[{"query": 'mutation { createCourse(input: {name: "B"}) { errors { code } } }'}],
        headers=bearer(world.admin),
    )
    error = assert_error(response, 400, "BATCHING_NOT_SUPPORTED")
    assert "one operation per request" in error["message"]
    assert await table_counts() == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"variables": {}}', "No GraphQL query found"),
        (b"{", "Unable to parse request body as JSON"),
        (b'{"query": "{ viewer { id } }"', "Unable to parse request body as JSON"),
        (b"\xff\xfe{}", "Unable to parse request body as JSON"),  # not UTF-8
        (b'"{ viewer { id } }"', "must be a JSON object"),
        (b'{"query": 42}', "must be a string"),
        (b'{"query": "{ viewer { id } }", "variables": []}', "must be an object"),
        (b'{"query": "{ viewer { id } }", "variables": {"x": ' + b"[" * 80 + b"]" * 80 + b"}}",
         "nests deeper than 64 levels"),
    ],
    ids=["no-query", "malformed", "truncated", "not-utf8", "string", "query-int", "vars-list",
         "too-deep"],
)  # fmt: skip
async def test_a_bad_json_body_is_400_bad_request(
    http: httpx.AsyncClient, world: World, body: bytes, words: str
) -> None:
    response = await http.post(
        "/graphql",
        content=body,
        headers={**bearer(world.admin), "Content-Type": "application/json"},
    )
    error = assert_error(response, 400, "BAD_REQUEST")
    assert words in error["message"]


async def test_a_body_neither_json_nor_multipart_is_415(
    http: httpx.AsyncClient, world: World
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await http.post(
            "/graphql",
            content=b"query=%7B+viewer+%7B+id+%7D+%7D",
            headers={**bearer(world.admin), "Content-Type": content_type},
        )
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    # without a token the 401 comes first: nothing about the request is told before that
    anonymous = await http.post("/graphql", content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(anonymous, 401, "UNAUTHENTICATED")


async def oversized_chunks(size: int) -> AsyncIterator[bytes]:
    yield b'{"query": "{ viewer { id } }", "x": "'
    sent = 0
    while sent < size:
        yield b" " * 65536
        sent += 65536
    yield b'"}'


async def test_413_is_json_for_json_bodies_declared_or_chunked(
    http: httpx.AsyncClient, world: World
) -> None:
    headers = {**bearer(world.admin), "Content-Type": "application/json"}
    declared = await http.post(
        "/graphql",
        content=b'{"query": "' + b" " * (MAX_JSON_BODY_BYTES + 1) + b'{ viewer { id } }"}',
        headers=headers,
    )
    error = assert_error(declared, 413, "PAYLOAD_TOO_LARGE")
    assert error["extensions"]["maxBytes"] == MAX_JSON_BODY_BYTES
    chunked = await http.post(
        "/graphql", content=oversized_chunks(2 * MAX_JSON_BODY_BYTES), headers=headers
    )
    assert_error(chunked, 413, "PAYLOAD_TOO_LARGE")
    # a body of exactly the limit is read
    exact = b'{"query": "{ viewer { id } }"}'
    exact = exact[:-1] + b" " * (MAX_JSON_BODY_BYTES - len(exact)) + b"}"
    assert (await http.post("/graphql", content=exact, headers=headers)).status_code == 200


async def test_413_is_json_for_a_multipart_body_over_the_upload_limit(
    client_for: Client, world: World
) -> None:
    http = await client_for(max_upload_bytes=1024)
    limit = 1024 + MULTIPART_FIELDS_BYTES
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            '{"query": "{ viewer { id } }"}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="a.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + b"%" * (2 * limit)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await http.post(
        "/graphql",
        content=body,
        headers={
            **bearer(world.learner),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["extensions"]["maxBytes"] == limit


async def test_multipart_refused_is_json(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        "/graphql",
        content=b"garbage",
        headers={**bearer(world.learner), "Content-Type": "multipart/form-data"},
    )
    assert_error(response, 400, "MULTIPART_REFUSED")


async def test_a_malformed_multipart_request_is_json(http: httpx.AsyncClient, world: World) -> None:
    headers = {**bearer(world.learner), "Content-Type": "multipart/form-data; boundary=xyz"}
    response = await http.post(
        "/graphql",
        content=b'--xyz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        b'{"query": "{ viewer { id } }", "variables": {"f": null}}\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        b'{"0": ["variables.f"]}\r\n--xyz--\r\n',
        headers=headers,
    )
    assert_error(response, 400, "BAD_REQUEST")  # the map names a file part that is not there


async def test_429_is_json_with_retry_after(client_for: Client, world: World) -> None:
    http = await client_for(rate_limit_per_minute=1, rate_limit_burst=1)
    first = await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin))
    assert first.status_code == 200
    refused = await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin))
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert int(refused.headers["retry-after"]) == error["extensions"]["retryAfter"] >= 1


async def test_504_is_json(
    client_for: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(courses, "list_courses", stuck)
    http = await client_for(request_timeout_seconds=0.2)
    response = await http.post(
        "/graphql", json={"query": "{ courses { totalCount } }"}, headers=bearer(world.learner)
    )
    error = assert_error(response, 504, "REQUEST_TIMEOUT")
    assert error["extensions"]["changesKept"] is False


async def test_a_bug_outside_execution_is_a_json_500_with_the_request_id(
    client_for: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(CertgraphGraphQL, "run", broken)
    http = await client_for(raise_app_exceptions=False, cors_origins=["https://app.example.com"])
    response = await http.post(
        "/graphql",
        json={"query": VIEWER},
        headers={**bearer(world.learner), "Origin": "https://app.example.com"},
    )
    error = assert_error(response, 500, "INTERNAL_SERVER_ERROR")
    assert "secret" not in response.text
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    # inside CORS: the SPA can read it
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


# -- GraphQL errors in HTTP 200 keep their shape and carry the request id ----------------------


async def test_query_cost_exceeded_is_a_200_with_its_code(client_for: Client, world: World) -> None:
    http = await client_for(max_query_cost=5)
    response = await http.post(
        "/graphql",
        json={"query": "{ courses(first: 10) { edges { node { id name } } } }"},
        headers=bearer(world.learner),
    )
    assert response.status_code == 200 and response.headers["x-request-id"]
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_COST_EXCEEDED"
    assert error["extensions"]["maxCost"] == 5 and error["extensions"]["cost"] > 5


async def test_forbidden_is_a_200_with_its_code(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        "/graphql",
        json={"query": 'mutation { createCourse(input: {name: "X"}) { errors { code } } }'},
        headers=bearer(world.learner),
    )
    assert response.status_code == 200 and response.headers["x-request-id"]
    body = response.json()
    assert body["data"] == {"createCourse": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and error["path"] == ["createCourse"]


# -- other routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/graphql/", "/files/evidence/1/", "/files/evidence/x", "/exports/"]
)
async def test_an_unknown_path_is_a_json_404(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path, headers={"Host": "attacker.example"})
    assert_error(response, 404, "NOT_FOUND")
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/graphql", "POST"),
        ("DELETE", "/graphql", "POST"),
        ("OPTIONS", "/graphql", "POST"),  # no Origin: not a preflight
        ("GET", "/graphql", "POST"),  # production's hint
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/files/evidence/1", "GET, HEAD"),
        ("POST", "/exports/enrollments.csv", "GET, HEAD"),
    ],
)
async def test_a_method_a_path_does_not_take_is_a_json_405_with_allow(
    http: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await http.request(method, path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))


async def test_file_and_export_refusals_are_json(http: httpx.AsyncClient, world: World) -> None:
    file = await http.get("/files/evidence/1?exp=9999999999&sig=forged")
    assert_error(file, 403, "FORBIDDEN")
    assert file.headers["content-security-policy"] == "default-src 'none'; sandbox"
    gone = await http.get("/files/nosuchkind/1?exp=9999999999&sig=forged")
    assert_error(gone, 404, "NOT_FOUND")
    export = await http.get("/exports/enrollments.csv?q=e30&exp=9999999999&sig=forged")
    assert_error(export, 403, "FORBIDDEN")


# -- root mutation fields are nullable ---------------------------------------------------------


def test_every_root_mutation_field_is_nullable() -> None:
    schema = graphql.build_schema(print_sdl())
    assert schema.mutation_type is not None
    non_null = [
        name
        for name, field in schema.mutation_type.fields.items()
        if graphql.is_non_null_type(field.type)
    ]
    assert non_null == []


TWO_MUTATIONS = """
mutation($cert: ID!) {
  refused: createCourse(input: {name: "Not a learner's"}) { course { id } errors { code } }
  allowed: startCertification(certificationId: $cert) {
    enrollment { id status } errors { code }
  }
}
"""


async def test_a_refused_mutation_nulls_only_itself(http: httpx.AsyncClient, world: World) -> None:
    cert = await make_certification("Cloud", world.course_ids[:1])
    response = await http.post(
        "/graphql",
        json={"query": TWO_MUTATIONS, "variables": {"cert": encode_id("Certification", cert)}},
        headers=bearer(world.learner),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["refused"] is None
    allowed = body["data"]["allowed"]
    assert allowed["errors"] == [] and allowed["enrollment"]["status"] == "STARTED"
    [error] = body["errors"]
    assert error["path"] == ["refused"] and error["extensions"]["code"] == "FORBIDDEN"
    # the allowed write happened, the refused one did not (and was audited)
    assert await Enrollment.filter(learner_id=world.learner.user.id, certification_id=cert).exists()
    assert not await Course.filter(name="Not a learner's").exists()
    assert await AuditEvent.filter(action="denied:createCourse").count() == 1


def test_the_error_shape_is_the_documented_one() -> None:
    api = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    codes = [
        "BAD_REQUEST",
        "BATCHING_NOT_SUPPORTED",
        "MULTIPART_REFUSED",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "RATE_LIMITED",
        "INTERNAL_SERVER_ERROR",
        "REQUEST_TIMEOUT",
    ]
    errors_section = api.split("## Errors", 1)[1].split("\n## ", 1)[0]
    sdl = print_sdl()
    for code in codes:
        assert f"| {code} |" in errors_section, code
        assert code in sdl, code
    assert '{"data": null, "errors": [{"message", "extensions": {"code"}}]}' in errors_section
