"""Badge images, the CSV progress import, and quality.md Security 6, 7 and 10 over HTTP:
types decided by the bytes, names that never become paths, downloads that need a valid
signature, and that starting the app removes no file (no start-up sweep)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gql import UploadInfo, UploadRefusal, clock, hookimpl
from gql.api.ids import encode_id
from gql.app import create_app
from gql.settings import Settings, get_settings
from gql.store.db import migrate_database
from gql.store.models import AuditEvent, Certification, CourseProgress
from tests.conftest import stored_files
from tests.files.samples import HTML, ZIP, jpeg, pdf, png

from .conftest import GraphQLClient, World, make_certification
from .uploads_support import (
    SUBMIT,
    FilePart,
    UploadClient,
    evidence_rows,
    external_certification,
)

BADGE = """
mutation Badge($cert: ID!, $file: Upload!) {
  uploadCertificationBadge(certificationId: $cert, file: $file) {
    certification { id badge { name imageUrl } }
    errors { code message field }
  }
}
"""

IMPORT = """
mutation Import($file: Upload!, $dryRun: Boolean! = false) {
  importCourseProgress(file: $file, dryRun: $dryRun) {
    imported rowErrorCount rowErrors { line message } errors { code message field }
  }
}
"""


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


@pytest.fixture
def uploads(http: httpx.AsyncClient) -> UploadClient:
    return UploadClient(http)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


def assert_refused_without_bytes(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# -- badges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [(png(4, 4), "badge.png", "image/png"), (jpeg(), "badge.jpg", "image/jpeg")],
)
async def test_an_admin_uploads_a_badge_served_inline_and_cacheable(
    uploads: UploadClient,
    http: httpx.AsyncClient,
    world: World,
    content: bytes,
    filename: str,
    content_type: str,
) -> None:
    cert = encode_id("Certification", await make_certification("Cloud", world.course_ids[:1]))
    data = await uploads.data(
        BADGE,
        {"cert": cert},
        {"variables.file": FilePart(content, filename, content_type)},
        token=world.admin.token,
    )
    payload = data["uploadCertificationBadge"]
    assert payload["errors"] == []
    badge = payload["certification"]["badge"]
    assert badge["name"] == "Cloud"  # a badge image without a name takes the certification's
    assert badge["imageUrl"].startswith("http://certgraph.test/files/badge/")

    image = await http.get(badge["imageUrl"])
    assert image.status_code == 200 and image.content == content
    assert image.headers["content-type"] == content_type
    assert image.headers["cache-control"].startswith("public, max-age=")
    assert "attachment" not in image.headers.get("content-disposition", "")

    # learners see it too, through the catalog
    seen = await GraphQLClient(http).data(
        "query C($id: ID!) { certification(id: $id) { badge { imageUrl } } }",
        {"id": cert},
        token=world.learner.token,
    )
    assert (await http.get(seen["certification"]["badge"]["imageUrl"])).content == content


async def test_badges_are_png_or_jpeg_only(
    uploads: UploadClient, world: World, data_dir: Path
) -> None:
    cert = encode_id("Certification", await make_certification("Cloud", [], publish=False))
    data = await uploads.data(
        BADGE, {"cert": cert}, {"variables.file": FilePart(pdf())}, token=world.admin.token
    )
    payload = data["uploadCertificationBadge"]
    assert payload["certification"] is None
    assert [e["code"] for e in payload["errors"]] == ["UNSUPPORTED_FILE_TYPE"]
    assert payload["errors"][0]["field"] == ["file"]
    assert (await Certification.get()).badge_sha256 is None
    assert stored_files(data_dir) == []


@pytest.mark.parametrize("role", ["learner", "manager"])
async def test_badges_are_for_admins_only(
    uploads: UploadClient, world: World, data_dir: Path, role: str
) -> None:
    cert = encode_id("Certification", await make_certification("Cloud", [], publish=False))
    response = await uploads.post(
        BADGE,
        {"cert": cert},
        {"variables.file": FilePart(png(), "b.png", "image/png")},
        token=getattr(world, role).token,
    )
    result = response.json()
    assert result["data"] == {"uploadCertificationBadge": None}
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Certification.get()).badge_sha256 is None
    assert stored_files(data_dir) == []
    assert await AuditEvent.filter(action="denied:uploadCertificationBadge").count() == 1


# -- CSV progress import --------------------------------------------------------------------


def csv_file(*rows: str) -> FilePart:
    lines = ["learner_email,course_id,percent,completed_at", *rows]
    return FilePart(("\n".join(lines) + "\n").encode(), "progress.csv", "text/csv")


async def run_import(
    uploads: UploadClient, token: str, file: FilePart, dry_run: bool = False
) -> dict[str, Any]:
    data = await uploads.data(IMPORT, {"dryRun": dry_run}, {"variables.file": file}, token=token)
    payload: dict[str, Any] = data["importCourseProgress"]
    return payload


async def test_an_admin_imports_progress_all_rows(
    uploads: UploadClient, graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Cloud", world.course_ids[:2])
    await graphql_client.data(
        "mutation S($id: ID!) { startCertification(certificationId: $id) { errors { code } } }",
        {"id": encode_id("Certification", cert)},
        token=world.learner.token,
    )
    payload = await run_import(
        uploads,
        world.admin.token,
        csv_file(
            f"lea.learner@example.com,{world.course_gid(0)},40,",
            f"LEA.LEARNER@example.com,{world.course_gid(0)},,2025-11-03T14:00:00Z",
            f"lea.learner@example.com,{world.course_ids[1]},100,",
            f"otto.other@example.com,{world.course_gid(2)},10,",
        ),
    )
    assert payload == {"imported": 4, "rowErrorCount": 0, "rowErrors": [], "errors": []}
    assert await CourseProgress.all().count() == 3

    mine = await graphql_client.data(
        "{ viewer { certifications { edges { node { status completedAt } } } } }",
        token=world.learner.token,
    )
    enrollment = mine["viewer"]["certifications"]["edges"][0]["node"]
    assert enrollment["status"] == "COMPLETED"  # both courses done: awarded by the import


async def test_one_bad_row_and_nothing_is_imported(uploads: UploadClient, world: World) -> None:
    payload = await run_import(
        uploads,
        world.admin.token,
        csv_file(
            f"lea.learner@example.com,{world.course_gid(0)},40,",
            f"nobody@example.com,{world.course_gid(0)},40,",
            "",
            f"lea.learner@example.com,{world.course_gid(1)},140,",
        ),
    )
    assert payload["imported"] == 0 and payload["errors"] == []
    assert [error["line"] for error in payload["rowErrors"]] == [3, 5]
    assert "nobody@example.com" in payload["rowErrors"][0]["message"]
    assert "percent" in payload["rowErrors"][1]["message"]
    assert payload["rowErrorCount"] == 2
    assert await CourseProgress.all().count() == 0


async def test_a_dry_run_validates_and_writes_nothing(uploads: UploadClient, world: World) -> None:
    payload = await run_import(
        uploads,
        world.admin.token,
        csv_file(f"lea.learner@example.com,{world.course_gid(0)},40,"),
        dry_run=True,
    )
    assert payload == {"imported": 1, "rowErrorCount": 0, "rowErrors": [], "errors": []}
    assert await CourseProgress.all().count() == 0
    assert await AuditEvent.filter(action="importCourseProgress").count() == 0


async def test_imports_are_for_admins_and_csv_only(
    uploads: UploadClient, world: World, data_dir: Path
) -> None:
    forbidden = await uploads.post(
        IMPORT,
        {},
        {"variables.file": csv_file(f"lea.learner@example.com,{world.course_gid(0)},40,")},
        token=world.manager.token,
    )
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    not_csv = await run_import(uploads, world.admin.token, FilePart(png(), "p.csv", None))
    assert [e["code"] for e in not_csv["errors"]] == ["UNSUPPORTED_FILE_TYPE"]
    assert await CourseProgress.all().count() == 0
    assert stored_files(data_dir) == []


# -- Security 6: the type is decided by the bytes -------------------------------------------


@pytest.mark.parametrize(
    ("file", "detail"),
    [
        (FilePart(HTML, "report.pdf", "application/pdf"), "unrecognised"),
        (FilePart(png(), "scan.png", "application/pdf"), "sent as application/pdf"),
        (FilePart(png(), "scan.pdf", None), "the name says PDF"),
        # issue 11: PDF bytes named as HTML were stored and served as certificate.html
        (FilePart(pdf(), "certificate.html", None), "the name says text/html"),
        (FilePart(pdf(), "certificate.html", "application/pdf"), "the name says text/html"),
        (FilePart(ZIP, "proof.zip", "application/zip"), "application/zip"),
    ],
)
async def test_a_type_mismatch_is_refused_and_leaves_nothing(
    uploads: UploadClient, world: World, data_dir: Path, file: FilePart, detail: str
) -> None:
    cert = await external_certification()
    data = await uploads.data(
        SUBMIT, {"cert": cert}, {"variables.file": file}, token=world.learner.token
    )
    payload = data["submitEvidence"]
    assert payload["evidence"] is None
    assert [e["code"] for e in payload["errors"]] == ["UNSUPPORTED_FILE_TYPE"]
    assert detail in payload["errors"][0]["message"]
    assert await evidence_rows() == 0
    assert stored_files(data_dir) == []


class RefuseEicar:
    """A stand-in virus scanner: refuses files whose bytes contain a marker."""

    @hookimpl
    def certgraph_check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        if b"EICAR" in Path(upload.path).read_bytes():
            return UploadRefusal(f"{upload.filename}: infected (test signature)")
        return None


async def test_a_plugin_refusal_is_upload_refused_and_leaves_nothing(
    uploads: UploadClient, world: World, data_dir: Path, plugin_host: Any
) -> None:
    plugin_host.register(RefuseEicar(), "test-scanner")
    cert = await external_certification()
    data = await uploads.data(
        SUBMIT,
        {"cert": cert},
        {"variables.file": FilePart(pdf("EICAR"), "scan.pdf")},
        token=world.learner.token,
    )
    assert data["submitEvidence"] == {
        "evidence": None,
        "errors": [
            {
                "code": "UPLOAD_REFUSED",
                "message": "scan.pdf: infected (test signature)",
                "field": ["file"],
            }
        ],
    }
    assert await evidence_rows() == 0 and stored_files(data_dir) == []


# -- Security 7: names are metadata ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd.pdf"),
        ("/etc/x", "x.pdf"),
        ("a.pdf\x00.exe", "a.pdf_.exe.pdf"),
        ("..\\x.pdf", "x.pdf"),
        ("....", "evidence.pdf"),
    ],
)
async def test_file_names_never_become_paths(
    uploads: UploadClient,
    http: httpx.AsyncClient,
    world: World,
    data_dir: Path,
    sent: str,
    kept: str,
) -> None:
    cert = await external_certification()
    content = pdf(f"named {sent!r}")
    data = await uploads.data(
        SUBMIT,
        {"cert": cert},
        {"variables.file": FilePart(content, sent, None)},
        token=world.learner.token,
    )
    evidence = data["submitEvidence"]["evidence"]
    digest = hashlib.sha256(content).hexdigest()
    assert evidence["filename"] == kept
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]
    assert not (data_dir.parent / "etc").exists()
    download = await http.get(evidence["downloadUrl"])
    assert download.content == content
    assert kept in download.headers["content-disposition"]


# -- Security 10: signed downloads ----------------------------------------------------------


async def submitted(uploads: UploadClient, world: World, person_name: str) -> dict[str, Any]:
    cert = await external_certification()
    person = getattr(world, person_name)
    data = await uploads.data(
        SUBMIT,
        {"cert": cert},
        {"variables.file": FilePart(pdf(person_name))},
        token=person.token,
    )
    evidence: dict[str, Any] = data["submitEvidence"]["evidence"]
    return evidence


async def test_an_altered_download_url_gets_403_and_no_bytes(
    uploads: UploadClient, http: httpx.AsyncClient, world: World
) -> None:
    mine = await submitted(uploads, world, "learner")
    theirs = await submitted(uploads, world, "other")
    url = mine["downloadUrl"]
    query = parse_qs(urlsplit(url).query)
    signature, expires = query["sig"][0], query["exp"][0]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    other_id = urlsplit(theirs["downloadUrl"]).path.rsplit("/", 1)[1]

    assert (await http.get(url)).status_code == 200
    for tampered in (
        with_query(url, sig=flipped),
        with_query(url, exp=str(int(expires) + 3600)),
        with_query(url, sig=""),
        urlsplit(url).path,
        # my signature on the other learner's evidence
        f"/files/evidence/{other_id}?{urlsplit(url).query}",
        # an evidence signature used for a badge
        url.replace("/files/evidence/", "/files/badge/"),
    ):
        assert_refused_without_bytes(await http.get(tampered))


async def test_an_expired_download_url_gets_403(
    uploads: UploadClient, http: httpx.AsyncClient, world: World, frozen_now: datetime
) -> None:
    url = (await submitted(uploads, world, "learner"))["downloadUrl"]
    ttl = get_settings().evidence_url_ttl_seconds
    clock.freeze(frozen_now + timedelta(seconds=ttl - 1))
    assert (await http.get(url)).status_code == 200
    clock.freeze(frozen_now + timedelta(seconds=ttl))
    assert_refused_without_bytes(await http.get(url))


async def test_a_replaced_badge_invalidates_the_old_url(
    uploads: UploadClient, http: httpx.AsyncClient, world: World
) -> None:
    cert = encode_id("Certification", await make_certification("Cloud", [], publish=False))

    async def upload(content: bytes) -> str:
        data = await uploads.data(
            BADGE,
            {"cert": cert},
            {"variables.file": FilePart(content, "b.png", "image/png")},
            token=world.admin.token,
        )
        url: str = data["uploadCertificationBadge"]["certification"]["badge"]["imageUrl"]
        return url

    old = await upload(png(seed=1))
    new = await upload(png(seed=2))
    assert_refused_without_bytes(await http.get(old))
    assert (await http.get(new)).content == png(seed=2)


# -- no start-up sweep: `certgraph gc` runs from cron ----------------------------------------


async def test_starting_the_app_removes_no_file(tmp_path: Path, data_dir: Path) -> None:
    """Orphans and abandoned uploads are `certgraph gc`'s (tests/files/test_gc.py), not the
    lifespan's: a start-up walk of the whole blob tree would slow every start."""
    url = f"sqlite://{tmp_path / 'start.sqlite3'}"
    await migrate_database(url)
    orphan = png(seed=9)
    digest = hashlib.sha256(orphan).hexdigest()
    blob = data_dir / "blobs" / digest[:2] / digest
    blob.parent.mkdir(parents=True)
    blob.write_bytes(orphan)
    (data_dir / "tmp").mkdir()
    (data_dir / "tmp" / "upload-abandoned.part").write_bytes(b"half an upload")
    two_hours_ago = time.time() - 7200
    for path in (blob, data_dir / "tmp" / "upload-abandoned.part"):
        os.utime(path, (two_hours_ago, two_hours_ago))

    app = create_app(Settings(database_url=url, data_dir=data_dir))
    async with app.router.lifespan_context(app):
        pass

    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}", "tmp/upload-abandoned.part"]
