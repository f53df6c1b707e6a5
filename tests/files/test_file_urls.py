"""File URLs as an SPA on another origin uses them (issue 17): absolute (CERTGRAPH_PUBLIC_URL,
else the request's origin), with their expiry, and an inline variant whose signature covers the
disposition, served with a sandboxing policy; through the whole app in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gql import clock
from gql.api.export_route import EXPORT_PATH
from gql.api.ids import encode_id
from gql.app import create_app
from gql.domain import users
from gql.domain.badges import upload_certification_badge
from gql.domain.errors import ErrorCode, UnsupportedFileType
from gql.domain.evidence import submit_evidence
from gql.settings import Settings, SettingsError, get_settings, load_settings
from gql.signing import INLINE, PREVIEWABLE_TYPES, UrlSigner, expiry_in, previewable
from gql.store.models import Certification, Evidence

from .conftest import World, blob_store
from .samples import BytesStream, jpeg, pdf, png

EVIDENCE_URLS = """
query($id: ID!) { node(id: $id) { ... on Evidence {
  downloadUrl download { url expiresAt } preview { url expiresAt }
} } }
"""
BADGE_URLS = """
query($id: ID!) { certification(id: $id) { badge { imageUrl image { url expiresAt } } } }
"""
EXPORT = "mutation { exportEnrollments { url expiresAt errors { code } } }"
IMAGE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
PDF_CSP = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'"

Api = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api(db: None) -> Api:
    """An app of the test's settings (plus `overrides`), reached as `base_url`."""

    @asynccontextmanager
    async def open_api(
        base_url: str = "http://certgraph.test", **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(data_dir=get_settings().data_dir, **overrides)
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client

    return open_api


async def token_of(world: World, role: str = "learner") -> str:
    actor = getattr(world, role)
    return await users.create_api_token(actor, actor.user_id)


async def query(
    http: httpx.AsyncClient,
    token: str,
    document: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": document, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert "errors" not in result, result["errors"]
    data: dict[str, Any] = result["data"]
    return data


async def evidence_of(world: World, content: bytes, filename: str) -> Evidence:
    cert = await world.external()
    return await submit_evidence(
        world.learner, cert.id, BytesStream(content), blobs=blob_store(), filename=filename
    )


async def badged(world: World) -> Certification:
    cert = await world.external()
    return await upload_certification_badge(
        world.admin, cert.id, BytesStream(png()), blobs=blob_store(), filename="b.png"
    )


async def evidence_urls(
    http: httpx.AsyncClient, token: str, evidence: Evidence, **headers: str
) -> dict[str, Any]:
    variables = {"id": encode_id("Evidence", evidence.id)}
    data = await query(http, token, EVIDENCE_URLS, variables, headers)
    node: dict[str, Any] = data["node"]
    return node


def expiry_of(url: str) -> datetime:
    [expires] = parse_qs(urlsplit(url).query)["exp"]
    return datetime.fromtimestamp(int(expires), UTC)


def local(url: str, **changes: str | None) -> str:
    """`url`'s path and query, with query parameters changed (None removes one), so the
    in-process client sends it to the app whatever its origin."""
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"{parts.path}?{urlencode(query)}"


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert response.headers["cache-control"] == "no-store"


# -- absolute URLs --------------------------------------------------------------------------


async def test_urls_are_absolute_on_the_origin_the_request_was_sent_to(
    api: Api, world: World
) -> None:
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    token = await token_of(world)
    for origin in ("http://certgraph.test", "https://api.example.org:8443", "http://[::1]:8000"):
        async with api(base_url=origin) as http:
            urls = await evidence_urls(http, token, evidence)
        prefix = f"{origin}/files/evidence/{evidence.id}?"
        assert urls["downloadUrl"].startswith(prefix)
        assert urls["download"]["url"].startswith(prefix)
        assert urls["preview"]["url"].startswith(prefix + "disposition=inline&")


async def test_forwarded_headers_are_not_believed_in_the_app(api: Api, world: World) -> None:
    """X-Forwarded-Proto counts only as uvicorn applies it (CERTGRAPH_TRUSTED_PROXIES: the real
    server's proof); X-Forwarded-Host never; a Host that is no plain host is not used."""
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    token = await token_of(world)
    async with api() as http:
        forwarded = await evidence_urls(
            http,
            token,
            evidence,
            **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
        )
        odd_host = await evidence_urls(http, token, evidence, Host="evil.example/x?y=")
    assert forwarded["download"]["url"].startswith("http://certgraph.test/files/evidence/")
    # The address the server was reached on (ASGITransport's: the client's base URL).
    assert odd_host["download"]["url"].startswith("http://certgraph.test/files/evidence/")


async def test_the_public_url_wins_over_the_request(api: Api, world: World) -> None:
    evidence = await evidence_of(world, png(), "scan.png")
    cert = await badged(world)
    token = await token_of(world)
    async with api(public_url="https://certs.example.com/") as http:
        urls = await evidence_urls(http, token, evidence, Host="other.example")
        badge = await query(http, token, BADGE_URLS, {"id": encode_id("Certification", cert.id)})
        for url in (urls["downloadUrl"], urls["download"]["url"], urls["preview"]["url"]):
            assert url.startswith(f"https://certs.example.com/files/evidence/{evidence.id}?")
            assert (await http.get(local(url))).content == png()
        image = badge["certification"]["badge"]
        assert image["imageUrl"] == image["image"]["url"]
        assert image["imageUrl"].startswith(f"https://certs.example.com/files/badge/{cert.id}?")
        assert (await http.get(local(image["imageUrl"]))).content == png()


def test_the_public_url_setting_is_checked() -> None:
    def public_url(value: str) -> str | None:
        return load_settings({"CERTGRAPH_PUBLIC_URL": value}).public_url

    assert public_url("https://certs.example.com/") == "https://certs.example.com"
    assert public_url("http://10.0.0.5:8000/certgraph/") == "http://10.0.0.5:8000/certgraph"
    assert load_settings({}).public_url is None
    for bad in (
        "certs.example.com",
        "ftp://certs.example.com",
        "https://",
        "https://certs.example.com/?a=1",
        "https://certs.example.com/#top",
        "https://user:pw@certs.example.com",
        "https://certs.example.com:99999",
        "https://certs example.com",
        "https://certs.example.com/\n",
    ):
        with pytest.raises(SettingsError, match="CERTGRAPH_PUBLIC_URL"):
            public_url(bad)


# -- expiry -----------------------------------------------------------------------------------


async def test_expires_at_is_the_signature_s_expiry(
    api: Api, world: World, frozen_now: datetime
) -> None:
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    cert = await badged(world)
    token = await token_of(world)
    async with api() as http:
        urls = await evidence_urls(http, token, evidence)
        badge = await query(http, token, BADGE_URLS, {"id": encode_id("Certification", cert.id)})
    in_five_minutes = frozen_now + timedelta(minutes=5)
    for signed in (urls["download"], urls["preview"], badge["certification"]["badge"]["image"]):
        assert datetime.fromisoformat(signed["expiresAt"]) == expiry_of(signed["url"])
    assert expiry_of(urls["download"]["url"]) == in_five_minutes
    assert expiry_of(urls["preview"]["url"]) == in_five_minutes
    assert expiry_of(badge["certification"]["badge"]["image"]["url"]) >= frozen_now + timedelta(
        days=1
    )


async def test_a_certification_without_a_badge_image_has_none(api: Api, world: World) -> None:
    cert = await world.external()
    await Certification.filter(id=cert.id).update(badge_name="Cloud")
    async with api() as http:
        data = await query(
            http, await token_of(world), BADGE_URLS, {"id": encode_id("Certification", cert.id)}
        )
    assert data["certification"]["badge"] == {"imageUrl": None, "image": None}


async def test_expired_urls_are_refused(api: Api, world: World, frozen_now: datetime) -> None:
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    async with api() as http:
        urls = await evidence_urls(http, await token_of(world), evidence)
        download, preview = local(urls["download"]["url"]), local(urls["preview"]["url"])
        clock.advance(timedelta(minutes=4, seconds=59))
        assert (await http.get(download)).status_code == 200
        assert (await http.get(preview)).status_code == 200
        clock.advance(timedelta(seconds=1))  # expiresAt itself
        assert_forbidden(await http.get(download))
        assert_forbidden(await http.get(preview))


# -- the disposition is signed ------------------------------------------------------------------


async def test_the_disposition_cannot_be_switched(api: Api, world: World) -> None:
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    async with api() as http:
        urls = await evidence_urls(http, await token_of(world), evidence)
        download, preview = urls["download"]["url"], urls["preview"]["url"]
        assert (await http.get(local(download))).status_code == 200
        assert (await http.get(local(preview))).status_code == 200
        for crafted in (
            local(download, disposition="inline"),  # the attack: an attachment shown inline
            local(download, disposition="attachment"),
            local(download, disposition="INLINE"),
            local(preview, disposition=None),  # an inline signature as an attachment
            local(preview, disposition="attachment"),
            local(preview, disposition="inline2"),
        ):
            assert_forbidden(await http.get(crafted))


# -- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename", "content_type", "disposition", "csp"),
    [
        (
            pdf("shown"),
            "Zertifikat Müller.pdf",
            "application/pdf",
            "inline; filename*=utf-8''Zertifikat%20M%C3%BCller.pdf",
            PDF_CSP,
        ),
        (png(), "scan.png", "image/png", 'inline; filename="scan.png"', IMAGE_CSP),
        (jpeg(), "photo.jpg", "image/jpeg", 'inline; filename="photo.jpg"', IMAGE_CSP),
    ],
)
async def test_previews_are_inline_sandboxed_and_embeddable(
    api: Api,
    world: World,
    content: bytes,
    filename: str,
    content_type: str,
    disposition: str,
    csp: str,
) -> None:
    evidence = await evidence_of(world, content, filename)
    async with api() as http:
        urls = await evidence_urls(http, await token_of(world), evidence)
        shown = await http.get(local(urls["preview"]["url"]))
        saved = await http.get(local(urls["download"]["url"]))

    assert shown.status_code == 200 and shown.content == content
    expected = {
        "content-type": content_type,
        "content-disposition": disposition,
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "cross-origin-resource-policy": "cross-origin",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }
    assert {name: shown.headers.get(name) for name in expected} == expected
    assert "set-cookie" not in shown.headers
    # The attachment keeps its headers: nothing to embed, the strict sandbox.
    assert saved.content == content
    assert saved.headers["content-disposition"].startswith("attachment; ")
    assert saved.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert saved.headers["x-content-type-options"] == "nosniff"
    assert "cross-origin-resource-policy" not in saved.headers


async def test_badges_may_be_embedded_from_another_origin(api: Api, world: World) -> None:
    cert = await badged(world)
    async with api() as http:
        data = await query(
            http, await token_of(world), BADGE_URLS, {"id": encode_id("Certification", cert.id)}
        )
        image = await http.get(local(data["certification"]["badge"]["image"]["url"]))
    assert image.content == png()
    assert image.headers["cross-origin-resource-policy"] == "cross-origin"
    assert image.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert "content-disposition" not in image.headers


# -- nothing but PDFs and raster images is ever shown ---------------------------------------------


def test_only_pdfs_and_raster_images_are_previewable() -> None:
    shown = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
    assert shown == PREVIEWABLE_TYPES
    for shown_as_code in (
        "image/svg+xml",
        "text/html",
        "application/xhtml+xml",
        "text/xml",
        "text/plain",
        "text/csv",
        "application/octet-stream",
        "IMAGE/PNG",
        "image/png; charset=utf-8",
        "",
    ):
        assert not previewable(shown_as_code)


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "x.html"),
        (b"<html><body>hello</body></html>", "proof.pdf"),
    ],
)
async def test_svg_and_html_uploads_are_refused(
    world: World, content: bytes, filename: str
) -> None:
    with pytest.raises(UnsupportedFileType) as raised:
        await evidence_of(world, content, filename)
    assert raised.value.code == ErrorCode.UNSUPPORTED_FILE_TYPE
    assert await Evidence.all().count() == 0


