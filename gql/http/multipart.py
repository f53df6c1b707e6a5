"""Refuse abusive multipart bodies while they stream in, before the form parser runs:
MULTIPART_REFUSED (400) for a body without a usable boundary, with a preamble longer than any
client sends, or with more parts than a GraphQL upload needs."""

from __future__ import annotations

import asyncio
import logging
import re

from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.errors import language_of, send_error
from gql.http.scope import is_guarded
from gql.http.timeout import ResponseTracker
from gql.i18n import t

log = logging.getLogger("certgraph.guards")

MULTIPART_REFUSED_CODE = "MULTIPART_REFUSED"

# A GraphQL multipart request (graphql-multipart-request-spec) is `operations`, `map` and one
# part per file; every mutation of the contract takes one file.
MAX_MULTIPART_PARTS = 16
# Clients start the body with the first boundary; RFC 2046 allows a preamble nobody sends.
MAX_MULTIPART_PREAMBLE_BYTES = 1024
# After a refusal the rest of the body is read and dropped (so the client, still sending,
# gets to read the 400) for at most this long and this much; then the connection is closed.
DRAIN_SECONDS = 5.0
DRAIN_MAX_BYTES = 64 * 1024 * 1024
# RFC 2046 boundary: 1..70 characters of this set, not ending in a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class MultipartRefused(Exception):
    """Raised from the wrapped `receive` when the body breaks a multipart rule; `reason` is
    told in the request's language."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MultipartScanner:
    """Counts delimiters of a multipart body as it streams past, with bounded memory.

    Only the last len(delimiter) - 1 bytes are carried between chunks, enough to find a
    delimiter split across two chunks and never to count one twice.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        max_parts: int = MAX_MULTIPART_PARTS,
        max_preamble: int = MAX_MULTIPART_PREAMBLE_BYTES,
    ) -> None:
        self.delimiter = b"--" + boundary
        self.max_parts = max_parts
        self.max_preamble = max_preamble
        self.received = 0
        self.delimiters = 0
        self._tail = b""
        self._first_found = False

    @property
    def parts(self) -> int:
        # n delimiters enclose n - 1 parts (the last one is the close delimiter)
        return max(0, self.delimiters - 1)

    def feed(self, chunk: bytes) -> None:
        window = self._tail + chunk
        window_start = self.received - len(self._tail)
        if not self._first_found:
            at = window.find(self.delimiter)
            if at >= 0:
                self._first_found = True
                if window_start + at > self.max_preamble:
                    raise MultipartRefused(
                        t(
                            "the multipart preamble is longer than {max_bytes} bytes",
                            max_bytes=self.max_preamble,
                        )
                    )
            elif self.received + len(chunk) > self.max_preamble + len(self.delimiter):
                raise MultipartRefused(
                    t(
                        "no multipart boundary within the first {max_bytes} bytes",
                        max_bytes=self.max_preamble,
                    )
                )
        self.delimiters += window.count(self.delimiter)
        if self.parts > self.max_parts:
            raise MultipartRefused(
                t("a multipart body may have at most {max_parts} parts", max_parts=self.max_parts)
            )
        self.received += len(chunk)
        self._tail = window[-(len(self.delimiter) - 1) :]


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data content type; None when it has no valid one."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary or not _BOUNDARY.fullmatch(boundary):
        return None
    return boundary


class MultipartGuardMiddleware:
    """Refuse abusive multipart bodies while they stream in, before the form parser runs.

    python-multipart and Starlette already bound part headers, fields (1000) and non-file
    parts (1 MiB), but they still parse a megabyte preamble or a thousand parts before
    refusing. GraphQL uploads need a handful of parts and no preamble, so anything else is
    refused at the first chunk that shows it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_parts: int = MAX_MULTIPART_PARTS,
        max_preamble: int = MAX_MULTIPART_PREAMBLE_BYTES,
    ) -> None:
        self.app = app
        self.max_parts = max_parts
        self.max_preamble = max_preamble

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_guarded(scope) or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        content_type = Headers(scope=scope).get("content-type", "")
        if not content_type.lower().startswith("multipart/"):
            await self.app(scope, receive, send)
            return
        boundary = multipart_boundary(content_type)
        if boundary is None:
            await self._refuse(scope, receive, send, t("the multipart body has no valid boundary"))
            return
        scanner = MultipartScanner(
            boundary, max_parts=self.max_parts, max_preamble=self.max_preamble
        )

        async def scanned_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                scanner.feed(message.get("body", b""))
            return message

        tracker = ResponseTracker(send)
        try:
            await self.app(scope, scanned_receive, tracker)
        except MultipartRefused as refusal:
            if tracker.started:
                raise
            await self._refuse(scope, receive, send, refusal.reason)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        log.info("multipart request refused: %s", reason)
        await _drain(receive)
        await send_error(send, 400, MULTIPART_REFUSED_CODE, reason, language=language_of(scope))


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the body, within DRAIN_SECONDS and DRAIN_MAX_BYTES."""
    dropped = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return
