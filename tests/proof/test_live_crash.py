"""Crash and restart: kill -9 of the whole server in the middle of a stream of writes loses
nothing that was acknowledged, and leaves stored files consistent (`certgraph check`); a
crash between a blob and its row leaves only an orphan, which `certgraph gc` removes."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.files.samples import pdf
from tests.proof.live import (
    CREATE_COURSE,
    Client,
    Deployment,
    Person,
    create_certification,
    create_person,
    db_pk,
    record_figures,
)

SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) {
    evidence { id sha256 } errors { code message }
  }
}
"""
WRITERS = 4
RUN_BEFORE_KILL_SECONDS = 1.5


@dataclass
class Acknowledged:
    """The client's log: what the server said it committed, and what was still in flight."""

    courses: dict[int, str] = field(default_factory=dict)  # pk -> name
    evidence: dict[int, str] = field(default_factory=dict)  # pk -> sha256
    sent: int = 0
    failed_in_flight: int = 0


async def course_writer(admin: Client, writer: int, log: Acknowledged) -> None:
    for n in range(100_000):
        name = f"crash-{writer}-{n}"
        log.sent += 1
        try:
            response = await admin.post(CREATE_COURSE, {"name": name})
        except httpx.TransportError:
            log.failed_in_flight += 1
            return
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), response.text
        result = body["data"]["createCourse"]
        assert result["errors"] == [], result
        log.courses[db_pk(result["course"]["id"])] = name


async def evidence_writer(
    client: Client, learner: Person, certifications: list[str], log: Acknowledged
) -> None:
    for n, cert in enumerate(certifications):
        log.sent += 1
        content = pdf(f"acknowledged {learner.id} {n}")
        try:
            response = await client.upload(
                SUBMIT,
                {"cert": cert},
                {"file": (f"proof-{n}.pdf", content, "application/pdf")},
                token=learner.token,
            )
        except httpx.TransportError:
            log.failed_in_flight += 1
            return
        assert response.status_code == 200, response.text
        result = response.json()["data"]["submitEvidence"]
        assert result["errors"] == [], result
        log.evidence[db_pk(result["evidence"]["id"])] = result["evidence"]["sha256"]


def check_output(deployment: Deployment) -> tuple[int, str]:
    completed = deployment.cli("check", check=False)
    return completed.returncode, completed.stdout + completed.stderr


