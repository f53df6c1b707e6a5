"""Persisted queries on a real server (issue 18): the example SPA's own codegen.ts writes the
manifest, `certgraph persisted-queries check` accepts it, a server with
CERTGRAPH_PERSISTED_QUERIES_ONLY runs the SPA's documents by hash and refuses an ad-hoc one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proof.live import DATABASE_INDEPENDENT, Deployment

# Database-independent (live.py): documents are looked up by hash in a manifest file before
# execution; what they then read is the API suite's subject on both databases.
pytestmark = DATABASE_INDEPENDENT

SPA = Path(__file__).resolve().parents[2] / "examples" / "spa"
CODEGEN = SPA / "node_modules" / ".bin" / "graphql-codegen"
PERSISTED_CODES = {
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_REGISTERED",
    "PERSISTED_QUERY_HASH_MISMATCH",
}


def spa_manifest(directory: Path) -> Path:
    """The SPA's codegen.ts with its output sent to `directory` (the SPA's src/gql untouched)."""
    config = directory / "codegen.ts"
    config.write_text(
        f'import spa from "{SPA / "codegen.ts"}";\n'
        "const [target] = Object.keys(spa.generates);\n"
        f'const out = "{directory}/out/";\n'
        "export default { ...spa, generates: { [out]: spa.generates[target] } };\n"
    )
    subprocess.run(
        [str(CODEGEN), "--config", str(config)],
        cwd=SPA,
        check=True,
        capture_output=True,
        timeout=240,
    )
    return directory / "out" / "persisted-documents.json"


def by_hash(key: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": key}}}


@pytest.mark.skipif(not CODEGEN.exists(), reason="examples/spa has no node_modules (npm ci)")
async def test_the_spas_documents_run_and_nothing_else_does(
    deployment: Deployment, tmp_path: Path
) -> None:
    manifest = spa_manifest(tmp_path)
    documents: dict[str, str] = json.loads(manifest.read_text())
    assert any(text.startswith("query Viewer") for text in documents.values())
    checked = deployment.cli("persisted-queries", "check", str(manifest))
    assert f"{len(documents)} document(s), every one accepted" in checked.stdout

    token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_PERSISTED_QUERIES_ONLY="true", CERTGRAPH_PERSISTED_QUERIES_FILE=str(manifest)
    ).start()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for key, text in documents.items():
            if not text.startswith("query"):
                continue  # the SPA's mutations would change data; the server's check is the same
            answer = await http.post("/graphql", json=by_hash(key), headers=headers)
            codes = {e["extensions"]["code"] for e in answer.json().get("errors", [])}
            assert not codes & PERSISTED_CODES, (text, answer.text)
            if text.startswith("query Viewer"):
                assert answer.json()["data"]["viewer"]["role"] == "ADMIN"

        for body in ({"query": "{ viewer { id name } }"}, by_hash("0" * 64)):
            refused = await http.post("/graphql", json=body, headers=headers)
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["extensions"]["code"] == (
                "PERSISTED_QUERY_NOT_REGISTERED"
            )


def test_serve_refuses_a_missing_manifest(deployment: Deployment, tmp_path: Path) -> None:
    refused = deployment.cli(
        "serve",
        check=False,
        CERTGRAPH_PERSISTED_QUERIES_ONLY="true",
        CERTGRAPH_PERSISTED_QUERIES_FILE=str(tmp_path / "missing.json"),
    )
    assert refused.returncode == 2
    assert "CERTGRAPH_PERSISTED_QUERIES_FILE: cannot read" in refused.stderr
