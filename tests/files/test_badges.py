"""Badge images: admins only, PNG or JPEG, stored by digest, audited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gql.domain.badges import upload_certification_badge
from gql.domain.errors import Forbidden, NotFound, UnsupportedFileType
from gql.store.models import AuditEvent, Certification
from tests.conftest import stored_files

from .conftest import World, blob_path, blob_store
from .samples import BytesStream, jpeg, pdf, png


async def test_an_admin_sets_a_badge_image(world: World, data_dir: Path) -> None:
    cert = await world.external(publish=False)  # any state

    updated = await upload_certification_badge(
        world.admin, cert.id, BytesStream(jpeg()), blobs=blob_store(), filename="../badge.jpg"
    )

    digest = hashlib.sha256(jpeg()).hexdigest()
    stored = await Certification.get(id=cert.id)
    assert (stored.badge_sha256, stored.badge_content_type) == (digest, "image/jpeg")
    assert stored.badge_name == cert.name == updated.badge_name  # a badge always has a name
    assert blob_path(digest).read_bytes() == jpeg()
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]
    audit = await AuditEvent.get(action="uploadCertificationBadge")
    assert (audit.actor_id, audit.object_id) == (world.admin.user_id, str(cert.id))
    assert audit.before == {"badgeSha256": None, "badgeName": None}
    assert audit.after is not None and audit.after["badgeSha256"] == digest


@pytest.mark.parametrize("actor_name", ["learner", "manager"])
async def test_only_admins_set_badges(world: World, actor_name: str, data_dir: Path) -> None:
    cert = await world.external()
    with pytest.raises(Forbidden):
        await upload_certification_badge(
            getattr(world, actor_name),
            cert.id,
            BytesStream(png()),
            blobs=blob_store(),
            filename="b.png",
        )
    assert (await Certification.get(id=cert.id)).badge_sha256 is None
    assert await AuditEvent.filter(action="denied:uploadCertificationBadge").count() == 1
    assert stored_files(data_dir) == []


async def test_badges_are_images(world: World, data_dir: Path) -> None:
    cert = await world.external()
    with pytest.raises(UnsupportedFileType):
        await upload_certification_badge(
            world.admin, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="badge.pdf"
        )
    assert (await Certification.get(id=cert.id)).badge_sha256 is None
    assert stored_files(data_dir) == []


async def test_an_unknown_certification_is_refused_before_reading(world: World) -> None:
    stream = BytesStream(png())
    with pytest.raises(NotFound):
        await upload_certification_badge(
            world.admin, 999_999, stream, blobs=blob_store(), filename="b.png"
        )
    assert await stream.read(1) == png()[:1]  # not a byte was consumed
