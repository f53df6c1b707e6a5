"""Maintenance of a blob store for the CLI: `collect_garbage` (certgraph gc) and
`check_storage` (certgraph check). Which blobs rows refer to comes from a `FileReferences`
(gql/store/file_references.py), so this module knows no database.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gql.files.blobs import BlobStore

# Long enough for any upload still being received (or committed) in another process.
DEFAULT_GC_GRACE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class FileReference:
    """A row that points at a stored file."""

    object_type: str  # "Evidence" or "Certification" (its badge)
    object_id: int
    sha256: str


class RowReference(Protocol):
    @property
    def object_type(self) -> str: ...

    @property
    def object_id(self) -> int: ...

    @property
    def sha256(self) -> str: ...


class FileReferences(Protocol):
    async def referenced(self, digests: Sequence[str]) -> set[str]:
        """The digests among `digests` that some row refers to."""
        ...

    async def all(self) -> Sequence[RowReference]:
        """Every row's reference to a stored file."""
        ...


@dataclass(frozen=True, slots=True)
class GcReport:
    blobs_removed: int
    bytes_removed: int
    blobs_kept: int  # referenced by a row, or too young to judge
    temp_files_removed: int


@dataclass(frozen=True, slots=True)
class CheckReport:
    references: int  # rows pointing at a file
    files_verified: int  # distinct referenced blobs read and hashed
    missing: tuple[FileReference, ...]  # the row's file is not there
    corrupt: tuple[FileReference, ...]  # the file's bytes no longer hash to its name
    orphans: tuple[str, ...]  # blobs no row refers to (`collect_garbage` removes them)

    @property
    def ok(self) -> bool:
        """Every row's file is there with its hash; orphans are waste, not damage."""
        return not self.missing and not self.corrupt


async def collect_garbage(
    blobs: BlobStore,
    references: FileReferences,
    *,
    grace_seconds: float = DEFAULT_GC_GRACE_SECONDS,
) -> GcReport:
    """Remove blobs no row refers to and abandoned pending uploads, both older than the grace.

    The grace period protects work in flight in other processes: an upload being received
    (its pending file) and one whose row is not committed yet (its fresh blob). Works a batch
    of blobs at a time, so memory does not grow with their number.
    """
    if grace_seconds < 0:
        raise ValueError("grace_seconds must not be negative")
    cutoff = time.time() - grace_seconds
    removed = kept = freed = 0
    async for batch in blobs.batches():
        old = [blob.sha256 for blob in batch if blob.modified < cutoff]
        kept += len(batch) - len(old)
        referenced = await references.referenced(old) if old else set()
        for sha256 in old:
            size = None
            if sha256 not in referenced:
                # The age is checked again: an upload of the same bytes renews the blob.
                size = await blobs.delete(sha256, unchanged_since=cutoff)
            if size is None:
                kept += 1
            else:
                removed += 1
                freed += size
    temp_removed = await blobs.remove_abandoned(older_than=cutoff)
    return GcReport(
        blobs_removed=removed, bytes_removed=freed, blobs_kept=kept, temp_files_removed=temp_removed
    )


async def _digest(blobs: BlobStore, sha256: str) -> str | None:
    digest = hashlib.sha256()
    try:
        async for chunk in blobs.read(sha256):
            digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


async def check_storage(blobs: BlobStore, references: FileReferences) -> CheckReport:
    """Verify that every stored file a row points to exists with its hash; list orphans.

    Rows are read before the store is walked: a row commits only after its blob is in place,
    so an upload finishing meanwhile can show up as an orphan (harmless) but never as a
    missing file. Reads every referenced blob once; changes nothing.
    """
    by_digest: dict[str, list[FileReference]] = {}
    for row in await references.all():
        reference = FileReference(row.object_type, row.object_id, row.sha256)
        by_digest.setdefault(reference.sha256, []).append(reference)
    present: set[str] = set()
    corrupt: list[FileReference] = []
    orphans: list[str] = []
    async for batch in blobs.batches():
        for blob in batch:
            if blob.sha256 not in by_digest:
                orphans.append(blob.sha256)
                continue
            actual = await _digest(blobs, blob.sha256)
            if actual is None:  # removed since the walk listed it
                continue
            present.add(blob.sha256)
            if actual != blob.sha256:
                corrupt.extend(by_digest[blob.sha256])
    missing = [ref for digest, refs in by_digest.items() if digest not in present for ref in refs]

    def order(reference: FileReference) -> tuple[str, int]:
        return reference.object_type, reference.object_id

    return CheckReport(
        references=sum(len(refs) for refs in by_digest.values()),
        files_verified=len(present),
        missing=tuple(sorted(missing, key=order)),
        corrupt=tuple(sorted(corrupt, key=order)),
        orphans=tuple(orphans),
    )
