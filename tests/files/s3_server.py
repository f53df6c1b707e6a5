"""A real S3-compatible server for the tests: moto's server mode (`python -m moto.server`) in a
process of its own on a loopback port. moto stands in for S3 here (docs/files.md says why);
the store talks to it over HTTP exactly as it would to S3."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from gql.files.s3 import S3Connection

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

REGION = "us-east-1"
# moto accepts any keys; these are sent, signed, as to S3.
ACCESS_KEY = "certgraph-test"
SECRET_KEY = "certgraph-test-secret"
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """`python -m moto.server` on 127.0.0.1; its requests are logged to `log_path`."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    return self
            except OSError:
                assert time.monotonic() < deadline, "moto did not start in time"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # nothing of it is kept
            self.process.wait()

    def connection(self, endpoint_url: str | None = None) -> S3Connection:
        return S3Connection(
            endpoint_url=endpoint_url or self.url,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )

    def env(self, endpoint_url: str | None = None) -> dict[str, str]:
        """The standard AWS variables a certgraph process reads to reach this server."""
        return {
            "AWS_ENDPOINT_URL": endpoint_url or self.url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


def bucket_name() -> str:
    return f"certgraph-{uuid.uuid4().hex[:12]}"


async def bucket_keys(client: S3Client, bucket: str) -> list[str]:
    """Every object key in the bucket, sorted."""
    keys = []
    async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


async def open_uploads(client: S3Client, bucket: str) -> list[str]:
    """The keys of the bucket's multipart uploads not completed nor aborted."""
    found = await client.list_multipart_uploads(Bucket=bucket)
    return sorted(upload["Key"] for upload in found.get("Uploads", []))
