"""Receiving a use case's upload: gql.files' intake with the plugins' upload check, its
refusals turned into DomainErrors (FILE_TOO_LARGE, UNSUPPORTED_FILE_TYPE, UPLOAD_REFUSED)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gql.domain.errors import DomainError, FileTooLarge, UnsupportedFileType, UploadRefused
from gql.files import BlobStore, ByteSource, Purpose, StagedUpload, receive_upload
from gql.files import intake as files
from gql.plugins import PluginHost, get_plugin_host

_ERRORS: dict[type[files.UploadError], type[DomainError]] = {
    files.FileTooLarge: FileTooLarge,
    files.UnsupportedFileType: UnsupportedFileType,
    files.UploadRefused: UploadRefused,
}


@asynccontextmanager
async def received_upload(
    blobs: BlobStore,
    source: ByteSource,
    purpose: Purpose,
    *,
    filename: str | None,
    declared_type: str | None,
    uploader_id: int | None,
    plugins: PluginHost | None = None,
) -> AsyncIterator[StagedUpload]:
    """`gql.files.receive_upload` for a use case, checked by `plugins` (the process default
    when None): the caller keeps the upload inside."""
    try:
        async with receive_upload(
            blobs,
            source,
            purpose,
            filename=filename,
            declared_type=declared_type,
            uploader_id=uploader_id,
            check=(plugins or get_plugin_host()).check_upload,
        ) as staged:
            yield staged
    except files.UploadError as exc:
        raise _ERRORS.get(type(exc), DomainError)(exc.message, field=exc.field) from None
