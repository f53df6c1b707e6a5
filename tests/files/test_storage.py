"""Storage: streaming intake, size limit, sniffing, names, content addressing, plugin checks."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from gql import UploadInfo, UploadRefusal, hookimpl
from gql.domain.errors import ErrorCode, FileTooLarge, UnsupportedFileType, UploadRefused
from gql.domain.uploads import received_upload
from gql.files import Purpose, StagedUpload, StoredFile, sanitise_filename
from gql.files.intake import MAX_FILENAME_CHARS, stored_name
from gql.files.local import CHUNK_BYTES
from tests.conftest import stored_files

from .conftest import blob_path, blob_store
from .samples import HTML, ZIP, BytesStream, GeneratedStream, jpeg, pdf, png

MiB = 1024 * 1024


def receive_upload(
    source: Any,
    purpose: Purpose,
    *,
    filename: str | None,
    declared_type: str | None = None,
) -> AbstractAsyncContextManager[StagedUpload]:
    """What a use case does: the intake into the blob store, with the plugins' check."""
    return received_upload(
        blob_store(),
        source,
        purpose,
        filename=filename,
        declared_type=declared_type,
        uploader_id=None,
    )


async def store(
    data: bytes | Any,
    purpose: Purpose = Purpose.EVIDENCE,
    *,
    filename: str | None = "file",
    declared_type: str | None = None,
) -> StoredFile:
    source = BytesStream(data) if isinstance(data, bytes) else data
    async with receive_upload(
        source, purpose, filename=filename, declared_type=declared_type
    ) as staged:
        return await staged.keep()


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/x", "x"),
        ("a.pdf\x00.exe", "a.pdf_.exe"),  # pieces around a control character never join
        ("..\\x.pdf", "x.pdf"),
        ("C:\\Users\\lea\\proof.pdf", "proof.pdf"),
        ("re\r\nport.pdf", "re__port.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override, dropped
        ("..", ""),
        ("", ""),
        (None, ""),
        ("  spaced name.pdf  ", "spaced name.pdf"),
    ],
)
def test_filenames_are_reduced_to_metadata(raw: str | None, expected: str) -> None:
    assert sanitise_filename(raw) == expected


def test_long_filenames_are_cut_keeping_the_extension() -> None:
    name = sanitise_filename("x" * 1000 + ".pdf")
    assert len(name) == MAX_FILENAME_CHARS
    assert name.endswith("xx.pdf")


# Issue 11: a stored name always ends in an extension of the sniffed type, so whoever saves
# the download opens it as what it is; a name that claims another type is refused.
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("proof.pdf", "proof.pdf"),
        ("PROOF.PDF", "PROOF.PDF"),
        ("scan", "scan.pdf"),
        ("report.v2", "report.v2.pdf"),
        ("a.pdf\x00.exe", "a.pdf_.exe.pdf"),  # .exe is generic binary: claims nothing
        ("setup.bin", "setup.bin.pdf"),
        ("../../etc/passwd", "passwd.pdf"),
        ("....", "evidence.pdf"),
        ("x" * 300, "x" * 196 + ".pdf"),
    ],
)
async def test_stored_names_end_in_the_sniffed_type(sent: str, kept: str, data_dir: Path) -> None:
    stored = await store(pdf(sent), filename=sent)
    assert stored.filename == kept
    assert len(stored.filename) <= MAX_FILENAME_CHARS


@pytest.mark.parametrize(
    ("content", "purpose", "sent", "kept"),
    [
        (jpeg(), Purpose.EVIDENCE, "photo.JPEG", "photo.JPEG"),
        (jpeg(), Purpose.BADGE, "photo", "photo.jpg"),
        (png(), Purpose.BADGE, "logo.final", "logo.final.png"),
        (b"a,b\n", Purpose.IMPORT, "progress.txt", "progress.txt"),
        (b"a,b\n", Purpose.IMPORT, "progress", "progress.csv"),
    ],
)
def test_stored_name_per_type(content: bytes, purpose: Purpose, sent: str, kept: str) -> None:
    content_type = {jpeg(): "image/jpeg", png(): "image/png"}.get(content, "text/csv")
    assert stored_name(sanitise_filename(sent), purpose, content_type) == kept


