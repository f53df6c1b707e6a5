"""The webhook sender the dispatcher calls (gql.domain.dispatcher.WebhookSender): one signed
POST per attempt, as docs/webhooks.md describes it.

The body is the event's JSON (Event.body_json), signed per the Standard Webhooks
specification. A 2xx answer is delivered; anything else fails the attempt (the dispatcher
retries it): another status, a redirect (never followed), a refused address, a connection
error, or no answer within the timeout, which bounds the whole request from resolving the
host to the answer's status line. The answer's body is never read. The secret is never
logged, nor put in an error.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from gql.events import Event
from gql.webhooks import SendResult
from gql.webhooks.addresses import AddressRefused, GuardedBackend, WebhookUrlError, parse_url
from gql.webhooks.signing import signature_headers
from gql.webhooks.transport import PoolTransport

USER_AGENT = "certgraph-webhooks"
# How much of a redirect's Location an error repeats.
_SHOWN_LOCATION_CHARS = 200


class HttpWebhookSender:
    """Sends webhook requests over one pooled httpx client (made on first use, on the
    running loop); `aclose` when done."""

    def __init__(self, timeout_seconds: float, allow_private: bool) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=PoolTransport(GuardedBackend(allow_private=self.allow_private)),
                timeout=httpx.Timeout(self.timeout_seconds),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def send(self, url: str, secret: str, event: Event) -> SendResult:
        """POST the event to `url`, signed with `secret`: error None when delivered."""
        try:
            target = parse_url(url)
        except WebhookUrlError as exc:
            return SendResult(None, f"refused: {exc}")
        body = event.body_json()
        try:
            headers = signature_headers(secret, str(event.id), body, int(time.time()))
        except ValueError as exc:
            return SendResult(None, str(exc))
        headers["Content-Type"] = "application/json"
        try:
            async with (
                asyncio.timeout(self.timeout_seconds),
                self._http().stream(
                    "POST", target, content=body.encode("utf-8"), headers=headers
                ) as response,
            ):
                status = response.status_code
                location = response.headers.get("location")
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(None, f"no answer within {self.timeout_seconds:g} s (timed out)")
        except AddressRefused as exc:
            return SendResult(None, f"refused: {exc}")
        except httpx.HTTPError as exc:
            detail = str(exc) or "failed"
            return SendResult(None, f"{type(exc).__name__}: {detail}")
        if 200 <= status < 300:
            return SendResult(status, None)
        if 300 <= status < 400:
            to = ""
            if location:
                shown = location[:_SHOWN_LOCATION_CHARS]
                to = f" to {shown}{'…' if len(location) > _SHOWN_LOCATION_CHARS else ''}"
            return SendResult(
                status,
                f"answered HTTP {status}, a redirect{to}: redirects are not followed "
                "(give the webhook its final URL)",
            )
        return SendResult(status, f"answered HTTP {status}")

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
