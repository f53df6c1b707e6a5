"""`check_storage`: every stored file a row points to exists with its hash; orphans listed."""

from __future__ import annotations

from pathlib import Path

from gql.domain.badges import upload_certification_badge
from gql.domain.evidence import submit_evidence
from gql.files import Purpose
from gql.files.maintenance import FileReference
from tests.files.conftest import (
    World,
    blob_path,
    blob_store,
    check_storage,
    collect_garbage,
    receive_upload,
    world,
)
from tests.files.samples import BytesStream, pdf, png

__all__ = ["world"]  # a fixture, imported for this module


async def stored_world(world: World) -> tuple[int, str, int, str]:
    cert = await world.external()
    evidence = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="p.pdf"
    )
    badged = await upload_certification_badge(
        world.admin, cert.id, BytesStream(png()), blobs=blob_store(), filename="b.png"
    )
    assert badged.badge_sha256 is not None
    return evidence.id, evidence.sha256, cert.id, badged.badge_sha256


async def test_a_consistent_store_passes(world: World) -> None:
    await stored_world(world)
    report = await check_storage()
    assert report.ok
    assert (report.references, report.files_verified) == (2, 2)
    assert (report.missing, report.corrupt, report.orphans) == ((), (), ())


async def test_an_empty_store_passes(world: World, data_dir: Path) -> None:
    report = await check_storage()
    assert report.ok and report.references == 0 and not data_dir.joinpath("blobs").exists()


async def test_a_blob_left_by_a_crash_is_an_orphan_until_gc(world: World) -> None:
    await stored_world(world)
    # What a crash between blob and row leaves: the bytes in place, no row.
    async with receive_upload(BytesStream(pdf("lost")), Purpose.EVIDENCE, filename="x") as staged:
        lost = await staged.keep()

    report = await check_storage()
    assert report.ok  # waste, not damage
    assert report.orphans == (lost.sha256,)

    gc = await collect_garbage(grace_seconds=0)
    assert gc.blobs_removed == 1
    after = await check_storage()
    assert after.ok and after.orphans == () and after.files_verified == 2


async def test_a_missing_file_fails_the_check(world: World) -> None:
    evidence_id, evidence_sha, _, _ = await stored_world(world)
    blob_path(evidence_sha).unlink()
    report = await check_storage()
    assert not report.ok
    assert report.missing == (FileReference("Evidence", evidence_id, evidence_sha),)
    assert report.files_verified == 1


async def test_a_changed_file_fails_the_check(world: World) -> None:
    _, _, cert_id, badge_sha = await stored_world(world)
    blob_path(badge_sha).write_bytes(png(seed=9))
    report = await check_storage()
    assert not report.ok
    assert report.corrupt == (FileReference("Certification", cert_id, badge_sha),)
    assert report.missing == ()


async def test_two_rows_sharing_one_missing_blob_are_both_listed(world: World) -> None:
    cert = await world.external()
    first = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="a.pdf"
    )
    second = await submit_evidence(
        world.other_learner, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="b.pdf"
    )
    assert first.sha256 == second.sha256
    blob_path(first.sha256).unlink()
    report = await check_storage()
    assert {(r.object_id) for r in report.missing} == {first.id, second.id}
