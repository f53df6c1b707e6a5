"""Guards in front of every route: a request timeout, per-token rate limiting, and a
multipart scanner that refuses abusive upload bodies before the form parser spends time on
them. Plain ASGI middleware (no BaseHTTPMiddleware), so streaming bodies stay streamed.

Refusals are GraphQL-shaped JSON (``{"data": null, "errors": [{"message", "extensions":
{"code"}}]}``), so a client handles them like any other error of the API:

- REQUEST_TIMEOUT, HTTP 504: the request took longer than CERTGRAPH_REQUEST_TIMEOUT seconds
  (receiving the body included). Its task is cancelled, so an open transaction rolls back
  and the database connection is free for the next request.
- RATE_LIMITED, HTTP 429 with Retry-After: the caller's token bucket is empty.
- MULTIPART_REFUSED, HTTP 400: a multipart body without a usable boundary, with a preamble
  longer than any client sends, or with more parts than a GraphQL upload needs.

The rate limiter's buckets live in the worker process (see docs/reliability.md): with N
workers or N instances a token may make up to N times the configured rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.settings import SettingsError

log = logging.getLogger("certgraph.guards")

REQUEST_TIMEOUT_CODE = "REQUEST_TIMEOUT"
RATE_LIMITED_CODE = "RATE_LIMITED"
MULTIPART_REFUSED_CODE = "MULTIPART_REFUSED"

# Probes must answer while a token is throttled or a request is stuck.
UNGUARDED_PATHS = frozenset({"/healthz", "/readyz"})

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


class GuardSettings(BaseModel):
    """CERTGRAPH_REQUEST_TIMEOUT and CERTGRAPH_RATE_LIMIT_*; 0 turns a guard off."""

    request_timeout_seconds: float = Field(default=30.0, ge=0)
    rate_limit_per_minute: float = Field(default=600.0, ge=0)
    rate_limit_burst: int = Field(default=120, ge=1)
    rate_limit_max_keys: int = Field(default=100_000, ge=1)


_GUARD_ENV = {
    "request_timeout_seconds": "CERTGRAPH_REQUEST_TIMEOUT",
    "rate_limit_per_minute": "CERTGRAPH_RATE_LIMIT_PER_MINUTE",
    "rate_limit_burst": "CERTGRAPH_RATE_LIMIT_BURST",
    "rate_limit_max_keys": "CERTGRAPH_RATE_LIMIT_MAX_KEYS",
}


def load_guard_settings(environ: Mapping[str, str] | None = None) -> GuardSettings:
    """Read the guards' variables; an invalid value raises SettingsError naming the variable."""
    env = os.environ if environ is None else environ
    raw = {field: env[var] for field, var in _GUARD_ENV.items() if env.get(var)}
    try:
        return GuardSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_GUARD_ENV.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(problems) from None


def guard_middleware(settings: GuardSettings | None = None) -> list[Middleware]:
    """The guards in the order they wrap the app: timeout outermost, so it covers the rest."""
    settings = settings or load_guard_settings()
    return [
        Middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds),
        Middleware(
            RateLimitMiddleware,
            limiter=TokenBucketLimiter(
                per_minute=settings.rate_limit_per_minute,
                burst=settings.rate_limit_burst,
                max_keys=settings.rate_limit_max_keys,
            ),
        ),
        Middleware(MultipartGuardMiddleware),
    ]


# -- shared helpers ----------------------------------------------------------------------


def _guarded(scope: Scope) -> bool:
    return scope["type"] == "http" and scope.get("path") not in UNGUARDED_PATHS


