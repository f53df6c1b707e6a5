"""GraphiQL from certgraph alone (issue 13): the vendored assets are strawberry's pinned files
with their licences, the page names only its own server, and production's GET /graphql gets a
JSON hint. The browser run is tests/proof/test_live_graphiql.py."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from hatchling.builders.wheel import WheelBuilder

from gql.api.graphiql import ASSETS, GRAPHIQL_HTML, STATIC_DIR
from gql.app import create_app
from gql.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://certgraph.test"


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def debug_http(db: None) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(Settings(debug=True)):
        yield client


@pytest.fixture
async def production_http(db: None) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(Settings(debug=False)):
        yield client


def page_urls(html: str) -> list[str]:
    """The URLs the page loads; `data:,` is its empty icon (no /favicon.ico request)."""
    return [url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if url != "data:,"]


def test_each_asset_is_the_file_strawberry_pins_and_has_its_licence_beside_it() -> None:
    assert len(ASSETS) == 7
    for asset in ASSETS.values():
        data = (STATIC_DIR / asset.path).read_bytes()
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert asset.integrity == f"sha384-{digest}", asset.path
        assert (
            (STATIC_DIR / asset.path)
            .parent.joinpath("LICENSE")
            .read_text()
            .startswith("MIT License")
        )
    readme = (STATIC_DIR / "README.md").read_text()
    for folder in {asset.path.split("/")[0] for asset in ASSETS.values()}:
        assert f"`{folder}/`" in readme


def test_the_page_names_no_other_host() -> None:
    urls = page_urls(GRAPHIQL_HTML)
    assert len(urls) == len(ASSETS)
    assert all(not re.match(r"^[a-z]+:|^//", url) for url in urls), urls
    assert "unpkg" not in GRAPHIQL_HTML and "https://" not in GRAPHIQL_HTML
    for asset in ASSETS.values():
        assert f'integrity="{asset.integrity}"' in GRAPHIQL_HTML


async def test_debug_serves_the_page_and_every_asset_it_names(
    debug_http: httpx.AsyncClient,
) -> None:
    page = await debug_http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    urls = page_urls(page.text)
    assert len(urls) == len(ASSETS)
    for url in urls:
        absolute = urljoin(f"{BASE}/graphql", url)
        assert absolute.startswith(f"{BASE}/graphiql/static/"), absolute
        response = await debug_http.get(absolute)
        assert response.status_code == 200, url
        path = absolute.removeprefix(f"{BASE}/graphiql/static/")
        assert response.content == (STATIC_DIR / path).read_bytes()
        assert response.headers["content-type"].startswith(ASSETS[path].media_type)
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    ["README.md", "react-18.2.0/LICENSE", "../../settings.py", "%2e%2e/%2e%2e/app.py", "x.js", ""],
)
async def test_only_the_listed_assets_are_served(debug_http: httpx.AsyncClient, path: str) -> None:
    response = await debug_http.get(f"/graphiql/static/{path}")
    assert response.status_code == 404


async def test_production_answers_a_browser_get_with_a_json_hint(
    production_http: httpx.AsyncClient,
) -> None:
    response = await production_http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "METHOD_NOT_ALLOWED"}
    assert "POSTed" in error["message"] and "CERTGRAPH_DEBUG=true" in error["message"]
    # No assets in production: nothing there needs them.
    asset = next(iter(ASSETS))
    assert (await production_http.get(f"/graphiql/static/{asset}")).status_code == 404
    # POST is untouched: an anonymous one is still refused for its token.
    assert (
        await production_http.post("/graphql", json={"query": "{ viewer { id } }"})
    ).status_code == 401


def test_the_wheel_ships_the_assets_and_their_licences(tmp_path: Path) -> None:
    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ASSETS.values():
        folder = f"gql/static/graphiql/{asset.path.split('/')[0]}"
        assert f"gql/static/graphiql/{asset.path}" in names
        assert f"{folder}/LICENSE" in names
    assert "gql/static/graphiql/README.md" in names
