"""Fixtures for the webhook tests: the API tests' app, client and world, and a real HTTP
receiver (a Starlette app on uvicorn, in this process, on 127.0.0.1) that verifies every
request's signature with the `standardwebhooks` package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest_asyncio
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gql.events import CertificationRef, Event, Person, Started
from tests.api.conftest import (  # noqa: F401 (fixtures)
    app,
    graphql_client,
    http,
    settings,
    world,
)
from tests.local_server import serving


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # the signature checked out against the receiver's secret
    payload: Any  # what verify() returned: the parsed JSON body


@dataclass
class Receiver:
    """A webhook receiver. `/hook` answers 204, `/fail` 500, `/moved` a 302 to /hook, `/slow`
    after `slow_seconds`; each request is recorded, verified with `secret`."""

    port: int = 0
    secret: str | None = None
    slow_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool, Any]:
        if self.secret is None:
            return False, None
        try:
            return True, Verifier(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False, None

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified, payload = self.verify(body, headers)
        self.received.append(Received(request.url.path, headers, body, verified, payload))
        path = request.url.path
        if path == "/fail":
            return Response("no", status_code=500)
        if path == "/moved":
            return Response(status_code=302, headers={"Location": self.url("/hook")})
        if path == "/slow":
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=204)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    paths = ["/hook", "/fail", "/moved", "/slow"]
    receiver_app = Starlette(routes=[Route(p, found.endpoint, methods=["POST"]) for p in paths])
    async with serving(receiver_app, "the receiver") as port:
        found.port = port
        yield found


def an_event(name: str = "Léa Lærner ✓", event_id: UUID | None = None) -> Event:
    """An event as the dispatcher hands it to the sender (non-ASCII names on purpose)."""
    return Event(
        id=event_id or uuid4(),
        type=Started.TYPE,
        occurred_at=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        actor_id=None,
        data=Started(
            learner=Person(id="VXNlcjox", name=name, email="lea@example.com"),
            enrollment_id="RW5yb2xsbWVudDox",
            certification=CertificationRef(id="Q2VydGlmaWNhdGlvbjox", name="Cloud «Basics»"),
            due_at=None,
        ),
    )


def body_of(event: Event) -> Any:
    return json.loads(event.body_json())
