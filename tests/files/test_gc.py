"""The sweeper: unreferenced blobs and abandoned temporary files go, after a grace period."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gql.domain.badges import upload_certification_badge
from gql.domain.evidence import submit_evidence
from gql.files import Purpose
from tests.conftest import stored_files

from .conftest import World, blob_path, blob_store, collect_garbage, receive_upload, tmp_dir
from .samples import BytesStream, pdf, png

HOUR = 3600


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def orphan(content: bytes) -> Path:
    """A blob no row refers to, as a crash between blob and row leaves it."""
    async with receive_upload(BytesStream(content), Purpose.EVIDENCE, filename="x") as staged:
        stored = await staged.keep()
    return blob_path(stored.sha256)


async def test_only_old_unreferenced_blobs_are_removed(world: World, data_dir: Path) -> None:
    cert = await world.external()
    evidence = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="p.pdf"
    )
    badge_cert = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png()), blobs=blob_store(), filename="b.png"
    )
    old_orphan = await orphan(pdf("lost"))
    young_orphan = await orphan(pdf("in flight"))
    for path in (blob_path(evidence.sha256), blob_path(badge_cert.badge_sha256 or ""), old_orphan):
        age(path, 2 * HOUR)

    report = await collect_garbage(grace_seconds=HOUR)

    assert (report.blobs_removed, report.blobs_kept) == (1, 3)
    assert report.bytes_removed == len(pdf("lost"))
    assert not old_orphan.exists()
    assert young_orphan.exists()  # its row may be about to commit in another process
    assert blob_path(evidence.sha256).read_bytes() == pdf()
    assert blob_path(badge_cert.badge_sha256 or "").read_bytes() == png()


async def test_a_replaced_badge_image_is_collected(world: World) -> None:
    cert = await world.external()
    first = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png(seed=1)), blobs=blob_store(), filename="old.png"
    )
    old_path = blob_path(first.badge_sha256 or "")
    await upload_certification_badge(
        world.admin, cert.id, BytesStream(png(seed=2)), blobs=blob_store(), filename="new.png"
    )

    report = await collect_garbage(grace_seconds=0)

    assert report.blobs_removed == 1
    assert not old_path.exists()


async def test_stale_temp_files_go_and_fresh_ones_stay(db: None, data_dir: Path) -> None:
    directory = tmp_dir()
    directory.mkdir(parents=True)
    stale, fresh, foreign = (
        directory / "upload-stale.part",
        directory / "upload-fresh.part",
        directory / "notes.txt",
    )
    for path in (stale, fresh, foreign):
        path.write_bytes(b"partial")
    age(stale, 2 * HOUR)
    age(foreign, 2 * HOUR)

    report = await collect_garbage(grace_seconds=HOUR)

    assert report.temp_files_removed == 1
    assert stored_files(data_dir) == ["tmp/notes.txt", "tmp/upload-fresh.part"]


async def test_an_empty_data_dir_is_fine(db: None) -> None:
    report = await collect_garbage()
    assert (report.blobs_removed, report.blobs_kept, report.temp_files_removed) == (0, 0, 0)


async def test_negative_grace_is_refused(db: None) -> None:
    with pytest.raises(ValueError):
        await collect_garbage(grace_seconds=-1)
