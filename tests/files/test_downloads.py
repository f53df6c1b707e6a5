"""The signed download route, over HTTP, on a tiny app made only of gql.downloads.routes()."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from gql import clock
from gql.domain.badges import upload_certification_badge
from gql.domain.evidence import submit_evidence
from gql.downloads import routes
from gql.settings import get_settings
from gql.signing import UrlSigner
from gql.store.models import Certification, Evidence

from .conftest import World, blob_path, blob_store
from .samples import BytesStream, pdf, png


def signer() -> UrlSigner:
    """The signer of the process settings (its key file in the test's data dir)."""
    return UrlSigner.from_settings(get_settings())


def evidence_download_url(evidence: Evidence) -> str:
    return signer().evidence_url(evidence.id, evidence.sha256)


def badge_image_url(cert: Certification) -> str | None:
    return signer().badge_url(cert.id, cert.badge_sha256)


@pytest_asyncio.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=routes(blob_store(), signer()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def evidence_of(world: World, content: bytes, filename: str = "proof.pdf") -> Evidence:
    cert = await world.external()
    return await submit_evidence(
        world.learner, cert.id, BytesStream(content), blobs=blob_store(), filename=filename
    )


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    for key in [k for k, v in query.items() if v == ""]:
        del query[key]
    return f"{parts.path}?{urlencode(query)}"


def assert_refused(response: httpx.Response, status: int) -> None:
    """The API's JSON error (docs/api.md, Errors), none of the file's bytes."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    code = {403: "FORBIDDEN", 404: "NOT_FOUND"}[status]
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert response.headers["cache-control"] == "no-store"


async def test_evidence_downloads_as_an_attachment(
    http: httpx.AsyncClient, world: World, frozen_now: datetime
) -> None:
    content = pdf("the proof")
    evidence = await evidence_of(world, content, filename="../../Zertifikat Müller.pdf")

    url = evidence_download_url(evidence)
    response = await http.get(url)

    assert url.startswith(f"/files/evidence/{evidence.id}?exp=")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''Zertifikat%20M%C3%BCller.pdf"
    )


async def test_an_ascii_name_is_quoted_plainly(http: httpx.AsyncClient, world: World) -> None:
    evidence = await evidence_of(world, png(), filename="C:\\scans\\cert.png")
    response = await http.get(evidence_download_url(evidence))
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'attachment; filename="cert.png"'


async def test_badges_are_served_inline_and_cacheable(
    http: httpx.AsyncClient, world: World, frozen_now: datetime
) -> None:
    cert = await world.external()
    assert badge_image_url(cert) is None
    cert = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png()), blobs=blob_store(), filename="badge.png"
    )

    url = badge_image_url(cert)
    assert url is not None and url.startswith(f"/files/badge/{cert.id}?exp=")
    response = await http.get(url)

    assert response.status_code == 200
    assert response.content == png()
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers
    cache = response.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    assert int(cache.split("max-age=")[1].split(",")[0]) >= 86400
    clock.advance(timedelta(hours=1))
    assert badge_image_url(cert) == url  # the same URL for a while, so caches work


async def test_an_expired_url_is_refused(
    http: httpx.AsyncClient, world: World, frozen_now: datetime
) -> None:
    evidence = await evidence_of(world, pdf())
    url = evidence_download_url(evidence)

    clock.advance(timedelta(minutes=4, seconds=59))
    assert (await http.get(url)).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_refused(await http.get(url), 403)


async def test_altered_urls_are_refused(http: httpx.AsyncClient, world: World) -> None:
    evidence = await evidence_of(world, pdf())
    url = evidence_download_url(evidence)
    query = parse_qs(urlsplit(url).query)
    expires, signature = query["exp"][0], query["sig"][0]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]

    for altered in (
        with_query(url, sig=flipped),
        with_query(url, exp=str(int(expires) + 3600)),  # a longer life
        with_query(url, sig=""),
        with_query(url, exp=""),
        with_query(url, exp="1e99"),
        urlsplit(url).path,
    ):
        assert_refused(await http.get(altered), 403)


async def test_a_url_opens_only_its_own_file(http: httpx.AsyncClient, world: World) -> None:
    mine = await evidence_of(world, pdf("mine"))
    other_cert = await world.external()
    theirs = await submit_evidence(
        world.other_learner,
        other_cert.id,
        BytesStream(pdf("theirs")),
        blobs=blob_store(),
        filename="t.pdf",
    )
    badge_cert = await upload_certification_badge(
        world.admin, other_cert.id, BytesStream(png()), blobs=blob_store(), filename="b.png"
    )
    my_query = urlsplit(evidence_download_url(mine)).query
    badge_query = urlsplit(badge_image_url(badge_cert) or "").query

    for foreign in (
        f"/files/evidence/{theirs.id}?{my_query}",  # my signature on their evidence
        f"/files/badge/{badge_cert.id}?{my_query}",  # an evidence signature on a badge
        f"/files/evidence/{badge_cert.id}?{badge_query}",  # a badge signature on evidence
        f"/files/evidence/999999?{my_query}",  # no such evidence: the same answer
        f"/files/evidence/99999999999999999999?{my_query}",
    ):
        assert_refused(await http.get(foreign), 403)


async def test_a_replaced_badge_invalidates_old_urls(http: httpx.AsyncClient, world: World) -> None:
    cert = await world.external()
    cert = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png(seed=1)), blobs=blob_store(), filename="a.png"
    )
    old_url = badge_image_url(cert)
    cert = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png(seed=2)), blobs=blob_store(), filename="b.png"
    )

    assert_refused(await http.get(old_url or ""), 403)
    fresh = await http.get(badge_image_url(cert) or "")
    assert fresh.content == png(seed=2)


async def test_missing_bytes_are_404(http: httpx.AsyncClient, world: World) -> None:
    evidence = await evidence_of(world, pdf())
    blob_path(evidence.sha256).unlink()
    assert_refused(await http.get(evidence_download_url(evidence)), 404)


async def test_unknown_kinds_are_404(http: httpx.AsyncClient, world: World) -> None:
    evidence = await evidence_of(world, pdf())
    query = urlsplit(evidence_download_url(evidence)).query
    assert_refused(await http.get(f"/files/blob/{evidence.id}?{query}"), 404)


async def test_head_answers_without_a_body(http: httpx.AsyncClient, world: World) -> None:
    evidence = await evidence_of(world, pdf())
    response = await http.head(evidence_download_url(evidence))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(pdf()))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_downloads_are_read_only(http: httpx.AsyncClient, world: World, method: str) -> None:
    evidence = await evidence_of(world, pdf())
    response = await http.request(method, evidence_download_url(evidence))
    assert response.status_code == 405
    assert await Evidence.filter(id=evidence.id).exists()
    assert await Certification.exists()
