"""Badge images of certifications (admins): PNG or JPEG, stored like evidence, by digest."""

from __future__ import annotations

from gql.domain.access import Actor, require_admin
from gql.domain.errors import NotFound, t
from gql.domain.unit import unit_of_work
from gql.domain.uploads import received_upload
from gql.files import BlobStore, ByteSource, Purpose, StagedUpload
from gql.plugins import PluginHost
from gql.store.db import retrying
from gql.store.models import Certification
from gql.store.records import CertificationRecord, record_of


async def upload_certification_badge(
    actor: Actor,
    certification_id: int,
    upload: ByteSource,
    *,
    blobs: BlobStore,
    filename: str | None,
    declared_type: str | None = None,
    plugins: PluginHost | None = None,
) -> CertificationRecord:
    """Set (or replace) a certification's badge image; admins only, any state.

    The badge takes the certification's name when it has no badge name yet, so a badge with
    an image always has a name. The previous image's blob, once no row refers to it, is left
    to the sweeper.
    """
    await require_admin(actor, "uploadCertificationBadge", "Certification", certification_id)
    if not await Certification.exists(id=certification_id):
        raise NotFound(t("no such certification"), field=["certificationId"])
    async with received_upload(
        blobs,
        upload,
        Purpose.BADGE,
        filename=filename,
        declared_type=declared_type,
        uploader_id=actor.user_id,
        plugins=plugins,
    ) as staged:
        return await retrying(lambda: _set_badge(actor, certification_id, staged))


async def _set_badge(
    actor: Actor, certification_id: int, staged: StagedUpload
) -> CertificationRecord:
    async with unit_of_work(actor) as unit:
        cert = await Certification.get_or_none(id=certification_id)
        if cert is None:
            raise NotFound(t("no such certification"), field=["certificationId"])
        before = {"badgeSha256": cert.badge_sha256, "badgeName": cert.badge_name}
        stored = await staged.keep()
        cert.badge_sha256 = stored.sha256
        cert.badge_content_type = stored.content_type
        cert.badge_name = cert.badge_name or cert.name
        cert.updated_at = unit.now
        await cert.save(
            update_fields=["badge_sha256", "badge_content_type", "badge_name", "updated_at"]
        )
        await unit.audit(
            "uploadCertificationBadge",
            "Certification",
            cert.id,
            before=before,
            after={
                "badgeSha256": stored.sha256,
                "badgeName": cert.badge_name,
                "contentType": stored.content_type,
                "sizeBytes": stored.size_bytes,
            },
        )
        return record_of(CertificationRecord, cert)
