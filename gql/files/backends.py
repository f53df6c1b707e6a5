"""`open_blob_store`: the blob store CERTGRAPH_STORAGE_URL names, built from the settings by
the app factory and the CLI (a directory by default, or an S3-compatible bucket)."""

from __future__ import annotations

from pathlib import Path

from gql.files.blobs import BlobStore
from gql.files.local import LocalBlobStore
from gql.settings import Settings

FILE_SCHEME = "file://"


def open_blob_store(settings: Settings) -> BlobStore:
    """Unset: the data directory; ``file://<dir>``: that directory; ``s3://...``: the bucket."""
    url = settings.storage_url
    if url is None or url.startswith(FILE_SCHEME):
        root = url[len(FILE_SCHEME) :] if url else ""
        return LocalBlobStore(
            Path(root) if root else settings.data_dir, max_bytes=settings.max_upload_bytes
        )
    # Imported here: aiobotocore is loaded only by deployments that use it.
    from gql.files.s3 import S3BlobStore

    return S3BlobStore.from_settings(settings)


def storage_errors(settings: Settings) -> tuple[type[Exception], ...]:
    """What the configured store's client raises when the store fails (unreachable, refused,
    no such bucket); a directory's failures are OSErrors."""
    if settings.storage_url is None or settings.storage_url.startswith(FILE_SCHEME):
        return ()
    from gql.files.s3 import CLIENT_ERRORS

    return CLIENT_ERRORS