@pytest.mark.parametrize(
    ("sent", "claimed"),
    [
        ("certificate.html", "text/html"),
        ("certificate.HTM", "text/html"),
        ("cert.svg", "image/svg+xml"),
        ("cert.js", "application/javascript"),
        ("scan.png", "PNG"),
        ("a.pdf\x00.html", "text/html"),
        ("notes.txt", "UTF-8 CSV"),
    ],
)
async def test_a_name_claiming_another_type_is_refused(
    sent: str, claimed: str, data_dir: Path
) -> None:
    with pytest.raises(UnsupportedFileType) as raised:
        await store(pdf(), filename=sent)
    assert raised.value.message == (
        f"evidence files must be PDF, PNG or JPEG; the name says {claimed} but the content is PDF"
    )
    assert stored_files(data_dir) == []


@pytest.mark.parametrize("raw", ["../../etc/passwd", "/etc/x", "a.pdf\x00.exe", "..\\x.pdf"])
async def test_hostile_names_never_reach_the_filesystem(raw: str, data_dir: Path) -> None:
    content = pdf(raw)
    stored = await store(content, filename=raw)

    digest = hashlib.sha256(content).hexdigest()
    assert stored.sha256 == digest
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]
    assert "/" not in stored.filename and "\\" not in stored.filename
    assert "\x00" not in stored.filename


# -- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (pdf(), "proof.pdf", "application/pdf"),
        (png(), "scan.PNG", "image/png"),
        (jpeg(), "photo.jpeg", "image/jpeg"),
        (pdf(), "no-extension", "application/pdf"),
    ],
)
async def test_evidence_types_are_sniffed(
    content: bytes, filename: str, content_type: str, data_dir: Path
) -> None:
    stored = await store(content, filename=filename, declared_type="application/octet-stream")

    assert stored.content_type == content_type
    assert stored.size_bytes == len(content)
    assert blob_path(stored.sha256).read_bytes() == content
    assert stored_files(data_dir) == [f"blobs/{stored.sha256[:2]}/{stored.sha256}"]


@pytest.mark.parametrize(
    ("content", "purpose", "filename", "declared_type"),
    [
        pytest.param(HTML, Purpose.EVIDENCE, "proof.pdf", "application/pdf", id="html-named-pdf"),
        pytest.param(png(), Purpose.EVIDENCE, "scan.png", "application/pdf", id="png-sent-as-pdf"),
        pytest.param(png(), Purpose.EVIDENCE, "scan.pdf", None, id="png-named-pdf"),
        pytest.param(ZIP, Purpose.EVIDENCE, "bundle.zip", "application/zip", id="zip"),
        pytest.param(ZIP, Purpose.EVIDENCE, "proof.pdf", None, id="zip-named-pdf"),
        pytest.param(b"", Purpose.EVIDENCE, "empty.pdf", None, id="empty"),
        pytest.param(pdf(), Purpose.BADGE, "badge.pdf", None, id="pdf-as-badge"),
        pytest.param(png(), Purpose.IMPORT, "rows.csv", None, id="png-as-csv"),
    ],
)
async def test_type_mismatches_are_refused(
    content: bytes,
    purpose: Purpose,
    filename: str,
    declared_type: str | None,
    data_dir: Path,
) -> None:
    with pytest.raises(UnsupportedFileType) as raised:
        await store(content, purpose, filename=filename, declared_type=declared_type)

    assert raised.value.code == ErrorCode.UNSUPPORTED_FILE_TYPE
    assert raised.value.field == ("file",)
    assert stored_files(data_dir) == []


