"""The guards of gql.http in process: the token bucket, the multipart scanner, and the
middlewares inside the real app (request timeout, rate limit, multipart refusals)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql.app import create_app
from gql.domain import courses as courses_module
from gql.domain import unit as unit_module
from gql.http.multipart import MultipartRefused, MultipartScanner, multipart_boundary
from gql.http.ratelimit import TokenBucketLimiter
from gql.http.timeout import RequestTimeoutMiddleware
from gql.settings import Settings, SettingsError, load_settings
from gql.store import models
from tests.api.conftest import World, world

__all__ = ["world"]  # a fixture, imported for this module

VIEWER = "{ viewer { id } }"
CREATE_COURSE = (
    "mutation($name: String!) { createCourse(input: {name: $name}) "
    "{ course { id } errors { code } } }"
)


# -- the token bucket --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_grants_its_burst_then_refuses_until_it_refills() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)  # one token a second
    clock.now += 0.5
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("b") == 0.0  # other keys have their own bucket


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=600, burst=2, clock=clock)
    clock.now += 3600
    assert [limiter.acquire("a") > 0 for _ in range(3)] == [False, False, True]


def test_the_limiter_keeps_a_bounded_number_of_buckets() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=1, max_keys=100, clock=clock)
    granted = [limiter.acquire(f"key-{i}") == 0.0 for i in range(1000)]
    assert len(limiter) == 100
    # Every remembered bucket is in debt: the 900 newcomers wait, nobody is forgotten.
    assert granted == [True] * 100 + [False] * 900
    assert limiter.acquire("key-0") > 0
    clock.now += 1.0  # the oldest buckets have refilled: they can be forgotten for newcomers
    assert limiter.acquire("newcomer") == 0.0
    assert len(limiter) == 100


def test_a_flood_of_new_keys_cannot_give_a_throttled_caller_a_new_burst() -> None:
    """Issue 11: 60 junk keys evicted a throttled token's bucket (50 remembered keys)."""
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=20, max_keys=50, clock=clock)
    while limiter.acquire("user:1") == 0.0:
        pass
    for i in range(60):
        limiter.acquire(f"address:10.0.0.{i}")
        clock.now += 0.01
    assert limiter.acquire("user:1") > 0  # still throttled


def test_a_costly_request_is_paid_for_by_the_next_ones() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=10, clock=clock)
    assert limiter.acquire("user:1") == 0.0
    limiter.charge("user:1", 25)  # 9 left, 25 charged: 16 in debt
    assert limiter.acquire("user:1") == pytest.approx(17.0)
    clock.now += 17
    assert limiter.acquire("user:1") == 0.0


def test_guard_settings_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "CERTGRAPH_REQUEST_TIMEOUT": "2.5",
            "CERTGRAPH_RATE_LIMIT_PER_MINUTE": "120",
            "CERTGRAPH_RATE_LIMIT_BURST": "10",
            "CERTGRAPH_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2",
            "CERTGRAPH_MAX_QUERY_COST": "5000",
        }
    )
    assert (settings.request_timeout_seconds, settings.rate_limit_per_minute) == (2.5, 120)
    assert settings.rate_limit_burst == 10
    assert settings.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert settings.max_query_cost == 5000
    assert load_settings({}) == Settings()
    assert Settings().trusted_proxies == []
    with pytest.raises(SettingsError, match="CERTGRAPH_RATE_LIMIT_BURST"):
        load_settings({"CERTGRAPH_RATE_LIMIT_BURST": "0"})
    with pytest.raises(SettingsError, match="CERTGRAPH_REQUEST_TIMEOUT"):
        load_settings({"CERTGRAPH_REQUEST_TIMEOUT": "soon"})


# -- the multipart scanner -----------------------------------------------------------------


def multipart_body(boundary: str, parts: int, preamble: bytes = b"") -> bytes:
    body = preamble
    for i in range(parts):
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nvalue {i}\r\n'
        ).encode()
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 16, 64, 4096])
def test_the_scanner_counts_parts_whatever_the_chunking(chunk_size: int) -> None:
    body = multipart_body("b0undary", 12)
    scanner = MultipartScanner(b"b0undary", max_parts=16)
    for start in range(0, len(body), chunk_size):
        scanner.feed(body[start : start + chunk_size])
    assert scanner.parts == 12


@pytest.mark.parametrize("chunk_size", [1, 5, 4096])
def test_the_scanner_refuses_one_part_too_many(chunk_size: int) -> None:
    body = multipart_body("xyz", 17)
    scanner = MultipartScanner(b"xyz", max_parts=16)
    with pytest.raises(MultipartRefused, match="at most 16 parts"):
        for start in range(0, len(body), chunk_size):
            scanner.feed(body[start : start + chunk_size])


