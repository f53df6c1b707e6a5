"""Upload intake: the size limit while streaming, the type sniffed from the bytes, name rules.

`receive_upload` streams a file into a `BlobStore`'s pending blob, refuses it with an
`UploadError` (FILE_TOO_LARGE, UNSUPPORTED_FILE_TYPE, UPLOAD_REFUSED) or hands the caller a
`StagedUpload` to keep; whatever happens, nothing uncommitted remains afterwards. Its messages
are Messages (gql.i18n.t): the API tells them in the request's language.
"""

from __future__ import annotations

import codecs
import mimetypes
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import filetype

from gql.files.blobs import BlobStore, BlobTooLarge, ByteSource, PendingBlob
from gql.i18n import t
from gql.policy import Message, UploadInfo, UploadRefusal

# filetype reads at most this many leading bytes to recognise a format.
SNIFF_BYTES = 8192
MAX_FILENAME_CHARS = 200

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
CSV = "text/csv"


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
# The extensions a stored name may end in for each type; the first is added when it has none.
_EXTENSIONS = {
    PDF: (".pdf",),
    PNG: (".png",),
    JPEG: (".jpg", ".jpeg", ".jpe", ".jfif"),
    CSV: (".csv", ".txt"),
}
# Content types clients send for our types (browsers on Windows send the Excel type for .csv).
_ALIASES = {
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
# Python's built-in table only (not the machine's mime.types), so the rule is the same anywhere.
_KNOWN_TYPES = mimetypes.MimeTypes()


class UploadError(Exception):
    """An upload refused for what it is; `code` is the ErrorCode the domain maps it to."""

    code = "INVALID_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = ("file",)


class FileTooLarge(UploadError):
    code = "FILE_TOO_LARGE"


class UnsupportedFileType(UploadError):
    code = "UNSUPPORTED_FILE_TYPE"


class UploadRefused(UploadError):
    code = "UPLOAD_REFUSED"


# A `certgraph_check_upload` round (the plugin host's `check_upload`).
UploadCheck = Callable[[UploadInfo], Awaitable[UploadRefusal | None]]


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size_bytes: int
    content_type: str  # sniffed from the bytes
    filename: str  # sanitised, ends in an extension of content_type; metadata only


# -- names ----------------------------------------------------------------------------------


def _cut(name: str) -> str:
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len(extension) <= 16:
        return stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
    return name[:MAX_FILENAME_CHARS]


def sanitise_filename(raw: str | None) -> str:
    """The client's file name reduced to display metadata; never used as a path.

    Keeps the last path component (after turning ``\\`` into ``/``), turns control
    characters (NUL, CR/LF, ...) into ``_`` so the pieces around them never join into a new
    name, drops formatting characters (bidi overrides), strips surrounding spaces and dots,
    and limits the length keeping the extension. May return "".
    """
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            kept.append("_")
        elif category not in ("Cf", "Cs"):
            kept.append(ch)
    return _cut("".join(kept).strip().strip(".").strip())


def _extension(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return "." + extension.lower() if dot and stem else ""


def _named_type(extension: str) -> str | None:
    """The type an extension claims; None when it claims none (unknown, or generic binary)."""
    for content_type, extensions in _EXTENSIONS.items():
        if extension in extensions:
            return content_type
    claimed, _ = _KNOWN_TYPES.guess_type("x" + extension, strict=False)
    if claimed is None or claimed in _UNDECLARED:
        return None
    return _ALIASES.get(claimed, claimed)


def stored_name(sanitised: str, purpose: Purpose, content_type: str) -> str:
    """The name kept for a file of `content_type`; it always ends in one of its extensions.

    A name without one gets the type's extension added (``scan`` → ``scan.pdf``, ``a.pdf_.exe``
    → ``a.pdf_.exe.pdf``), so whoever saves the download opens it as what it is. A name that
    claims another type is refused before this (`check_claims`).
    """
    if not sanitised:
        return f"{purpose.value}{_EXTENSIONS[content_type][0]}"
    if _extension(sanitised) in _EXTENSIONS[content_type]:
        return sanitised
    extension = _EXTENSIONS[content_type][0]
    return _cut(sanitised[: MAX_FILENAME_CHARS - len(extension)].rstrip() + extension)


# -- checks on the bytes ------------------------------------------------------------------


def _describe(content_type: str) -> str:
    return _TYPE_NAMES.get(content_type, content_type)


def _describe_types(purpose: Purpose) -> str:
    names = [_TYPE_NAMES[each] for each in ACCEPTED_TYPES[purpose]]
    if len(names) == 1:
        return names[0]
    return t("{some} or {last}", some=", ".join(names[:-1]), last=names[-1])


def _unsupported(purpose: Purpose, detail: Message) -> UnsupportedFileType:
    types = _describe_types(purpose)
    # one sentence per purpose: the purpose's word is part of the translated noun
    if purpose == Purpose.EVIDENCE:
        message = t("evidence files must be {types}; {detail}", types=types, detail=detail)
    elif purpose == Purpose.BADGE:
        message = t("badge files must be {types}; {detail}", types=types, detail=detail)
    else:
        message = t("import files must be {types}; {detail}", types=types, detail=detail)
    return UnsupportedFileType(message)


def _sniff_binary(head: bytes, purpose: Purpose) -> str:
    kind = filetype.guess(head)
    mime = None if kind is None else str(kind.mime)
    if mime not in ACCEPTED_TYPES[purpose]:
        if not head:
            found = t("this one is an empty file")
        elif mime:
            found = t("this one is a {type} file", type=mime)
        else:
            found = t("this one is unrecognised")
        raise _unsupported(purpose, found)
    return mime


def check_claims(purpose: Purpose, sniffed: str, filename: str, declared: str | None) -> None:
    """Refuse a file whose name or declared type says it is something other than its bytes.

    The name claims a type through its extension (``.pdf``, ``.html``, ...: Python's built-in
    table); an unknown extension, or one of generic binary (``.exe``, ``.bin``), claims none.
    """
    named = _named_type(_extension(filename))
    if named is not None and named != sniffed:
        raise _unsupported(
            purpose,
            t(
                "the name says {named} but the content is {sniffed}",
                named=_describe(named),
                sniffed=_describe(sniffed),
            ),
        )
    if declared is None:
        return
    claimed = declared.split(";", 1)[0].strip().lower()
    if claimed in _UNDECLARED:
        return
    claimed = _ALIASES.get(claimed, claimed)
    if claimed != sniffed:
        raise _unsupported(
            purpose,
            t(
                "it was sent as {claimed} but the content is {sniffed}",
                claimed=claimed,
                sniffed=_describe(sniffed),
            ),
        )


class _Sniffer:
    """Decides the type from the chunks as they arrive, refusing as early as it can.

    Binary types from the first 8 KiB (before the rest is read); CSV is strict UTF-8 without
    NUL bytes, checked chunk by chunk (filetype knows no CSV).
    """

    def __init__(self, purpose: Purpose) -> None:
        self.purpose = purpose
        self.content_type: str | None = None
        self._head = bytearray()
        self._decoder = (
            codecs.getincrementaldecoder("utf-8")(errors="strict")
            if purpose == Purpose.IMPORT
            else None
        )

    def __call__(self, chunk: bytes) -> None:
        final = not chunk
        if self._decoder is not None:
            self._feed_text(chunk, final)
        elif self.content_type is None:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            if final or len(self._head) >= SNIFF_BYTES:
                self.content_type = _sniff_binary(bytes(self._head), self.purpose)

    def _feed_text(self, chunk: bytes, final: bool) -> None:
        assert self._decoder is not None
        try:
            self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            raise _unsupported(self.purpose, t("this one is not UTF-8 text")) from None
        if b"\x00" in chunk:
            raise _unsupported(self.purpose, t("this one contains NUL bytes"))
        if final:
            self.content_type = CSV


# -- receiving ----------------------------------------------------------------------------


class StagedUpload:
    """A received, checked upload, pending until it is kept or the block ends."""

    def __init__(self, purpose: Purpose, pending: PendingBlob, stored: StoredFile) -> None:
        self.purpose = purpose
        self.file = stored
        self._pending = pending
        self._kept = False

    @property
    def temp_path(self) -> Path:
        """A local file holding the bytes until the block ends (imports read it)."""
        return self._pending.local_path

    @property
    def kept(self) -> bool:
        return self._kept

    async def keep(self) -> StoredFile:
        """Put the bytes in the blob store (right before writing the row that refers to them).

        Idempotent, so a use case retried after a transient database error may call it again.
        """
        await self._pending.commit()
        self._kept = True
        return self.file


@asynccontextmanager
async def receive_upload(
    blobs: BlobStore,
    source: ByteSource,
    purpose: Purpose,
    *,
    filename: str | None,
    declared_type: str | None = None,
    uploader_id: int | None = None,
    check: UploadCheck | None = None,
) -> AsyncIterator[StagedUpload]:
    """Receive an upload into `blobs` (pending) and check it; discard it on the way out.

    Refuses with FileTooLarge as soon as more than ``blobs.max_bytes`` arrive,
    UnsupportedFileType when the bytes are not of the purpose's types or the name or the
    declared type claims another type, UploadRefused when `check` (the plugins'
    ``certgraph_check_upload``) refuses. Inside the block the caller decides, calls
    `StagedUpload.keep()` and writes its row; nothing it did not keep remains afterwards.
    """
    name = sanitise_filename(filename)
    sniffer = _Sniffer(purpose)
    try:
        async with blobs.receive(source, inspect=sniffer) as pending:
            content_type = sniffer.content_type
            assert content_type is not None  # the final call decided or refused
            check_claims(purpose, content_type, name, declared_type)
            stored = StoredFile(
                pending.sha256, pending.size, content_type, stored_name(name, purpose, content_type)
            )
            if check is not None:
                refusal = await check(
                    UploadInfo(
                        purpose=purpose.value,
                        filename=stored.filename,
                        content_type=content_type,
                        size_bytes=stored.size_bytes,
                        sha256=stored.sha256,
                        path=str(pending.local_path),
                        uploader_id=uploader_id,
                    )
                )
                if refusal is not None:
                    raise UploadRefused(refusal.reason)
            yield StagedUpload(purpose, pending, stored)
    except BlobTooLarge as exc:
        raise FileTooLarge(
            t("the file is larger than the limit of {limit} bytes", limit=exc.limit)
        ) from None