async def test_kill_9_mid_workload_loses_no_acknowledged_write(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(workers=2).start()
    log = Acknowledged()
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as http:
        admin = Client(http, admin_token)
        learners = [await create_person(admin, f"Crash Learner {i}") for i in range(2)]
        certifications = [
            await create_certification(admin, f"External {i}", [], kind="EXTERNAL")
            for i in range(30)
        ]
        writers = [asyncio.create_task(course_writer(admin, w, log)) for w in range(WRITERS)] + [
            asyncio.create_task(evidence_writer(admin, learner, certifications, log))
            for learner in learners
        ]
        await asyncio.sleep(RUN_BEFORE_KILL_SECONDS)
        assert all(not w.done() for w in writers[:WRITERS]), "writers stopped before the kill"
        server.kill()
        await asyncio.wait_for(asyncio.gather(*writers), timeout=60)

    assert log.courses and log.evidence, (len(log.courses), len(log.evidence))
    # Nothing acknowledged is missing, before the restart (the database as the crash left it)
    # and after it.
    await assert_acknowledged_present(deployment, log)
    code, output = check_output(deployment)
    assert code == 0, output
    assert " 0 missing, 0 corrupt" in output, output

    restarted = await deployment.server(workers=2).start()
    await assert_acknowledged_present(deployment, log)
    async with httpx.AsyncClient(base_url=restarted.url, timeout=60.0) as http:
        admin = Client(http, admin_token)
        courses = await admin.data("{ courses(first: 1) { totalCount } }")
        assert courses["courses"]["totalCount"] >= len(log.courses)
        after = await admin.data(CREATE_COURSE, {"name": "after the restart"})
        assert after["createCourse"]["errors"] == []
    restarted.stop()
    code, output = check_output(deployment)
    assert code == 0, output
    record_figures(
        "kill -9 mid-workload (2 workers)",
        writes_sent=log.sent,
        acknowledged=len(log.courses) + len(log.evidence),
        acknowledged_uploads=len(log.evidence),
        in_flight_at_kill=log.failed_in_flight,
        acknowledged_lost=0,
    )


async def assert_acknowledged_present(deployment: Deployment, log: Acknowledged) -> None:
    database = deployment.database
    stored_courses = dict(await database.rows("SELECT id, name FROM course"))
    lost = {pk: name for pk, name in log.courses.items() if stored_courses.get(pk) != name}
    assert lost == {}
    stored_evidence = dict(await database.rows("SELECT id, sha256 FROM evidence"))
    lost_files = {pk: sha for pk, sha in log.evidence.items() if stored_evidence.get(pk) != sha}
    assert lost_files == {}
    for sha in log.evidence.values():
        assert (deployment.data_dir / "blobs" / sha[:2] / sha).is_file()


def blobs(deployment: Deployment) -> list[str]:
    root = deployment.data_dir / "blobs"
    if not root.exists():
        return []
    return sorted(name for _, _, names in os.walk(root) for name in names)


async def test_a_crash_between_blob_and_row_leaves_only_an_orphan_gc_removes(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    marker = "CRASH-BETWEEN-BLOB-AND-ROW"
    server = await deployment.server(CERTGRAPH_PROOF_CRASH_AFTER_BLOB=marker).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Unlucky Learner")
        cert = await create_certification(admin, "External", [], kind="EXTERNAL")
        crashed: Any = None
        try:
            crashed = await admin.upload(
                SUBMIT,
                {"cert": cert},
                {"file": (f"{marker}.pdf", pdf("lost in the crash"), "application/pdf")},
                token=learner.token,
            )
        except httpx.TransportError as exc:
            crashed = exc
    assert isinstance(crashed, httpx.TransportError), crashed
    assert server.process is not None and server.process.wait(timeout=30) == -9

    # The blob is in place, no row points at it: an orphan, not damage.
    assert await deployment.database.value("SELECT count(*) FROM evidence") == 0
    orphaned = blobs(deployment)
    assert len(orphaned) == 1
    code, output = check_output(deployment)
    assert code == 0, output
    assert f"orphan: {orphaned[0]}" in output
    assert re.search(r"0 missing, 0 corrupt, 1 orphan", output), output

    # A restart keeps it (nothing sweeps at start-up) ...
    restarted = await deployment.server().start()
    assert blobs(deployment) == orphaned
    async with httpx.AsyncClient(base_url=restarted.url, timeout=60.0) as http:
        client = Client(http, admin_token)
        kept = await client.upload(
            SUBMIT,
            {"cert": cert},
            {"file": ("proof.pdf", pdf("kept"), "application/pdf")},
            token=learner.token,
        )
        assert kept.json()["data"]["submitEvidence"]["errors"] == [], kept.text
    restarted.stop()

    # ... and `certgraph gc` removes it; the file a row points to stays.
    gc = deployment.cli("gc", "--grace-seconds", "0")
    assert "removed 1 unreferenced file(s)" in gc.stdout, gc.stdout
    code, output = check_output(deployment)
    assert code == 0, output
    assert "1 file reference(s), 1 file(s) verified: 0 missing, 0 corrupt, 0 orphan(s)" in output
    assert orphaned[0] not in blobs(deployment) and len(blobs(deployment)) == 1
    record_figures("crash between blob and row", orphans_after_crash=1, orphans_after_gc=0)


async def test_check_fails_when_a_stored_file_is_gone(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Learner")
        cert = await create_certification(admin, "External", [], kind="EXTERNAL")
        response = await admin.upload(
            SUBMIT,
            {"cert": cert},
            {"file": ("proof.pdf", pdf("soon gone"), "application/pdf")},
            token=learner.token,
        )
        sha = response.json()["data"]["submitEvidence"]["evidence"]["sha256"]
    server.stop()
    (deployment.data_dir / "blobs" / sha[:2] / sha).unlink()
    code, output = check_output(deployment)
    assert code == 1, output
    assert f"missing: Evidence 1 -> {sha}" in output
