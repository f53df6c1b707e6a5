"""The webhook sender against a real HTTP receiver on 127.0.0.1: Standard Webhooks signatures
that the `standardwebhooks` package verifies, 2xx delivered, anything else an error with its
status, redirects not followed, a timeout, and the address policy at send time."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest

from gql.webhooks import SendResult
from gql.webhooks.sender import HttpWebhookSender
from gql.webhooks.signing import new_secret
from tests.webhooks.conftest import Receiver, an_event, body_of


@pytest.fixture
def secret(receiver: Receiver) -> str:
    receiver.secret = new_secret()
    return receiver.secret


async def test_every_request_is_signed_so_standardwebhooks_verifies_it(
    receiver: Receiver, secret: str
) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    events = [an_event(), an_event(name="Otto"), an_event(name="名前 😀")]
    try:
        results = [await sender.send(receiver.url(), secret, event) for event in events]
    finally:
        await sender.aclose()
    assert results == [SendResult(204, None)] * 3
    assert len(receiver.received) == 3
    for event, got in zip(events, receiver.received, strict=True):
        assert got.verified, got.headers
        assert got.payload == body_of(event) == event.body()
        assert got.body == event.body_json().encode("utf-8")
        assert got.headers["webhook-id"] == str(event.id)
        assert got.headers["content-type"] == "application/json"
        assert got.headers["webhook-signature"].startswith("v1,")
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
        assert secret not in str(got.headers)


async def test_the_same_event_sent_again_carries_the_same_id_and_verifies(
    receiver: Receiver, secret: str
) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    event = an_event()
    try:
        first = await sender.send(receiver.url(), secret, event)
        second = await sender.send(receiver.url(), secret, event)
    finally:
        await sender.aclose()
    assert first == second == SendResult(204, None)
    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert ids == [str(event.id)] * 2
    assert all(got.verified for got in receiver.received)


async def test_a_signature_does_not_verify_with_another_secret(receiver: Receiver) -> None:
    receiver.secret = new_secret()
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    try:
        result = await sender.send(receiver.url(), new_secret(), an_event())
    finally:
        await sender.aclose()
    assert result == SendResult(204, None)  # the receiver answers; it could not verify
    assert [got.verified for got in receiver.received] == [False]


async def test_an_error_status_fails_the_attempt_with_its_code(
    receiver: Receiver, secret: str
) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    try:
        result = await sender.send(receiver.url("/fail"), secret, an_event())
    finally:
        await sender.aclose()
    assert result == SendResult(500, "answered HTTP 500")


async def test_a_redirect_is_not_followed(receiver: Receiver, secret: str) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    try:
        result = await sender.send(receiver.url("/moved"), secret, an_event())
    finally:
        await sender.aclose()
    assert result.status_code == 302
    assert result.error is not None
    assert "redirects are not followed" in result.error
    assert receiver.url("/hook") in result.error
    assert [got.path for got in receiver.received] == ["/moved"]  # /hook never asked


async def test_a_slow_receiver_times_out(receiver: Receiver, secret: str) -> None:
    receiver.slow_seconds = 3.0
    sender = HttpWebhookSender(timeout_seconds=0.5, allow_private=True)
    started = time.monotonic()
    try:
        result = await sender.send(receiver.url("/slow"), secret, an_event())
    finally:
        await sender.aclose()
    elapsed = time.monotonic() - started
    assert result.status_code is None
    assert result.error == "no answer within 0.5 s (timed out)"
    assert elapsed < 2.0
    assert [got.path for got in receiver.received] == ["/slow"]


async def test_a_closed_port_is_an_error_without_status() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens there now
    sender = HttpWebhookSender(timeout_seconds=2, allow_private=True)
    try:
        result = await sender.send(f"http://127.0.0.1:{port}/hook", new_secret(), an_event())
    finally:
        await sender.aclose()
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("ConnectError")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_destination_is_refused_at_send_time(
    receiver: Receiver, secret: str, host: str
) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=False)
    try:
        result = await sender.send(receiver.url(host=host), secret, an_event())
    finally:
        await sender.aclose()
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("refused: ")
    assert "loopback address" in result.error
    assert receiver.received == []  # never connected


async def test_a_name_that_resolves_to_a_private_address_at_send_time_is_refused(
    receiver: Receiver, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name was public when the endpoint was created; now it resolves to
    a public address and a private one. Every address is checked, so it is refused."""
    loop = asyncio.get_running_loop()

    async def rebound(host: str, port: Any, **kwargs: Any) -> list[Any]:
        assert host == "hooks.example.test"
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET, stream, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, stream, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", rebound)
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=False)
    try:
        url = receiver.url(host="hooks.example.test")
        result = await sender.send(url, secret, an_event())
    finally:
        await sender.aclose()
    assert result.status_code is None
    assert result.error == (
        "refused: hooks.example.test resolves to 127.0.0.1, which is a loopback address: "
        "webhooks may not be sent there (CERTGRAPH_WEBHOOK_ALLOW_PRIVATE is off)"
    )
    assert receiver.received == []


async def test_the_connection_goes_to_the_address_checked_with_the_url_host(
    receiver: Receiver, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender resolves the name itself and connects to what it resolved (here the local
    receiver): the request still names the URL's host."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def resolver(host: str, port: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    try:
        result = await sender.send(receiver.url(host="hooks.example.test"), secret, an_event())
    finally:
        await sender.aclose()
    assert result == SendResult(204, None)
    assert asked == ["hooks.example.test"]
    assert receiver.received[0].headers["host"] == f"hooks.example.test:{receiver.port}"
    assert receiver.received[0].verified


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("https://user:pw@93.184.215.14/hook", "user name or password"),
        ("http:///nohost", "must name a host"),
    ],
)
async def test_a_url_that_is_not_one_is_refused_without_a_request(url: str, reason: str) -> None:
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    try:
        result = await sender.send(url, new_secret(), an_event())
    finally:
        await sender.aclose()
    assert result.status_code is None
    assert result.error is not None and reason in result.error


async def test_the_secret_is_in_no_error_and_no_log_line(
    receiver: Receiver, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = HttpWebhookSender(timeout_seconds=0.5, allow_private=False)
    lenient = HttpWebhookSender(timeout_seconds=0.5, allow_private=True)
    try:
        results = [
            await sender.send(receiver.url(), secret, an_event()),
            await lenient.send(receiver.url("/fail"), secret, an_event()),
            await lenient.send(receiver.url("/moved"), secret, an_event()),
            await lenient.send(receiver.url("/slow"), secret, an_event()),
            await lenient.send(receiver.url(), "whsec_", an_event()),
        ]
    finally:
        await sender.aclose()
        await lenient.aclose()
    errors = [result.error for result in results]
    assert all(errors), errors
    assert errors[-1] == "the endpoint's signing secret is not a valid whsec_ secret"
    key = secret.removeprefix("whsec_")
    for text in [*map(str, errors), *(record.getMessage() for record in caplog.records)]:
        assert key not in text
