"""Issue 18, learner text in English and Dutch, beyond the domain: upload refusals, bad-ID
hints and the HTTP layer's error bodies follow Accept-Language; `extensions.code` is the same
in every language; answers whose text depends on it say `Vary: Accept-Language`
(docs/api.md, "Languages")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from gql.api.ids import encode_id
from gql.api.persisted import document_hash
from gql.api.view import MAX_JSON_BODY_BYTES
from gql.app import create_app
from gql.settings import Settings, get_settings
from tests.files.samples import pdf, png

from .conftest import World
from .uploads_support import MAX_UPLOAD, SUBMIT, FilePart, UploadClient, external_certification

VIEWER = "{ viewer { id } }"
OTHER = "{ viewer { name } }"
DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"}
ENGLISH = {"Accept-Language": "en"}
LANGUAGES = {"en": ENGLISH, "nl": DUTCH}
HINT_EN = (
    "(IDs are opaque strings from an object's `id` field, e.g. "
    "`{ certifications { edges { node { id name } } } }`)"
)
HINT_NL = (
    "(ID's zijn ondoorzichtige tekenreeksen uit het `id`-veld van een object, bijv. "
    "`{ certifications { edges { node { id name } } } }`)"
)


@pytest.fixture
def settings(upload_limit: int, data_dir: Path) -> Settings:
    return get_settings()  # the small upload limit, so a too-large file is cheap


MakeClient = Callable[..., httpx.AsyncClient]


@pytest_asyncio.fixture
async def client_of(db: None, data_dir: Path) -> AsyncIterator[MakeClient]:
    """Clients of apps built with other settings (a rate limit, persisted-only mode)."""
    made: list[tuple[httpx.AsyncClient, Starlette]] = []

    def make(**values: Any) -> httpx.AsyncClient:
        app = create_app(Settings(data_dir=data_dir, **values))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
        )
        made.append((client, app))
        return client

    yield make
    for client, app in made:  # ASGITransport runs no lifespan: close what it would
        await client.aclose()
        await app.state.services.persisted.aclose()
        await app.state.rate_limiter.aclose()


def bearer(token: str, language: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **LANGUAGES[language]}


def the_error(response: httpx.Response, status: int, language: str) -> dict[str, Any]:
    """The one error of an error answer, checked to be told in `language` and to say so."""
    assert response.status_code == status, response.text
    assert response.headers["content-language"] == language
    varies = [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert "accept-language" in varies, response.headers
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert isinstance(error, dict)
    return error


# -- the HTTP layer's refusals --------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    english: str
    dutch: str
    send: Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]


def post_raw(
    content: bytes, content_type: str = "application/json"
) -> Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]:
    async def send(http: httpx.AsyncClient, token: str, language: str) -> httpx.Response:
        headers = {**bearer(token, language), "Content-Type": content_type}
        return await http.post("/graphql", content=content, headers=headers)

    return send


def post_json(body: object) -> Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]:
    return post_raw(json.dumps(body).encode())


def request(
    method: str, path: str
) -> Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]:
    async def send(http: httpx.AsyncClient, token: str, language: str) -> httpx.Response:
        return await http.request(method, path, headers=bearer(token, language))

    return send


def apq(sha: str, query: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if query is not None:
        body["query"] = query
    return body


def post_with_token(
    token: str,
) -> Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]:
    async def send(http: httpx.AsyncClient, _: str, language: str) -> httpx.Response:
        return await http.post("/graphql", json={"query": VIEWER}, headers=bearer(token, language))

    return send


REFUSALS = {
    "401 unknown token": Refusal(
        401,
        "UNAUTHENTICATED",
        "the token is unknown or revoked",
        "het token is onbekend of ingetrokken",
        post_with_token("cg_not-a-token-of-ours"),
    ),
    "413 body too large": Refusal(
        413,
        "PAYLOAD_TOO_LARGE",
        f"the request body is larger than the limit of {MAX_JSON_BODY_BYTES} bytes",
        f"de body van het verzoek is groter dan de limiet van {MAX_JSON_BODY_BYTES} bytes",
        post_raw(b" " * (MAX_JSON_BODY_BYTES + 1)),
    ),
    "415": Refusal(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "POST a GraphQL request as application/json, or as multipart/form-data for an upload",
        "POST een GraphQL-verzoek als application/json, of als multipart/form-data voor een upload",
        post_raw(b"query=x", "text/plain"),
    ),
    "405 route": Refusal(
        405,
        "METHOD_NOT_ALLOWED",
        "this path does not take the POST method",
        "dit pad accepteert de methode POST niet",
        request("POST", "/healthz"),
    ),
    "405 GET /graphql": Refusal(
        405,
        "METHOD_NOT_ALLOWED",
        "GraphQL queries are POSTed to /graphql as JSON, e.g. "
        '{"query": "{ viewer { name } }"} with Authorization: Bearer <token>; '
        "GraphiQL, the in-browser IDE, is served here only with CERTGRAPH_DEBUG=true",
        "GraphQL-query's gaan als JSON met POST naar /graphql, bijv. "
        '{"query": "{ viewer { name } }"} met Authorization: Bearer <token>; '
        "GraphiQL, de IDE in de browser, wordt hier alleen met CERTGRAPH_DEBUG=true aangeboden",
        request("GET", "/graphql"),
    ),
    "404": Refusal(
        404,
        "NOT_FOUND",
        "nothing is served at this path; GraphQL requests are POSTed to /graphql",
        "op dit pad wordt niets aangeboden; GraphQL-verzoeken gaan met POST naar /graphql",
        request("GET", "/nope"),
    ),
    "no query": Refusal(
        400,
        "BAD_REQUEST",
        "No GraphQL query found in the request",
        "Geen GraphQL-query gevonden in het verzoek",
        post_json({"variables": {}}),
    ),
    "malformed JSON": Refusal(
        400,
        "BAD_REQUEST",
        "Unable to parse request body as JSON",
        "De body van het verzoek is geen geldige JSON",
        post_raw(b'{"query": '),
    ),
    "not an object": Refusal(
        400,
        "BAD_REQUEST",
        "The request body must be a JSON object",
        "De body van het verzoek moet een JSON-object zijn",
        post_json(VIEWER),
    ),
    "batch": Refusal(
        400,
        "BATCHING_NOT_SUPPORTED",
        "a JSON array (a batch of operations) is not supported: send one operation per request",
        "een JSON-array (een batch van operaties) wordt niet ondersteund: stuur één operatie "
        "per verzoek",
        post_json([{"query": VIEWER}]),
    ),
    "multipart without boundary": Refusal(
        400,
        "MULTIPART_REFUSED",
        "the multipart body has no valid boundary",
        "de multipart-body heeft geen geldige boundary",
        post_raw(b"--x--\r\n", "multipart/form-data"),
    ),
    "persisted hash mismatch": Refusal(
        400,
        "PERSISTED_QUERY_HASH_MISMATCH",
        "extensions.persistedQuery.sha256Hash is not the sha256 of `query`",
        "extensions.persistedQuery.sha256Hash is niet de sha256 van `query`",
        post_json(apq(document_hash(OTHER), VIEWER)),
    ),
    "persisted bad hash": Refusal(
        400,
        "BAD_REQUEST",
        "extensions.persistedQuery.sha256Hash must be a sha256",
        "extensions.persistedQuery.sha256Hash moet een sha256 zijn",
        post_json(apq("abc")),
    ),
    # Apollo's protocol: clients match the message, so it is the same in every language
    "persisted not found": Refusal(
        200,
        "PERSISTED_QUERY_NOT_FOUND",
        "PersistedQueryNotFound",
        "PersistedQueryNotFound",
        post_json(apq(document_hash(OTHER))),
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
async def test_an_http_refusal_is_told_in_english_and_dutch_with_the_same_code(
    http: httpx.AsyncClient, world: World, name: str
) -> None:
    refusal = REFUSALS[name]
    told = {}
    for language in ("en", "nl"):
        response = await refusal.send(http, world.learner.token, language)
        error = the_error(response, refusal.status, language)
        assert error["extensions"]["code"] == refusal.code, error
        told[language] = error["message"]
    assert told == {"en": refusal.english, "nl": refusal.dutch}


async def test_no_accept_language_is_english(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        "/graphql", json={"variables": {}}, headers={"Authorization": f"Bearer {world.admin.token}"}
    )
    error = the_error(response, 400, "en")
    assert error["message"] == "No GraphQL query found in the request"


async def test_429_is_told_in_english_and_dutch(client_of: MakeClient, world: World) -> None:
    http = client_of(rate_limit_per_minute=1, rate_limit_burst=1)
    first = await http.post(
        "/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token, "en")
    )
    assert first.status_code == 200
    told = {}
    for language in ("en", "nl"):
        response = await http.post(
            "/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token, language)
        )
        error = the_error(response, 429, language)
        assert error["extensions"]["code"] == "RATE_LIMITED"
        told[language] = (error["message"], error["extensions"]["retryAfter"])
    seconds = told["en"][1]
    assert told == {
        "en": (f"too many requests for this token; retry in {seconds} s", seconds),
        "nl": (f"te veel verzoeken voor dit token; probeer het over {seconds} s opnieuw", seconds),
    }


@pytest.fixture
def manifest(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "persisted-documents.json"
    path.write_text(json.dumps({document_hash(VIEWER): VIEWER}))
    return path


async def test_an_unregistered_document_is_refused_in_english_and_dutch(
    client_of: MakeClient, world: World, manifest: Path
) -> None:
    http = client_of(persisted_queries_only=True, persisted_queries_file=manifest)
    told = {}
    for language in ("en", "nl"):
        response = await http.post(
            "/graphql", json={"query": OTHER}, headers=bearer(world.learner.token, language)
        )
        error = the_error(response, 400, language)
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_REGISTERED"
        told[language] = error["message"]
    assert told == {
        "en": "this server runs only its registered documents (persisted queries)",
        "nl": "deze server voert alleen zijn geregistreerde documenten uit (persisted queries)",
    }


# -- upload refusals and bad-ID hints (UserErrors) ------------------------------------------


async def upload_error(
    http: httpx.AsyncClient, world: World, file: FilePart, language: str
) -> dict[str, Any]:
    cert = await external_certification()
    response = await UploadClient(http).post(
        SUBMIT,
        {"cert": cert},
        {"variables.file": file},
        token=world.learner.token,
        headers=LANGUAGES[language],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-language"] == language
    payload = response.json()["data"]["submitEvidence"]
    assert payload["evidence"] is None
    [error] = payload["errors"]
    assert isinstance(error, dict)
    assert error["field"] == ["file"]
    return error


UPLOADS = {
    "too large": (
        FilePart(pdf() + b"%" * MAX_UPLOAD),
        "FILE_TOO_LARGE",
        f"the file is larger than the limit of {MAX_UPLOAD} bytes",
        f"het bestand is groter dan de limiet van {MAX_UPLOAD} bytes",
    ),
    "name says another type": (
        FilePart(png(), filename="proof.pdf", content_type=None),
        "UNSUPPORTED_FILE_TYPE",
        "evidence files must be PDF, PNG or JPEG; the name says PDF but the content is PNG",
        "bewijsbestanden moeten PDF, PNG of JPEG zijn; de naam zegt PDF maar de inhoud is PNG",
    ),
    "empty": (
        FilePart(b"", filename="proof", content_type=None),
        "UNSUPPORTED_FILE_TYPE",
        "evidence files must be PDF, PNG or JPEG; this one is an empty file",
        "bewijsbestanden moeten PDF, PNG of JPEG zijn; dit is een leeg bestand",
    ),
}


@pytest.mark.parametrize("name", sorted(UPLOADS))
async def test_an_upload_refusal_is_told_in_english_and_dutch(
    http: httpx.AsyncClient, world: World, name: str
) -> None:
    file, code, english, dutch = UPLOADS[name]
    told = {}
    for language in ("en", "nl"):
        error = await upload_error(http, world, file, language)
        assert error["code"] == code
        told[language] = error["message"]
    assert told == {"en": english, "nl": dutch}


START = (
    "mutation($id: ID!) { startCertification(certificationId: $id) "
    "{ errors { code message field } } }"
)


@pytest.mark.parametrize("kind", ["malformed", "another type"])
async def test_a_bad_id_hint_is_told_in_english_and_dutch(
    http: httpx.AsyncClient, world: World, kind: str
) -> None:
    value = "abc" if kind == "malformed" else encode_id("Course", world.course_ids[0])
    told = {}
    for language in ("en", "nl"):
        response = await http.post(
            "/graphql",
            json={"query": START, "variables": {"id": value}},
            headers=bearer(world.learner.token, language),
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-language"] == language
        [error] = response.json()["data"]["startCertification"]["errors"]
        assert error["code"] == "NOT_FOUND" and error["field"] == ["certificationId"]
        told[language] = error["message"]
    if kind == "malformed":
        english, dutch = "is not a Certification ID", "is geen Certification-ID"
    else:
        english = "is a Course ID, not a Certification ID"
        dutch = "is een Course-ID, geen Certification-ID"
    assert told == {
        "en": f'no such certification: "{value}" {english} {HINT_EN}',
        "nl": f'deze certificering bestaat niet: "{value}" {dutch} {HINT_NL}',
    }


# -- Vary ----------------------------------------------------------------------------------


async def test_graphql_answers_vary_on_accept_language_beside_origin(
    client_of: MakeClient, world: World
) -> None:
    spa = "https://spa.example"
    http = client_of(cors_origins=[spa])
    headers = {**bearer(world.learner.token, "nl"), "Origin": spa}
    answered = await http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert answered.status_code == 200
    refused = await http.post(
        "/graphql", content=b"{", headers={**headers, "Content-Type": "application/json"}
    )
    assert refused.status_code == 400
    for response in (answered, refused):
        assert response.headers["content-language"] == "nl"
        # one Vary header naming each once: the language and CORS's Origin
        [vary] = response.headers.get_list("vary")
        assert sorted(v.strip() for v in vary.split(",")) == ["Accept-Language", "Origin"]