async def test_a_known_type_under_an_alias_or_unknown_declaration_is_accepted() -> None:
    assert (await store(jpeg(), declared_type="image/jpg")).content_type == "image/jpeg"
    assert (await store(pdf(), declared_type="")).content_type == "application/pdf"
    assert (await store(pdf(), declared_type=None)).content_type == "application/pdf"
    assert (
        await store(b"a,b\n", Purpose.IMPORT, filename="x.csv", declared_type="text/csv")
    ).content_type == "text/csv"


async def test_an_unnamed_file_gets_a_name_from_its_type() -> None:
    stored = await store(png(), Purpose.BADGE, filename="../..")
    assert stored.filename == "badge.png"


async def test_csv_must_be_strict_utf8_without_nul(data_dir: Path) -> None:
    text = "learner_email,course_id,percent,completed_at\nzoë@example.com,1,50,\n".encode()
    # one byte at a time: a character split across reads is still valid UTF-8
    one_at_a_time = GeneratedStream(len(text), head=text, chunk_cap=1)
    assert (await store(one_at_a_time, Purpose.IMPORT)).content_type == "text/csv"

    for bad in (b"caf\xe9,1\n", b"a,b\x00\n", "zoë".encode()[:-1]):
        with pytest.raises(UnsupportedFileType):
            await store(bad, Purpose.IMPORT)
    assert len(stored_files(data_dir)) == 1


# -- size ---------------------------------------------------------------------------------


async def test_exactly_the_limit_is_accepted(upload_limit: int) -> None:
    stored = await store(GeneratedStream(upload_limit, head=pdf()))
    assert stored.size_bytes == upload_limit


@pytest.mark.parametrize("chunk_cap", [None, 7, 1024 * 1024], ids=["asked", "small", "oversized"])
async def test_one_byte_over_the_limit_is_refused_and_leaves_nothing(
    upload_limit: int, chunk_cap: int | None, data_dir: Path
) -> None:
    stream = GeneratedStream(upload_limit + 1, head=pdf(), chunk_cap=chunk_cap)

    with pytest.raises(FileTooLarge) as raised:
        await store(stream)

    assert raised.value.code == ErrorCode.FILE_TOO_LARGE
    assert stored_files(data_dir) == []


