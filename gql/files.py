"""Uploaded files: streaming intake, type sniffing, content-addressed storage and the sweeper.

Layout under ``settings.data_dir`` (see docs/files.md)::

    blobs/<first two hex digits>/<sha256>   the bytes, named by their SHA-256, never changed
    tmp/upload-*.part                       uploads being received

``tmp/`` sits beside ``blobs/`` so that moving a finished upload into place is one atomic
``os.replace`` on the same filesystem. An upload is read in chunks: the size limit is enforced
on the bytes actually received (a declared size is never trusted), the type is decided from
the bytes, and the file only reaches ``blobs/`` once every check and the caller's rules have
passed. The database row that refers to a blob is written after the blob, so a crash in
between leaves an unreferenced blob, which `collect_garbage` removes; never a row without
its bytes.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import filetype

from gql.domain.errors import FileTooLarge, UnsupportedFileType, UploadRefused
from gql.plugins import get_plugin_host
from gql.policy import UploadInfo
from gql.settings import get_settings
from gql.store.models import Certification, Evidence

CHUNK_BYTES = 64 * 1024
# filetype reads at most this many leading bytes to recognise a format.
SNIFF_BYTES = 8192
MAX_FILENAME_CHARS = 200
# Long enough for any upload still being received (or committed) in another process.
DEFAULT_GC_GRACE_SECONDS = 3600
BLOBS_DIR = "blobs"
TMP_DIR = "tmp"
TMP_PREFIX = "upload-"
TMP_SUFFIX = ".part"

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
CSV = "text/csv"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Purpose(StrEnum):
    EVIDENCE = "evidence"
    BADGE = "badge"
    IMPORT = "import"


ACCEPTED_TYPES: dict[Purpose, tuple[str, ...]] = {
    Purpose.EVIDENCE: (PDF, PNG, JPEG),
    Purpose.BADGE: (PNG, JPEG),
    Purpose.IMPORT: (CSV,),
}
_TYPE_NAMES = {PDF: "PDF", PNG: "PNG", JPEG: "JPEG", CSV: "UTF-8 CSV"}
_DEFAULT_EXTENSION = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", CSV: ".csv"}
# Extensions that name one of our types: a file named like one type must be that type.
_EXTENSION_TYPES = {
    ".pdf": PDF,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".jpe": JPEG,
    ".jfif": JPEG,
    ".csv": CSV,
}
# Content types clients send for our types (browsers on Windows send the Excel type for .csv).
_DECLARED_ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "application/x-pdf": PDF,
    "text/plain": CSV,
    "text/x-csv": CSV,
    "application/csv": CSV,
    "text/comma-separated-values": CSV,
    "application/vnd.ms-excel": CSV,
}
# What a client sends when it does not know the type: says nothing, so checks nothing.
_UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class ByteSource(Protocol):
    """Anything uploads are read from: Starlette's UploadFile, or a stream in tests."""

    async def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size_bytes: int
    content_type: str  # sniffed from the bytes
    filename: str  # sanitised, metadata only


@dataclass(frozen=True, slots=True)
class GcReport:
    blobs_removed: int
    bytes_removed: int
    blobs_kept: int  # referenced by a row, or too young to judge
    temp_files_removed: int


# -- paths and names ----------------------------------------------------------------------


def data_dir() -> Path:
    return get_settings().data_dir


def blobs_dir() -> Path:
    return data_dir() / BLOBS_DIR


def tmp_dir() -> Path:
    return data_dir() / TMP_DIR


