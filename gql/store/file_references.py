"""The rows that refer to stored files (evidence, badge images), by the files' SHA-256.

For the blob maintenance (`gql.files.maintenance`: certgraph gc and check) and for the
signed download route, which serves the file a row names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gql.store.models import Certification, Evidence

_IN_BATCH = 500
_READ_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Reference:
    object_type: str  # "Evidence" or "Certification" (its badge)
    object_id: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FileRow:
    """What a download serves: the bytes' digest, their sniffed type, the attachment name."""

    sha256: str
    content_type: str
    filename: str | None


class StoredFileReferences:
    """`gql.files.maintenance.FileReferences` over the database the ORM is connected to."""

    async def referenced(self, digests: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(digests), _IN_BATCH):
            chunk = list(digests[start : start + _IN_BATCH])
            found.update(
                await Evidence.filter(sha256__in=chunk).values_list("sha256", flat=True)  # type: ignore[arg-type]
            )
            found.update(
                await Certification.filter(badge_sha256__in=chunk).values_list(  # type: ignore[arg-type]
                    "badge_sha256", flat=True
                )
            )
        return found

    async def all(self) -> list[Reference]:
        """Every reference; evidence read in keyset batches."""
        references: list[Reference] = []
        last_id = 0
        while True:
            batch = await (
                Evidence.filter(id__gt=last_id)
                .order_by("id")
                .limit(_READ_BATCH)
                .values_list("id", "sha256")
            )
            if not batch:
                break
            references.extend(Reference("Evidence", row_id, sha256) for row_id, sha256 in batch)
            last_id = batch[-1][0]
        badges = await Certification.filter(badge_sha256__isnull=False).values_list(
            "id", "badge_sha256"
        )
        references.extend(Reference("Certification", row_id, sha256) for row_id, sha256 in badges)
        return references


async def evidence_file(evidence_id: int) -> FileRow | None:
    row = await Evidence.filter(id=evidence_id).values_list("sha256", "content_type", "filename")
    if not row:
        return None
    sha256, content_type, filename = row[0]
    return FileRow(sha256, content_type, filename)


async def badge_file(certification_id: int) -> FileRow | None:
    row = await Certification.filter(id=certification_id).values_list(
        "badge_sha256", "badge_content_type"
    )
    if not row or not row[0][0] or not row[0][1]:
        return None
    sha256, content_type = row[0]
    return FileRow(sha256, content_type, None)
