"""No secret in the logs, in process: every logger captured at DEBUG (caplog) while tokens
are issued, used and refused and files are uploaded, refused and downloaded."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.store.models import CertificationKind
from tests.api.conftest import (
    GraphQLClient,
    World,
    app,
    graphql_client,
    http,
    make_certification,
    settings,
    world,
)
from tests.files.samples import HTML, pdf

__all__ = [
    "app",
    "graphql_client",
    "http",
    "settings",
    "world",
]  # fixtures, imported for this module

SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) {
    evidence { id downloadUrl } errors { code message }
  }
}
"""


async def upload(
    http: httpx.AsyncClient, token: str, cert: str, name: str, content: bytes
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": SUBMIT, "variables": {"cert": cert, "file": None}}),
            "map": json.dumps({"0": ["variables.file"]}),
        },
        files={"0": (name, content, "application/pdf")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["data"]["submitEvidence"]
    return result


async def test_no_token_or_file_content_is_logged_at_debug(
    graphql_client: GraphQLClient,
    http: httpx.AsyncClient,
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = f"IN-PROCESS-MARKER-{uuid.uuid4().hex}"
    wrong = f"cg_never-issued-{uuid.uuid4().hex}"
    cert_pk = await make_certification(
        "External", [], kind=CertificationKind.EXTERNAL, issuer="Board"
    )
    cert = encode_id("Certification", cert_pk)
    issued = await graphql_client.data(
        "mutation($id: ID!) { createApiToken(userId: $id) { token } }",
        {"id": world.learner.id},
        token=world.admin.token,
    )
    new_token = issued["createApiToken"]["token"]
    await graphql_client.data("{ viewer { id } }", token=new_token)
    assert (await graphql_client.post("{ viewer { id } }", token=wrong)).status_code == 401

    refused = await upload(http, world.learner.token, cert, "proof.pdf", HTML + marker.encode())
    assert refused["errors"][0]["code"] == "UNSUPPORTED_FILE_TYPE"
    kept = await upload(http, world.learner.token, cert, "proof.pdf", pdf(marker))
    assert kept["errors"] == []
    download = await http.get(kept["evidence"]["downloadUrl"])
    assert marker.encode() in download.content

    text = caplog.text
    assert "INSERT INTO" in text  # Tortoise's SQL with parameters was captured
    for secret in (world.admin.token, world.learner.token, new_token, wrong, marker):
        assert secret not in text
        assert all(secret not in repr(record.args) for record in caplog.records)