def blob_path(sha256: str) -> Path:
    """Where the blob with this digest lives; refuses anything but 64 lowercase hex digits."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return blobs_dir() / sha256[:2] / sha256


def sanitise_filename(raw: str | None) -> str:
    """The client's file name reduced to display metadata; never used as a path.

    Keeps the last path component (after turning ``\\`` into ``/``), drops control and
    formatting characters (NUL, CR/LF, bidi overrides) and surrounding spaces and dots, and
    limits the length while keeping the extension. May return "" (see `_display_name`).
    """
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = name.strip().strip(".").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def _display_name(sanitised: str, purpose: Purpose, content_type: str) -> str:
    return sanitised or f"{purpose.value}{_DEFAULT_EXTENSION[content_type]}"


def _extension(name: str) -> str:
    _, dot, extension = name.rpartition(".")
    return "." + extension.lower() if dot else ""


# -- checks on the bytes ------------------------------------------------------------------


def _describe_types(purpose: Purpose) -> str:
    names = [_TYPE_NAMES[t] for t in ACCEPTED_TYPES[purpose]]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _unsupported(purpose: Purpose, detail: str) -> UnsupportedFileType:
    return UnsupportedFileType(
        f"{purpose.value} files must be {_describe_types(purpose)}; {detail}", field=["file"]
    )


def _sniff_binary(head: bytes, purpose: Purpose) -> str:
    kind = filetype.guess(head)
    mime = None if kind is None else str(kind.mime)
    if mime not in ACCEPTED_TYPES[purpose]:
        found = "an empty file" if not head else (f"a {mime} file" if mime else "unrecognised")
        raise _unsupported(purpose, f"this one is {found}")
    return mime


def _check_claims(purpose: Purpose, sniffed: str, filename: str, declared: str | None) -> None:
    """Refuse a file whose name or declared type says it is something other than its bytes."""
    named = _EXTENSION_TYPES.get(_extension(filename))
    if named is not None and named != sniffed:
        raise _unsupported(
            purpose,
            f"the name says {_TYPE_NAMES[named]} but the content is {_TYPE_NAMES[sniffed]}",
        )
    if declared is None:
        return
    claimed = declared.split(";", 1)[0].strip().lower()
    if claimed in _UNDECLARED:
        return
    claimed = _DECLARED_ALIASES.get(claimed, claimed)
    if claimed != sniffed:
        raise _unsupported(
            purpose, f"it was sent as {claimed} but the content is {_TYPE_NAMES[sniffed]}"
        )


class _CsvCheck:
    """Strict UTF-8 without NUL bytes, checked chunk by chunk (filetype knows no CSV)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")

    def feed(self, chunk: bytes, final: bool = False) -> None:
        try:
            self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            raise _unsupported(Purpose.IMPORT, "this one is not UTF-8 text") from None
        if b"\x00" in chunk:
            raise _unsupported(Purpose.IMPORT, "this one contains NUL bytes")


