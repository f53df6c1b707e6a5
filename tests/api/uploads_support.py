"""Helpers of the upload tests (test_uploads*.py): hand-built multipart requests as the
GraphQL multipart request spec describes them, byte streams that count what was read, and
views of what the data directory and the database hold."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette import formparsers

from gql.api.ids import encode_id
from gql.store.models import CertificationKind, Evidence
from tests.conftest import SMALL_UPLOAD_LIMIT

from .conftest import make_certification

MAX_UPLOAD = SMALL_UPLOAD_LIMIT  # the limit the `upload_limit` fixture sets


@dataclass
class FilePart:
    content: bytes
    filename: str = "proof.pdf"
    content_type: str | None = "application/pdf"


def multipart_body(
    query: str,
    variables: dict[str, Any],
    files: dict[str, FilePart],
    boundary: str,
) -> bytes:
    """A multipart body: `operations`, `map`, then one part per file.

    `files` maps a variable path ("variables.file") to its part; the variable itself is sent
    as null, as the spec says.
    """
    operations_variables = dict(variables)
    file_map: dict[str, list[str]] = {}
    for index, path in enumerate(files):
        file_map[str(index)] = [path]
        operations_variables[path.removeprefix("variables.")] = None
    lines: list[bytes] = []

    def part(headers: list[str], content: bytes) -> None:
        lines.append(f"--{boundary}\r\n".encode())
        lines.extend(f"{h}\r\n".encode() for h in headers)
        lines.append(b"\r\n" + content + b"\r\n")

    operations = {"query": query, "variables": operations_variables}
    part(['Content-Disposition: form-data; name="operations"'], json.dumps(operations).encode())
    part(['Content-Disposition: form-data; name="map"'], json.dumps(file_map).encode())
    for index, file in enumerate(files.values()):
        headers = [
            f'Content-Disposition: form-data; name="{index}"; filename="{_quoted(file.filename)}"'
        ]
        if file.content_type is not None:
            headers.append(f"Content-Type: {file.content_type}")
        part(headers, file.content)
    lines.append(f"--{boundary}--\r\n".encode())
    return b"".join(lines)


def _quoted(filename: str) -> str:
    # RFC 7578 quoting as browsers do it: the backslash and the quote escaped.
    return filename.replace("\\", "\\\\").replace('"', '\\"')


class UploadClient:
    """Sends GraphQL multipart requests built by hand over the app's HTTP client."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any],
        files: dict[str, FilePart],
        *,
        token: str | None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        boundary = uuid.uuid4().hex
        sent = {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body = multipart_body(query, variables, files, boundary)
        return await self.http.post("/graphql", content=body, headers=sent)

    async def data(
        self,
        query: str,
        variables: dict[str, Any],
        files: dict[str, FilePart],
        *,
        token: str,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, files, token=token)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data


class CountingBody:
    """A request body made up as it is read (`head`, then zeros), counting what was pulled.

    Used as httpx `content=`: nothing declares its length unless the test sets the header, so
    httpx sends it chunked.
    """

    def __init__(self, head: bytes, total: int, chunk: int = 64 * 1024) -> None:
        self.head = head
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            n = min(self.chunk, self.total - self.pulled)
            start = self.pulled
            self.pulled += n
            piece = self.head[start : start + n]
            yield piece + bytes(n - len(piece))


def multipart_head(query: str, variables: dict[str, Any], boundary: str, filename: str) -> bytes:
    """The start of a multipart upload body up to the file's bytes (a PDF header)."""
    body = multipart_body(query, variables, {"variables.file": FilePart(b"%PDF-1.4\n")}, boundary)
    return body[: body.index(b"%PDF-1.4\n") + len(b"%PDF-1.4\n")].replace(
        b'filename="proof.pdf"', f'filename="{filename}"'.encode()
    )


@dataclass
class SpoolWatch:
    """Every temporary file Starlette's form parser opened for file parts."""

    opened: list[Any] = field(default_factory=list)

    @property
    def all_closed(self) -> bool:
        return all(spool.closed for spool in self.opened)


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpoolWatch]:
    watch = SpoolWatch()
    original = formparsers.SpooledTemporaryFile

    def tracked(*args: Any, **kwargs: Any) -> Any:
        spool = original(*args, **kwargs)
        watch.opened.append(spool)
        return spool

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", tracked)
    yield watch


async def external_certification(course_ids: list[int] | None = None, **policy_config: Any) -> str:
    """A PUBLISHED EXTERNAL certification (external-evidence) and its global ID."""
    pk = await make_certification(
        "Cloud Architect",
        course_ids or [],
        kind=CertificationKind.EXTERNAL,
        issuer="Example Board",
        policy_config=policy_config or None,
    )
    return encode_id("Certification", pk)


async def evidence_rows() -> int:
    return await Evidence.all().count()


SUBMIT = """
mutation Submit($cert: ID!, $file: Upload!, $completedOn: Date, $note: String) {
  submitEvidence(certificationId: $cert, file: $file, completedOn: $completedOn, note: $note) {
    evidence {
      id status filename contentType sizeBytes sha256 submittedAt completedOn note
      downloadUrl reviewedAt reviewComment reviewedBy { name }
      enrollment { id status learner { name } awards { awardedAt } }
    }
    errors { code message field }
  }
}
"""

REVIEW = """
mutation Review($id: ID!, $decision: ReviewDecision!, $comment: String) {
  reviewEvidence(evidenceId: $id, decision: $decision, comment: $comment) {
    evidence {
      id status reviewedAt reviewComment reviewedBy { name }
      enrollment { status completedAt awards { awardedAt } }
    }
    errors { code message field }
  }
}
"""