def test_the_scanner_refuses_a_long_preamble_early() -> None:
    scanner = MultipartScanner(b"xyz", max_preamble=1024)
    scanner.feed(b"\r\n" * 500)  # within the allowance
    with pytest.raises(MultipartRefused, match="no multipart boundary"):
        scanner.feed(b"\r\n" * 500)
    late = MultipartScanner(b"xyz", max_preamble=1024)
    with pytest.raises(MultipartRefused, match="preamble is longer"):
        late.feed(b" " * 1030 + b"--xyz\r\n")


def test_boundaries_are_checked() -> None:
    assert multipart_boundary("multipart/form-data; boundary=abc123") == b"abc123"
    assert multipart_boundary('multipart/form-data; boundary="a b:c"') == b"a b:c"
    assert multipart_boundary("multipart/form-data") is None
    assert multipart_boundary("multipart/form-data; boundary=" + "a" * 71) is None
    assert multipart_boundary("multipart/form-data; boundary=bad\x00") is None


# -- the guards in the app -------------------------------------------------------------------


@pytest_asyncio.fixture
async def client_for(db: None) -> AsyncIterator[Any]:
    """Clients of apps built with these guard settings, given as CERTGRAPH_* values."""
    clients: list[httpx.AsyncClient] = []

    def make(**env: str) -> httpx.AsyncClient:
        settings = load_settings({f"CERTGRAPH_{name.upper()}": v for name, v in env.items()})
        app = create_app(settings)
        assert any(m.cls is RequestTimeoutMiddleware for m in app.user_middleware)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    world: World, client_for: Any
) -> None:
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="2")
    answers = [
        await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.learner.token))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.headers["retry-after"] == "10"  # 6 a minute: one every 10 s
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [{"code": "RATE_LIMITED", "retryAfter": 10}]
    # Another token is not affected, nor are the probes.
    other = await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.other.token))
    assert other.status_code == 200
    assert (await http.get("/healthz")).status_code == 200


async def test_rate_limiting_off_lets_a_burst_through(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="0", rate_limit_burst="1")
    answers = [
        await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.learner.token))
        for _ in range(20)
    ]
    assert {a.status_code for a in answers} == {200}


async def test_a_slow_request_times_out_rolls_back_and_frees_the_database(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slowness is injected here, in the test process: an audit write that stalls while
    its transaction holds the write lock (the case a timeout must end)."""
    http = client_for(request_timeout="0.5", rate_limit_per_minute="0")
    real_audit = unit_module.Unit.audit
    stalled = asyncio.Event()

    async def stalling_audit(self: Any, *args: Any, **kwargs: Any) -> None:
        await real_audit(self, *args, **kwargs)
        stalled.set()
        await asyncio.sleep(30)

    monkeypatch.setattr(unit_module.Unit, "audit", stalling_audit)
    before = (await models.Course.all().count(), await models.AuditEvent.all().count())
    started = time.monotonic()
    response = await http.post(
        "/graphql",
        json={"query": CREATE_COURSE, "variables": {"name": "Never kept"}},
        headers=bearer(world.admin.token),
    )
    elapsed = time.monotonic() - started
    assert stalled.is_set()
    assert response.status_code == 504
    assert response.json()["errors"][0]["extensions"] == {
        "code": "REQUEST_TIMEOUT",
        "timeoutSeconds": 0.5,
        "changesKept": False,
    }
    assert elapsed < 5
    # Rolled back: neither the course nor its audit row was kept ...
    assert (await models.Course.all().count(), await models.AuditEvent.all().count()) == before
    # ... and the write lock is free: the next write goes through at once.
    monkeypatch.setattr(unit_module.Unit, "audit", real_audit)
    started = time.monotonic()
    ok = await http.post(
        "/graphql",
        json={"query": CREATE_COURSE, "variables": {"name": "Kept"}},
        headers=bearer(world.admin.token),
    )
    assert ok.status_code == 200 and ok.json()["data"]["createCourse"]["errors"] == []
    assert time.monotonic() - started < 2


async def test_a_request_cut_short_after_its_commit_says_its_change_was_kept(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client told "nothing was kept" would repeat a write that happened: when the use case
    committed before the timeout, the answer says the change was saved."""
    http = client_for(request_timeout="0.5", rate_limit_per_minute="0")
    real_create = courses_module.create_course

    async def create_then_stall(*args: Any, **kwargs: Any) -> Any:
        created = await real_create(*args, **kwargs)  # committed
        await asyncio.sleep(30)
        return created

    monkeypatch.setattr(courses_module, "create_course", create_then_stall)
    response = await http.post(
        "/graphql",
        json={"query": CREATE_COURSE, "variables": {"name": "Kept before the cut"}},
        headers=bearer(world.admin.token),
    )
    assert response.status_code == 504
    error = response.json()["errors"][0]
    assert error["extensions"] == {
        "code": "REQUEST_TIMEOUT",
        "timeoutSeconds": 0.5,
        "changesKept": True,
    }
    assert "after its change was saved; do not repeat it" in error["message"]
    assert await models.Course.filter(name="Kept before the cut").count() == 1


MULTIPART_ABUSE = {
    "no boundary": ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),
    "a boundary of 71 characters": (
        "multipart/form-data; boundary=" + "b" * 71,
        multipart_body("b" * 71, 1),
    ),
    "a 2 MiB preamble": (
        "multipart/form-data; boundary=xyz",
        multipart_body("xyz", 2, preamble=b"\r\n" * (1024 * 1024)),
    ),
    "a thousand parts": ("multipart/form-data; boundary=xyz", multipart_body("xyz", 1000)),
}