@pytest.mark.parametrize("stored_type", ["image/svg+xml", "text/html", "text/csv"])
async def test_a_file_of_another_type_gets_no_preview_and_no_inline_answer(
    api: Api, world: World, stored_type: str
) -> None:
    """Intake takes no such type; should a row ever say one (a future type, an edited row),
    the API hands out no preview and the route will not show it even with a valid signature."""
    evidence = await evidence_of(world, pdf(), "proof.pdf")
    await Evidence.filter(id=evidence.id).update(content_type=stored_type)
    signer = UrlSigner.from_settings(get_settings())
    async with api() as http:
        urls = await evidence_urls(http, await token_of(world), evidence)
        assert urls["preview"] is None
        assert (await http.get(local(urls["download"]["url"]))).status_code == 200
        inline = signer.url("evidence", evidence.id, evidence.sha256, expiry_in(60), INLINE)
        refused = await http.get(inline)
    assert refused.status_code == 404
    assert json.loads(refused.content)["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["x-content-type-options"] == "nosniff"


# -- exports ------------------------------------------------------------------------------------


async def test_export_urls_are_absolute_with_their_expiry(
    api: Api, world: World, frozen_now: datetime
) -> None:
    token = await token_of(world, "admin")
    for settings, origin in (
        ({}, "http://certgraph.test"),
        ({"public_url": "https://certs.example.com"}, "https://certs.example.com"),
    ):
        async with api(**settings) as http:
            data = await query(http, token, EXPORT)
            export = data["exportEnrollments"]
            assert export["url"].startswith(f"{origin}{EXPORT_PATH}?")
            assert datetime.fromisoformat(export["expiresAt"]) == expiry_of(export["url"])
            downloaded = await http.get(local(export["url"]))
            assert downloaded.status_code == 200
            assert downloaded.text.startswith("enrollment_id,learner_id,")
