"""Uploaded files in three parts: intake (limits, sniffing, names: `intake`), the `BlobStore`
that keeps the bytes (`blobs`, the filesystem one in `local`), and maintenance for the CLI
(`maintenance`: gc, check). No part imports the ORM or the domain; see docs/files.md.
"""

from gql.files.blobs import BlobInfo, BlobStore, BlobTooLarge, ByteSource, InvalidDigest
from gql.files.intake import (
    FileTooLarge,
    Purpose,
    StagedUpload,
    StoredFile,
    UnsupportedFileType,
    UploadCheck,
    UploadError,
    UploadRefused,
    receive_upload,
    sanitise_filename,
)
from gql.files.local import LocalBlobStore
from gql.files.maintenance import CheckReport, GcReport, check_storage, collect_garbage

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobTooLarge",
    "ByteSource",
    "CheckReport",
    "FileTooLarge",
    "GcReport",
    "InvalidDigest",
    "LocalBlobStore",
    "Purpose",
    "StagedUpload",
    "StoredFile",
    "UnsupportedFileType",
    "UploadCheck",
    "UploadError",
    "UploadRefused",
    "check_storage",
    "collect_garbage",
    "receive_upload",
    "sanitise_filename",
]