@pytest.mark.parametrize("case", sorted(MULTIPART_ABUSE))
async def test_abusive_multipart_bodies_are_refused_with_400(
    world: World, client_for: Any, case: str
) -> None:
    http = client_for(rate_limit_per_minute="0")
    content_type, body = MULTIPART_ABUSE[case]
    before = await models.AuditEvent.all().count()
    response = await http.post(
        "/graphql",
        content=body,
        headers={**bearer(world.admin.token), "Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "MULTIPART_REFUSED"
    assert await models.AuditEvent.all().count() == before


async def test_a_well_formed_multipart_request_still_runs(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="0")
    response = await http.post(
        "/graphql",
        data={"operations": '{"query": "{ viewer { id } }"}', "map": "{}"},
        files={"unused": ("a.txt", b"x", "text/plain")},
        headers=bearer(world.admin.token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"]["id"] == world.admin.id


# -- bodies the fuzzer found crashing the parser (500s before gql/api/view.py handled them) --

MALFORMED_JSON_BODIES = [b"null", b"1", b'"query"', b"true", b"\xd8\x0c\xdf\x97", b'{"a": "\xa5"}']


@pytest.mark.parametrize("body", MALFORMED_JSON_BODIES)
async def test_a_json_body_that_is_no_operation_is_a_400(
    world: World, client_for: Any, body: bytes
) -> None:
    http = client_for(rate_limit_per_minute="0")
    response = await http.post(
        "/graphql",
        content=body,
        headers={**bearer(world.admin.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text


MALFORMED_MULTIPART_FIELDS = {
    "operations null": ("null", '{"0": ["variables.file"]}'),
    "map a list": ('{"query": "{ viewer { id } }"}', '["variables.file"]'),
    "map paths not a list": ('{"query": "{ viewer { id } }", "variables": {}}', '{"0": 5}'),
    "map path into a string": ('{"query": "x", "variables": {"a": "b"}}', '{"0": ["query.x.y"]}'),
    "map index not a number": (
        '{"query": "x", "variables": {"l": [1]}}',
        '{"0": ["variables.l.x"]}',
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART_FIELDS))
async def test_a_multipart_request_off_the_spec_is_a_400(
    world: World, client_for: Any, case: str
) -> None:
    http = client_for(rate_limit_per_minute="0")
    operations, file_map = MALFORMED_MULTIPART_FIELDS[case]
    response = await http.post(
        "/graphql",
        data={"operations": operations, "map": file_map},
        files={"0": ("a.pdf", b"%PDF-1.4", "application/pdf")},
        headers=bearer(world.admin.token),
    )
    assert response.status_code == 400, response.text


@pytest.mark.slow
@pytest.mark.database_independent  # refused before any database is opened
def test_serve_refuses_a_bad_guard_setting_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTGRAPH_")}
    env["CERTGRAPH_REQUEST_TIMEOUT"] = "soon"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "certgraph"), "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("certgraph serve: CERTGRAPH_REQUEST_TIMEOUT:")
    assert len(completed.stderr.splitlines()) == 1


async def test_the_form_parsers_own_limits_are_not_enough_so_the_scanner_stays() -> None:
    """strawberry reads uploads with Starlette's `request.form()` and its defaults (1000
    files, 1000 fields): 900 file parts are all parsed and spooled before anything refuses."""
    from starlette.requests import Request

    boundary = "xyz"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; filename="f{i}.pdf"'
            f"\r\n\r\nx\r\n".encode()
            for i in range(900)
        )
        + f"--{boundary}--\r\n".encode()
    )
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())],
    }
    request = Request(scope, receive)
    async with request.form() as form:
        assert len(form) == 900  # every part parsed and spooled
    scanner = MultipartScanner(boundary.encode())
    with pytest.raises(MultipartRefused, match="at most 16 parts"):
        scanner.feed(body)
