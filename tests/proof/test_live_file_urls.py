"""File URLs against real servers (issue 17): absolute on the request's origin, with the scheme
uvicorn takes from X-Forwarded-Proto only for CERTGRAPH_TRUSTED_PROXIES and never a forwarded
host; on CERTGRAPH_PUBLIC_URL when set; expiring at expiresAt; previews with their headers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.files.samples import pdf, png
from tests.proof.live import (
    DATABASE_INDEPENDENT,
    Client,
    Deployment,
    Server,
    create_certification,
    create_person,
)

# Database-independent (live.py): URLs are built from the request, the settings and a signature;
# files are served from the data directory.
pytestmark = DATABASE_INDEPENDENT

SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) { evidence { id } errors { code message } }
}
"""
URLS = """
query($id: ID!) { node(id: $id) { ... on Evidence {
  downloadUrl download { url expiresAt } preview { url expiresAt }
} } }
"""
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
PDF_CSP = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'"
IMAGE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


async def submit(client: Client, cert: str, filename: str, content: bytes, kind: str) -> str:
    response = await client.upload(SUBMIT, {"cert": cert}, {"file": (filename, content, kind)})
    assert response.status_code == 200, response.text
    result = response.json()["data"]["submitEvidence"]
    assert result["errors"] == [], result
    evidence_id: str = result["evidence"]["id"]
    return evidence_id


async def urls_of(
    http: httpx.AsyncClient, token: str, evidence_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": URLS, "variables": {"id": evidence_id}},
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    node: dict[str, Any] = response.json()["data"]["node"]
    return node


def on(server: Server, url: str, **changes: str | None) -> str:
    """`url`'s path and query on `server` (whatever origin the URL names), query changed."""
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"{server.url}{parts.path}?{urlencode(query)}"


def expiry_of(url: str) -> datetime:
    return datetime.fromtimestamp(int(parse_qs(urlsplit(url).query)["exp"][0]), UTC)


async def test_urls_name_the_origin_the_server_was_reached_on(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    plain = await deployment.server().start()
    behind_proxy = await deployment.server(CERTGRAPH_TRUSTED_PROXIES="127.0.0.1").start()
    async with httpx.AsyncClient(base_url=plain.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Lea Learner")
        cert = await create_certification(admin, "Cloud", [], kind="EXTERNAL")
        scan = await submit(Client(http, learner.token), cert, "scan.pdf", pdf(), "application/pdf")

        # Not a trusted proxy: X-Forwarded-* change nothing.
        urls = await urls_of(http, learner.token, scan, FORWARDED)
        for url in (urls["downloadUrl"], urls["download"]["url"], urls["preview"]["url"]):
            assert url.startswith(f"{plain.url}/files/evidence/"), url
        fetched = await http.get(urls["download"]["url"])  # absolute: used as it is
        assert fetched.status_code == 200 and fetched.content == pdf()

    async with httpx.AsyncClient(base_url=behind_proxy.url, timeout=30.0) as http:
        # A trusted proxy's X-Forwarded-Proto is the scheme (as uvicorn applies it); the
        # host stays the Host header's, never X-Forwarded-Host.
        urls = await urls_of(http, learner.token, scan, FORWARDED)
        origin = behind_proxy.url.replace("http://", "https://")
        assert urls["download"]["url"].startswith(f"{origin}/files/evidence/")
        assert urls["preview"]["url"].startswith(f"{origin}/files/evidence/")
        direct = await urls_of(http, learner.token, scan)
        assert direct["download"]["url"].startswith(f"{behind_proxy.url}/files/evidence/")
        assert (await http.get(on(behind_proxy, urls["download"]["url"]))).status_code == 200
    assert plain.running and behind_proxy.running


async def test_public_url_expiry_and_previews_over_http(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_PUBLIC_URL="https://certs.example.com/",
        CERTGRAPH_EVIDENCE_URL_TTL_SECONDS="5",
    ).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Lea Learner")
        client = Client(http, learner.token)
        pdf_cert = await create_certification(admin, "Cloud", [], kind="EXTERNAL")
        png_cert = await create_certification(admin, "Security", [], kind="EXTERNAL")
        scan = await submit(client, pdf_cert, "scan.pdf", pdf("shown"), "application/pdf")
        photo = await submit(client, png_cert, "photo.png", png(), "image/png")

        shown = {}
        for evidence_id, content, content_type, name, csp in (
            (scan, pdf("shown"), "application/pdf", "scan.pdf", PDF_CSP),
            (photo, png(), "image/png", "photo.png", IMAGE_CSP),
        ):
            urls = await urls_of(http, learner.token, evidence_id, FORWARDED)
            for signed in (urls["download"], urls["preview"]):
                assert signed["url"].startswith("https://certs.example.com/files/evidence/")
                assert datetime.fromisoformat(signed["expiresAt"]) == expiry_of(signed["url"])
            preview = urls["preview"]["url"]
            response = await http.get(on(server, preview))
            assert response.status_code == 200 and response.content == content
            expected = {
                "content-type": content_type,
                "content-disposition": f'inline; filename="{name}"',
                "content-security-policy": csp,
                "x-content-type-options": "nosniff",
                "cross-origin-resource-policy": "cross-origin",
                "cache-control": "no-store",
            }
            assert {key: response.headers.get(key) for key in expected} == expected
            assert "set-cookie" not in response.headers

            # The disposition is signed: neither variant's signature opens the other.
            download = urls["download"]["url"]
            for crafted in (
                on(server, download, disposition="inline"),
                on(server, preview, disposition=None),
            ):
                refused = await http.get(crafted)
                assert refused.status_code == 403
                assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            shown[evidence_id] = urls

        # Once expiresAt has passed, every URL handed out is refused.
        latest = max(
            datetime.fromisoformat(urls[key]["expiresAt"])
            for urls in shown.values()
            for key in ("download", "preview")
        )
        await asyncio.sleep(max(0.0, (latest - datetime.now(UTC)).total_seconds()) + 0.2)
        for urls in shown.values():
            for key in ("download", "preview"):
                expired = await http.get(on(server, urls[key]["url"]))
                assert expired.status_code == 403, key
                assert expired.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert server.running
