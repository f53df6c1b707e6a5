"""A webhook receiver for the proof: a small HTTP/1.1 server on 127.0.0.1 in the test
process (asyncio streams, nothing else), logging every attempt it gets: its path, headers,
raw body, the status it answered and when.

What it answers is the test's to set at any moment: `status` (e.g. 503 while "down"),
`delay_seconds` (a slow receiver holds each request that long before answering). Every
answer closes its connection, so each attempt is one connection and one log entry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

_REASONS = {200: "OK", 204: "No Content", 503: "Service Unavailable"}


@dataclass
class Attempt:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # what the receiver answered
    received_at: float  # time.monotonic() when the request was in
    answered_at: float = 0.0

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    status: int = 204
    delay_seconds: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):  # requests still held (a slow receiver)
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the sender gave up (its timeout) or went away
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        _, path, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        attempt = Attempt(path, headers, body, self.status, time.monotonic())
        self.attempts.append(attempt)  # logged as it arrives, with what it will be answered
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            reason = _REASONS.get(attempt.status, "Whatever")
            writer.write(
                f"HTTP/1.1 {attempt.status} {reason}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            attempt.answered_at = time.monotonic()
        finally:
            self.in_flight -= 1

    # -- reading the log ---------------------------------------------------------------------

    def accepted(self, path: str | None = None) -> list[Attempt]:
        """The attempts answered 2xx (answered: a slow receiver's held ones are not yet)."""
        return [
            a
            for a in self.attempts
            if 200 <= a.status < 300 and a.answered_at and path in (None, a.path)
        ]

    def accepted_ids(self, path: str | None = None) -> Counter[str]:
        return Counter(a.webhook_id for a in self.accepted(path))

    async def wait_for_accepted(
        self,
        count: int,
        path: str | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> list[Attempt]:
        """The accepted attempts once there are `count`, or what there is after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.accepted(path)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)


def verify(secret: str, attempt: Attempt) -> dict[str, Any]:
    """The attempt's event, once its signature checks out twice: with the `standardwebhooks`
    package (as a receiver would), and by hand from the specification (HMAC-SHA256 keyed by
    the secret's bytes over "<webhook-id>.<webhook-timestamp>.<body>", base64, "v1,").
    WebhookVerificationError when either fails."""
    payload: dict[str, Any] = Webhook(secret).verify(attempt.body, attempt.headers)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{attempt.headers['webhook-id']}.{attempt.headers['webhook-timestamp']}.".encode()
    expected = base64.b64encode(hmac.digest(key, signed + attempt.body, hashlib.sha256)).decode()
    offered = [
        signature.split(",", 1)[1]
        for signature in attempt.headers["webhook-signature"].split(" ")
        if signature.startswith("v1,")
    ]
    if not any(hmac.compare_digest(expected, o) for o in offered):
        raise WebhookVerificationError("the v1 signature is not the specification's HMAC")
    return payload
