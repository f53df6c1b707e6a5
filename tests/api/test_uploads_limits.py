"""quality.md Security 5 over HTTP, and the multipart request's own rules.

The /graphql body limit is chosen by content type before anything is read: JSON 1 MiB,
multipart the upload limit plus room for the `operations` and `map` fields. Starlette's
RequestBodyLimitMiddleware refuses a declared Content-Length over the limit unread and counts
the bytes that really arrive otherwise (a chunked body, a Content-Length that lies), so a
200 MiB body is cut off after the limit; a file over the upload limit inside a body under it
is FILE_TOO_LARGE from gql.files. Either way: no temporary file, blob or row remains, and the
form parser's spooled parts are closed. These tests run with a 100 KiB upload limit.
"""

from __future__ import annotations

import hashlib
import tracemalloc
import uuid
from pathlib import Path

import httpx
import pytest

from gql.api.view import MAX_JSON_BODY_BYTES, MULTIPART_FIELDS_BYTES
from gql.app import create_app
from gql.settings import Settings, get_settings
from gql.store.models import Evidence
from tests.conftest import stored_files
from tests.files.samples import pdf

from .conftest import World
from .uploads_support import (
    MAX_UPLOAD,
    SUBMIT,
    CountingBody,
    FilePart,
    SpoolWatch,
    UploadClient,
    external_certification,
    multipart_head,
    spools,
)

__all__ = ["spools"]  # a fixture used by the tests below

BODY_LIMIT = MAX_UPLOAD + MULTIPART_FIELDS_BYTES
HUGE = 200 * 1024 * 1024


@pytest.fixture
def settings(upload_limit: int, data_dir: Path) -> Settings:
    return get_settings()


@pytest.fixture
def uploads(http: httpx.AsyncClient) -> UploadClient:
    return UploadClient(http)


def pdf_of_size(size: int) -> bytes:
    head = pdf()
    return head + b"%" * (size - len(head))


async def huge_upload(
    http: httpx.AsyncClient, world: World, *, content_length: int | None
) -> tuple[httpx.Response, CountingBody]:
    cert = await external_certification()
    boundary = uuid.uuid4().hex
    body = CountingBody(multipart_head(SUBMIT, {"cert": cert}, boundary, "big.pdf"), HUGE)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": f"Bearer {world.learner.token}",
    }
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    response = await http.post("/graphql", content=body, headers=headers)
    return response, body


async def assert_nothing_left(data_dir: Path, spools: SpoolWatch) -> None:
    assert stored_files(data_dir) == []
    assert await Evidence.all().count() == 0
    assert spools.all_closed


async def test_a_declared_length_over_the_limit_is_refused_unread(
    http: httpx.AsyncClient, world: World, data_dir: Path, spools: SpoolWatch
) -> None:
    response, body = await huge_upload(http, world, content_length=HUGE)
    assert response.status_code == 413
    assert body.pulled == 0
    assert spools.opened == []
    await assert_nothing_left(data_dir, spools)


@pytest.mark.parametrize(
    "content_length",
    [None, 4096],  # chunked, with no length at all; a Content-Length that lies
    ids=["chunked", "lying-content-length"],
)
async def test_a_200_mib_body_is_cut_off_at_the_limit_in_bounded_memory(
    http: httpx.AsyncClient,
    world: World,
    data_dir: Path,
    spools: SpoolWatch,
    content_length: int | None,
) -> None:
    tracemalloc.start()
    try:
        response, body = await huge_upload(http, world, content_length=content_length)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert body.pulled <= BODY_LIMIT + body.chunk  # read up to the limit, then refused
    assert peak < 8 * 1024 * 1024  # far below the 200 MiB sent: nothing buffered it
    await assert_nothing_left(data_dir, spools)


async def test_a_file_over_the_upload_limit_inside_the_body_limit_is_file_too_large(
    uploads: UploadClient, world: World, data_dir: Path, spools: SpoolWatch
) -> None:
    cert = await external_certification()
    data = await uploads.data(
        SUBMIT,
        {"cert": cert},
        {"variables.file": FilePart(pdf_of_size(MAX_UPLOAD + 1))},
        token=world.learner.token,
    )
    payload = data["submitEvidence"]
    assert payload["evidence"] is None
    assert payload["errors"] == [
        {
            "code": "FILE_TOO_LARGE",
            "message": f"the file is larger than the limit of {MAX_UPLOAD} bytes",
            "field": ["file"],
        }
    ]
    await assert_nothing_left(data_dir, spools)


async def test_a_file_of_exactly_the_limit_is_taken(
    uploads: UploadClient, world: World, data_dir: Path, spools: SpoolWatch
) -> None:
    cert = await external_certification()
    content = pdf_of_size(MAX_UPLOAD)
    data = await uploads.data(
        SUBMIT, {"cert": cert}, {"variables.file": FilePart(content)}, token=world.learner.token
    )
    assert data["submitEvidence"]["evidence"]["sizeBytes"] == MAX_UPLOAD
    digest = hashlib.sha256(content).hexdigest()
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]
    assert spools.opened and spools.all_closed


async def test_json_requests_keep_their_own_limit(
    http: httpx.AsyncClient, world: World, spools: SpoolWatch
) -> None:
    """Multipart's larger limit (with the default 10 MiB uploads) is not JSON's."""
    app = create_app(Settings())
    token = {"Authorization": f"Bearer {world.learner.token}"}
    padding = b" " * (MAX_JSON_BODY_BYTES + 1)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
    ) as client:
        too_big = await client.post(
            "/graphql",
            content=b'{"query": "{ viewer { name } }"' + padding + b"}",
            headers={**token, "Content-Type": "application/json"},
        )
        # the same size sent as a form part is within the multipart limit (and is then
        # refused by the form parser, which takes at most 1 MiB per field)
        as_text = await client.post(
            "/graphql", content=padding, headers={**token, "Content-Type": "text/plain"}
        )
    assert too_big.status_code == 413
    assert as_text.status_code == 413  # anything not multipart gets the JSON limit


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"],
    ids=["none", "bad", "basic"],
)
async def test_an_unauthenticated_multipart_post_is_refused_before_reading(
    http: httpx.AsyncClient,
    world: World,
    data_dir: Path,
    spools: SpoolWatch,
    authorization: str | None,
) -> None:
    """A browser sends a multipart form cross-origin without preflight, but never with an
    Authorization header; such a form is refused before a byte of it is read."""
    cert = await external_certification()
    boundary = uuid.uuid4().hex
    body = CountingBody(multipart_head(SUBMIT, {"cert": cert}, boundary, "p.pdf"), 50 * 1024)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await http.post("/graphql", content=body, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="certgraph"'
    assert response.headers["x-request-id"]
    result = response.json()
    assert result["data"] is None
    assert result["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert body.pulled == 0
    await assert_nothing_left(data_dir, spools)


async def test_a_malformed_multipart_body_is_a_400(http: httpx.AsyncClient, world: World) -> None:
    headers = {
        "Content-Type": "multipart/form-data; boundary=xyz",
        "Authorization": f"Bearer {world.learner.token}",
    }
    missing_map = await http.post(
        "/graphql",
        content=b'--xyz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        b'{"query": "{ viewer { name } }", "variables": {"f": null}}\r\n--xyz--\r\n',
        headers=headers,
    )
    no_boundary = await http.post(
        "/graphql",
        content=b"garbage",
        headers={**headers, "Content-Type": "multipart/form-data"},
    )
    assert missing_map.status_code == 200  # no files to map: a plain operation
    assert missing_map.json() == {"data": {"viewer": {"name": "Lea Learner"}}}
    assert no_boundary.status_code == 400
