"""No secret in the server's logs: API tokens (issued, used, refused) and the contents of
uploaded files never appear in what a server process writes, with every logger of the
process at DEBUG (Tortoise's SQL with its parameters included)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.files.samples import HTML, pdf
from tests.proof.live import (
    CREATE_TOKEN,
    Client,
    Deployment,
    create_certification,
    create_person,
    payload,
    record_figures,
)

SUBMIT = """
mutation($cert: ID!, $file: Upload!, $note: String) {
  submitEvidence(certificationId: $cert, file: $file, note: $note) {
    evidence { id downloadUrl } errors { code message }
  }
}
"""


async def test_tokens_and_file_contents_never_reach_the_logs(deployment: Deployment) -> None:
    marker = f"FILE-CONTENT-MARKER-{uuid.uuid4().hex}"
    wrong_token = f"cg_not-issued-{uuid.uuid4().hex}"
    admin_token = deployment.create_admin()
    server = await deployment.server(workers=2, CERTGRAPH_PROOF_LOG_LEVEL="DEBUG").start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Logged Learner")
        second_token = payload(
            await admin.data(CREATE_TOKEN, {"id": learner.id}), "createApiToken"
        )["token"]
        cert = await create_certification(admin, "External", [], kind="EXTERNAL")
        await admin.data("{ viewer { id } }", token=learner.token)
        await admin.data("{ viewer { id } }", token=second_token)
        refused = await admin.post("{ viewer { id } }", token=wrong_token)
        assert refused.status_code == 401

        # Refused: HTML named .pdf (its bytes carry the marker too).
        bad = await admin.upload(
            SUBMIT,
            {"cert": cert, "note": "wrong type"},
            {"file": ("proof.pdf", HTML + marker.encode(), "application/pdf")},
            token=learner.token,
        )
        assert bad.json()["data"]["submitEvidence"]["errors"][0]["code"] == (
            "UNSUPPORTED_FILE_TYPE"
        )
        good = await admin.upload(
            SUBMIT,
            {"cert": cert, "note": "the real one"},
            {"file": ("proof.pdf", pdf(marker), "application/pdf")},
            token=learner.token,
        )
        evidence = payload(good.json()["data"], "submitEvidence")["evidence"]
        download = await http.get(evidence["downloadUrl"])
        assert download.status_code == 200 and marker.encode() in download.content
        signature = parse_qs(urlsplit(evidence["downloadUrl"]).query)["sig"][0]
    server.stop()

    log = server.log()
    # The log really is at DEBUG, SQL parameters included, and saw this workload.
    assert "tortoise.db_client DEBUG" in log
    assert "INSERT INTO" in log and "evidence" in log
    assert "POST /graphql" in log
    assert "GET /files/evidence/" in log and "sig=[redacted]" in log
    secrets = {
        "the admin's token": admin_token,
        "a learner's token": learner.token,
        "a second token": second_token,
        "a refused token": wrong_token,
        "the uploaded file's content": marker,
        "the download URL's signature": signature,
    }
    leaked = [name for name, secret in secrets.items() if secret in log]
    assert leaked == [], leaked
    record_figures(
        "secrets in DEBUG logs (2 workers)",
        log_lines=len(log.splitlines()),
        secrets_searched=len(secrets),
        found=len(leaked),
    )