async def test_a_200_mib_stream_is_refused_in_bounded_memory(data_dir: Path) -> None:
    limit = 10 * MiB  # the default
    stream = GeneratedStream(200 * MiB, head=pdf())

    tracemalloc.start()
    try:
        with pytest.raises(FileTooLarge):
            await store(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stream.sent <= limit + CHUNK_BYTES  # it stopped reading at the limit
    assert peak < 2 * MiB, f"peak {peak} bytes while refusing a 200 MiB stream"
    assert stored_files(data_dir) == []


# -- content addressing -------------------------------------------------------------------


async def test_the_same_bytes_twice_are_one_blob(data_dir: Path) -> None:
    first = await store(pdf(), filename="a.pdf")
    second = await store(pdf(), filename="b.pdf")

    assert first.sha256 == second.sha256
    assert (first.filename, second.filename) == ("a.pdf", "b.pdf")
    assert stored_files(data_dir) == [f"blobs/{first.sha256[:2]}/{first.sha256}"]


async def test_a_blob_is_written_only_when_kept(data_dir: Path) -> None:
    async with receive_upload(BytesStream(pdf()), Purpose.EVIDENCE, filename="p.pdf") as staged:
        assert staged.temp_path.exists()
        assert stored_files(data_dir) == [staged.temp_path.relative_to(data_dir).as_posix()]
    assert stored_files(data_dir) == []


async def test_keep_is_idempotent(data_dir: Path) -> None:
    async with receive_upload(BytesStream(png()), Purpose.BADGE, filename="b.png") as staged:
        first = await staged.keep()
        second = await staged.keep()
    assert first == second
    assert stored_files(data_dir) == [f"blobs/{first.sha256[:2]}/{first.sha256}"]


async def test_an_error_inside_the_block_removes_the_temp_file(data_dir: Path) -> None:
    with pytest.raises(RuntimeError):
        async with receive_upload(BytesStream(pdf()), Purpose.EVIDENCE, filename="p.pdf"):
            raise RuntimeError("the caller's rules said no")
    assert stored_files(data_dir) == []


def test_blob_paths_take_only_digests() -> None:
    with pytest.raises(ValueError):
        blob_path("../../etc/passwd")
    with pytest.raises(ValueError):
        blob_path("A" * 64)


# -- the certgraph_check_upload hook ------------------------------------------------------


class Scanner:
    def __init__(self, verdict: str | None = None, fail: bool = False) -> None:
        self.verdict = verdict
        self.fail = fail
        self.seen: list[tuple[UploadInfo, bytes]] = []

    @hookimpl
    async def certgraph_check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        # an async hook, as a scanner calling out to a daemon would be
        self.seen.append((upload, await asyncio.to_thread(Path(upload.path).read_bytes)))
        if self.fail:
            raise OSError("scanner offline")
        return UploadRefusal(self.verdict) if self.verdict else None


async def test_a_plugin_sees_the_checked_file(plugin_host: Any) -> None:
    scanner = Scanner()
    plugin_host.register(scanner, "scanner")
    content = pdf()

    stored = await store(content, filename="../proof.pdf")

    [(info, seen_bytes)] = scanner.seen
    assert seen_bytes == content
    assert (info.purpose, info.filename, info.content_type) == (
        "evidence",
        "proof.pdf",
        "application/pdf",
    )
    assert (info.size_bytes, info.sha256) == (len(content), stored.sha256)


@pytest.mark.parametrize(
    ("scanner", "reason"),
    [
        (Scanner(verdict="EICAR test signature found"), "EICAR test signature found"),
        (Scanner(fail=True), "the upload check of scanner failed"),
    ],
    ids=["refuses", "fails-closed"],
)
async def test_a_plugin_can_refuse_a_file(
    plugin_host: Any, scanner: Scanner, reason: str, data_dir: Path
) -> None:
    plugin_host.register(scanner, "scanner")

    with pytest.raises(UploadRefused) as raised:
        await store(pdf())

    assert raised.value.code == ErrorCode.UPLOAD_REFUSED
    assert raised.value.message == reason
    assert stored_files(data_dir) == []


async def test_wrong_types_are_refused_before_any_plugin_sees_them(plugin_host: Any) -> None:
    scanner = Scanner()
    plugin_host.register(scanner, "scanner")
    with pytest.raises(UnsupportedFileType):
        await store(HTML, filename="x.pdf")
    assert scanner.seen == []


class DroppedConnection(GeneratedStream):
    """A client that goes away halfway through its upload."""

    async def read(self, size: int) -> bytes:
        if self.sent >= self.total // 2:
            raise OSError("client disconnected")
        return await super().read(size)


async def test_an_interrupted_upload_leaves_no_temp_file(data_dir: Path) -> None:
    stream = DroppedConnection(1024 * 1024, head=pdf())
    with pytest.raises(OSError, match="client disconnected"):
        await store(stream)
    assert stream.sent > 0
    assert stored_files(data_dir) == []


async def test_a_cancelled_upload_leaves_no_temp_file(data_dir: Path) -> None:
    stalled = asyncio.Event()

    class Stalled(GeneratedStream):
        async def read(self, size: int) -> bytes:
            if self.sent:
                stalled.set()
                await asyncio.sleep(3600)  # the client stops sending
            return await super().read(size)

    task = asyncio.create_task(store(Stalled(1024 * 1024, head=pdf())))
    await stalled.wait()
    assert len(stored_files(data_dir)) == 1  # the temporary file of the upload in progress
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stored_files(data_dir) == []