async def send_graphql_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> None:
    body = json.dumps(
        {
            "data": None,
            "errors": [{"message": message, "extensions": {**(extensions or {}), "code": code}}],
        },
        separators=(",", ":"),
    ).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class _ResponseTracker:
    """Wraps `send` to know whether the response has started (then no other can be sent)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


# -- request timeout ---------------------------------------------------------------------


class RequestTimeoutMiddleware:
    """Cancel a request that takes longer than `seconds` and answer 504 REQUEST_TIMEOUT.

    uvicorn has no per-request timeout (only keep-alive): without this a request stuck on a
    slow client or a long transaction holds its connection, and on SQLite the process's one
    database connection, for as long as it likes. Cancellation runs the request's cleanup:
    an open transaction is rolled back.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.seconds or not _guarded(scope):
            await self.app(scope, receive, send)
            return
        tracker = _ResponseTracker(send)
        try:
            async with asyncio.timeout(self.seconds) as deadline:
                await self.app(scope, receive, tracker)
        except TimeoutError:
            if not deadline.expired():
                raise  # a TimeoutError of the request's own, not ours
            log.warning(
                "request %s %s cancelled after %.3g s (CERTGRAPH_REQUEST_TIMEOUT)",
                scope.get("method"),
                scope.get("path"),
                self.seconds,
            )
            if tracker.started:
                return  # too late for an error response; the server closes the connection
            await send_graphql_error(
                send,
                504,
                REQUEST_TIMEOUT_CODE,
                f"the request took longer than {self.seconds:g} s and was cancelled; "
                "nothing it was doing was kept",
                extensions={"timeoutSeconds": self.seconds},
            )


# -- rate limiting -----------------------------------------------------------------------


class TokenBucketLimiter:
    """Token buckets per key, in this process: `burst` requests at once, then `per_minute`.

    At most `max_keys` buckets are kept (least recently used forgotten first), so memory
    stays bounded whatever keys clients invent; a forgotten key starts again with a full
    bucket.
    """

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 when granted, else the seconds until one is free."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


def rate_limit_key(scope: Scope) -> str:
    """The caller: its bearer token (hashed: plain tokens are not kept), else its address."""
    authorization = Headers(scope=scope).get("authorization", "")
    match = _BEARER.match(authorization)
    if match:
        return "token:" + hashlib.sha256(match.group(1).encode()).hexdigest()
    client = scope.get("client")
    return "address:" + (str(client[0]) if client else "unknown")


class RateLimitMiddleware:
    """Refuse a caller whose bucket is empty: 429 RATE_LIMITED with Retry-After."""

    def __init__(self, app: ASGIApp, limiter: TokenBucketLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limiter.enabled or not _guarded(scope):
            await self.app(scope, receive, send)
            return
        wait = self.limiter.acquire(rate_limit_key(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        await send_graphql_error(
            send,
            429,
            RATE_LIMITED_CODE,
            f"too many requests for this token; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            extensions={"retryAfter": retry_after},
        )


# -- multipart -----------------------------------------------------------------------------


class MultipartRefused(Exception):
    """Raised from the wrapped `receive` when the body breaks a multipart rule."""


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
                        f"the multipart preamble is longer than {self.max_preamble} bytes"
                    )
            elif self.received + len(chunk) > self.max_preamble + len(self.delimiter):
                raise MultipartRefused(
                    f"no multipart boundary within the first {self.max_preamble} bytes"
                )
        self.delimiters += window.count(self.delimiter)
        if self.parts > self.max_parts:
            raise MultipartRefused(f"a multipart body may have at most {self.max_parts} parts")
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
        if not _guarded(scope) or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        content_type = Headers(scope=scope).get("content-type", "")
        if not content_type.lower().startswith("multipart/"):
            await self.app(scope, receive, send)
            return
        boundary = multipart_boundary(content_type)
        if boundary is None:
            await self._refuse(receive, send, "the multipart body has no valid boundary")
            return
        scanner = MultipartScanner(
            boundary, max_parts=self.max_parts, max_preamble=self.max_preamble
        )

        async def scanned_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                scanner.feed(message.get("body", b""))
            return message

        tracker = _ResponseTracker(send)
        try:
            await self.app(scope, scanned_receive, tracker)
        except MultipartRefused as refusal:
            if tracker.started:
                raise
            await self._refuse(receive, send, str(refusal))

    async def _refuse(self, receive: Receive, send: Send, reason: str) -> None:
        log.info("multipart request refused: %s", reason)
        await _drain(receive)
        await send_graphql_error(send, 400, MULTIPART_REFUSED_CODE, reason)


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


# -- access log ----------------------------------------------------------------------------

_SIGNATURE = re.compile(r"([?&]sig=)[^&\s]+")


class RedactSignatures(logging.Filter):
    """Hide the signature of signed download URLs in uvicorn's access log.

    A signed URL is a bearer credential for its file until it expires; logs outlive that and
    are read by more people than the files are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install RedactSignatures on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())