# -- receiving ----------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_temp() -> tuple[int, Path]:
    directory = tmp_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=directory)
    return fd, Path(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _finish_temp(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _install(temp: Path, sha256: str) -> None:
    """Move a finished upload into blobs/ atomically and durably.

    Replacing an existing blob of the same digest (same bytes) is harmless, and it renews the
    blob's mtime, which keeps the sweeper's grace period from removing a blob a row is about
    to refer to.
    """
    target = blob_path(sha256)
    shard = target.parent
    new_shard = not shard.is_dir()
    shard.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(temp, target)
    _fsync_dir(shard)
    if new_shard:
        _fsync_dir(shard.parent)


def _remove_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


class StagedUpload:
    """A received, checked upload in a temporary file, until it is kept or discarded."""

    def __init__(
        self,
        purpose: Purpose,
        temp_path: Path,
        stored: StoredFile,
    ) -> None:
        self.purpose = purpose
        self.temp_path = temp_path
        self.file = stored
        self._kept = False

    @property
    def kept(self) -> bool:
        return self._kept

    async def keep(self) -> StoredFile:
        """Move the bytes into blobs/ (call right before writing the row that refers to them).

        Idempotent, so a use case that is retried after a transient database error may call
        it again.
        """
        if not self._kept:
            await asyncio.to_thread(_install, self.temp_path, self.file.sha256)
            self._kept = True
        return self.file


async def _receive(
    source: ByteSource, purpose: Purpose, fd: int, limit: int
) -> tuple[int, str, str]:
    """Copy the stream into `fd`; return (size, sha256, sniffed type), refusing early."""
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    sniffed: str | None = None
    csv_check = _CsvCheck() if purpose == Purpose.IMPORT else None
    while True:
        chunk = await source.read(CHUNK_BYTES)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise FileTooLarge(
                f"the file is larger than the limit of {limit} bytes", field=["file"]
            )
        if csv_check is not None:
            csv_check.feed(chunk)
        elif sniffed is None:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                sniffed = _sniff_binary(bytes(head), purpose)  # refuse before reading on
        digest.update(chunk)
        await asyncio.to_thread(_write_all, fd, chunk)
    if csv_check is not None:
        csv_check.feed(b"", final=True)
        sniffed = CSV
    elif sniffed is None:
        sniffed = _sniff_binary(bytes(head), purpose)
    return size, digest.hexdigest(), sniffed


@asynccontextmanager
async def receive_upload(
    source: ByteSource,
    purpose: Purpose,
    *,
    filename: str | None,
    declared_type: str | None = None,
    uploader_id: int | None = None,
) -> AsyncIterator[StagedUpload]:
    """Receive an upload into a temporary file and check it; remove the file on the way out.

    Refuses with FILE_TOO_LARGE as soon as more than ``settings.max_upload_bytes`` arrive,
    UNSUPPORTED_FILE_TYPE when the bytes are not of the purpose's types (or the name or the
    declared type claims another type), UPLOAD_REFUSED when a ``certgraph_check_upload``
    plugin refuses. Inside the block the caller decides, calls `StagedUpload.keep()` and
    writes its row; whatever happens, no temporary file remains afterwards.
    """
    limit = get_settings().max_upload_bytes
    name = sanitise_filename(filename)
    fd, temp_path = await asyncio.to_thread(_open_temp)
    fd_open = True
    try:
        size, sha256, content_type = await _receive(source, purpose, fd, limit)
        fd_open = False
        await asyncio.to_thread(_finish_temp, fd)
        _check_claims(purpose, content_type, name, declared_type)
        stored = StoredFile(sha256, size, content_type, _display_name(name, purpose, content_type))
        refusal = await get_plugin_host().check_upload(
            UploadInfo(
                purpose=purpose.value,
                filename=stored.filename,
                content_type=content_type,
                size_bytes=size,
                sha256=sha256,
                path=str(temp_path),
                uploader_id=uploader_id,
            )
        )
        if refusal is not None:
            raise UploadRefused(refusal.reason, field=["file"])
        yield StagedUpload(purpose, temp_path, stored)
    finally:
        # Synchronous on purpose: one unlink is quick, and it must happen even when the
        # request is being cancelled (a client that went away), where an await might not.
        if fd_open:
            os.close(fd)
        _remove_quietly(temp_path)


# -- the sweeper --------------------------------------------------------------------------


def _old_blobs(shard: Path, cutoff: float) -> tuple[list[tuple[str, Path]], int]:
    """Blobs in one shard last written before `cutoff`, and how many younger ones there are."""
    old: list[tuple[str, Path]] = []
    young = 0
    with os.scandir(shard) as entries:
        for entry in entries:
            if not (entry.is_file(follow_symlinks=False) and _SHA256_HEX.fullmatch(entry.name)):
                continue
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                old.append((entry.name, Path(entry.path)))
            else:
                young += 1
    return old, young


def _unlink_if_old(path: Path, cutoff: float) -> int | None:
    """Remove a file still older than `cutoff` (an upload may have renewed it meanwhile)."""
    try:
        status = path.stat()
        if status.st_mtime >= cutoff:
            return None
        path.unlink()
    except FileNotFoundError:
        return None
    return status.st_size


def _shards() -> list[Path]:
    root = blobs_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{2}", p.name))


def _stale_temp_files(cutoff: float) -> list[Path]:
    directory = tmp_dir()
    if not directory.is_dir():
        return []
    stale = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if (
                entry.is_file(follow_symlinks=False)
                and entry.name.startswith(TMP_PREFIX)
                and entry.stat(follow_symlinks=False).st_mtime < cutoff
            ):
                stale.append(Path(entry.path))
    return stale


async def _referenced(digests: Iterable[str]) -> set[str]:
    wanted = list(digests)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(await Evidence.filter(sha256__in=chunk).values_list("sha256", flat=True))  # type: ignore[arg-type]
        found.update(
            await Certification.filter(badge_sha256__in=chunk).values_list(  # type: ignore[arg-type]
                "badge_sha256", flat=True
            )
        )
    return found


async def collect_garbage(*, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcReport:
    """Remove blobs no row refers to and abandoned temporary files, both older than the grace.

    The grace period protects work in flight in other processes: an upload being received
    (its temporary file) and one whose row is not committed yet (its fresh blob). Works
    shard by shard, so memory does not grow with the number of blobs. Needs the database.
    """
    if grace_seconds < 0:
        raise ValueError("grace_seconds must not be negative")
    cutoff = time.time() - grace_seconds
    removed = kept = freed = 0
    for shard in await asyncio.to_thread(_shards):
        old, young = await asyncio.to_thread(_old_blobs, shard, cutoff)
        kept += young
        if not old:
            continue
        referenced = await _referenced(name for name, _ in old)
        for name, path in old:
            if name in referenced:
                kept += 1
                continue
            size = await asyncio.to_thread(_unlink_if_old, path, cutoff)
            if size is None:
                kept += 1
            else:
                removed += 1
                freed += size
    temp_removed = 0
    for path in await asyncio.to_thread(_stale_temp_files, cutoff):
        if await asyncio.to_thread(_unlink_if_old, path, cutoff) is not None:
            temp_removed += 1
    return GcReport(
        blobs_removed=removed, bytes_removed=freed, blobs_kept=kept, temp_files_removed=temp_removed
    )


# -- the consistency check ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileReference:
    """A row that points at a stored file."""

    object_type: str  # "Evidence" or "Certification" (its badge)
    object_id: int
    sha256: str


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


async def _file_references() -> dict[str, list[FileReference]]:
    """Every reference to a stored file, by digest; evidence read in keyset batches."""
    references: dict[str, list[FileReference]] = {}
    last_id = 0
    while True:
        batch = await (
            Evidence.filter(id__gt=last_id).order_by("id").limit(1000).values_list("id", "sha256")
        )
        if not batch:
            break
        for evidence_id, sha256 in batch:
            references.setdefault(sha256, []).append(FileReference("Evidence", evidence_id, sha256))
        last_id = batch[-1][0]
    badges = await Certification.filter(badge_sha256__isnull=False).values_list(
        "id", "badge_sha256"
    )
    for certification_id, sha256 in badges:
        references.setdefault(sha256, []).append(
            FileReference("Certification", certification_id, sha256)
        )
    return references


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _blob_names(shard: Path) -> list[str]:
    with os.scandir(shard) as entries:
        return [
            entry.name
            for entry in entries
            if entry.is_file(follow_symlinks=False) and _SHA256_HEX.fullmatch(entry.name)
        ]


async def check_storage() -> CheckReport:
    """Verify that every stored file a row points to exists with its hash; list orphans.

    Rows are read before the disk is walked: a row commits only after its blob is in place,
    so an upload finishing meanwhile can show up as an orphan (harmless) but never as a
    missing file. Reads every referenced blob once. Needs the database; changes nothing.
    """
    references = await _file_references()
    present: set[str] = set()
    corrupt: list[FileReference] = []
    orphans: list[str] = []
    verified = 0
    for shard in await asyncio.to_thread(_shards):
        for name in sorted(await asyncio.to_thread(_blob_names, shard)):
            if name not in references:
                orphans.append(name)
                continue
            verified += 1
            present.add(name)
            if await asyncio.to_thread(_hash_file, shard / name) != name:
                corrupt.extend(references[name])
    missing = [
        reference
        for digest, refs in references.items()
        if digest not in present
        for reference in refs
    ]
    return CheckReport(
        references=sum(len(refs) for refs in references.values()),
        files_verified=verified,
        missing=tuple(sorted(missing, key=lambda r: (r.object_type, r.object_id))),
        corrupt=tuple(sorted(corrupt, key=lambda r: (r.object_type, r.object_id))),
        orphans=tuple(orphans),
    )
