"""Rate limits counted in Redis (CERTGRAPH_REDIS_URL), against the real Redis on
127.0.0.1:6379: apps sharing it share each caller's budget, a 429's Retry-After is Redis's
answer, and a Redis that is away or slow lets requests through with one warning a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from gql.app import create_app
from gql.http.guards import rate_limiter
from gql.http.ratelimit import TokenBucketLimiter
from gql.http.redis_limiter import RedisRateLimiter
from gql.settings import Settings, SettingsError, load_settings
from gql.store.models import Role
from tests.api.conftest import make_person
from tests.http.conftest import REDIS_URL, RedisRelay, free_port

VIEWER = {"query": "{ viewer { id } }"}
NOT_COUNTED = "rate limits not counted"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def clients(settings: Settings, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` apps built from the same settings (as instances of one deployment are), each
    with its own limiter, in this process on the `db` fixture's ORM."""
    apps = [create_app(settings) for _ in range(count)]
    opened = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for app in apps
    ]
    try:
        yield opened
    finally:
        for client, app in zip(opened, apps, strict=True):
            await client.aclose()
            await app.state.rate_limiter.aclose()  # ASGITransport runs no lifespan


def shared(data_dir: Path, prefix: str, **values: object) -> Settings:
    return Settings.model_validate(
        {"data_dir": data_dir, "redis_url": REDIS_URL, "redis_key_prefix": prefix, **values}
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "certgraph.guards" and r.levelno == logging.WARNING
    ]


async def test_two_apps_on_one_redis_share_the_budget(
    db: None, data_dir: Path, redis_prefix: str
) -> None:
    """Burst 5, refill 6 a minute (one token each 10 s, so none comes back during the
    test): 10 requests alternated between two apps get 5 answers and 5 refusals in all,
    where two apps counting in their own process grant all 10."""
    learner = await make_person("Lea Learner", Role.LEARNER)
    settings = shared(data_dir, redis_prefix, rate_limit_burst=5, rate_limit_per_minute=6)
    async with clients(settings, 2) as pair:
        answers = [
            await pair[i % 2].post("/graphql", json=VIEWER, headers=bearer(learner.token))
            for i in range(10)
        ]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 5
    assert {a.json()["errors"][0]["extensions"]["code"] for a in answers[5:]} == {"RATE_LIMITED"}
    # Both apps granted some and refused some: the count is one, not per app.
    assert [a.status_code for a in answers[0::2]] == [200, 200, 200, 429, 429]
    assert [a.status_code for a in answers[1::2]] == [200, 200, 429, 429, 429]

    per_process = settings.model_copy(update={"redis_url": None})
    async with clients(per_process, 2) as pair:
        alone = [
            await pair[i % 2].post("/graphql", json=VIEWER, headers=bearer(learner.token))
            for i in range(10)
        ]
    assert [a.status_code for a in alone] == [200] * 10  # two budgets of 5


async def test_retry_after_is_computed_from_the_redis_bucket(
    db: None, data_dir: Path, redis_prefix: str, redis: Redis
) -> None:
    """A bucket 29 tokens in debt at 60 a minute needs 30 s for the next token: the 429 says
    so, from the state in Redis (no app has seen this caller before)."""
    learner = await make_person("Lea Learner", Role.LEARNER)
    key = f"{redis_prefix}ratelimit:user:{learner.user.id}"
    seconds, micros = await redis.time()
    await redis.hset(key, mapping={"tokens": "-29", "at": str(seconds * 1000 + micros // 1000)})
    settings = shared(data_dir, redis_prefix, rate_limit_burst=5, rate_limit_per_minute=60)
    async with clients(settings, 1) as (http,):
        refused = await http.post("/graphql", json=VIEWER, headers=bearer(learner.token))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.json()["errors"][0]["extensions"]["retryAfter"] == 30


async def test_a_bucket_expires_once_it_would_be_full_again(
    db: None, data_dir: Path, redis_prefix: str, redis: Redis
) -> None:
    learner = await make_person("Lea Learner", Role.LEARNER)
    settings = shared(data_dir, redis_prefix, rate_limit_burst=5, rate_limit_per_minute=60)
    async with clients(settings, 1) as (http,):
        granted = await http.post("/graphql", json=VIEWER, headers=bearer(learner.token))
    assert granted.status_code == 200
    key = f"{redis_prefix}ratelimit:user:{learner.user.id}"
    assert float(await redis.hget(key, "tokens") or "nan") == pytest.approx(4.0, abs=0.1)
    # One token short at one a second: full in 1 s, kept 1 s more.
    assert 0 < await redis.pttl(key) <= 2000


async def test_a_costly_document_is_charged_in_redis_before_its_answer(
    db: None, data_dir: Path, redis_prefix: str
) -> None:
    """As in process (test_dos.py): a page costing 302 points takes 1 + 3 tokens of a burst of
    10, so the fourth is refused; here through two apps, alternately."""
    admin = await make_person("Ada Admin", Role.ADMIN)
    settings = shared(
        data_dir,
        redis_prefix,
        rate_limit_burst=10,
        rate_limit_per_minute=6,
        rate_limit_cost_unit=100,
    )
    page = {"query": "{ courses(first: 100) { edges { node { id name } } } }"}
    async with clients(settings, 2) as pair:
        statuses = [
            (await pair[i % 2].post("/graphql", json=page, headers=bearer(admin.token))).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_an_unreachable_redis_lets_requests_through_with_one_warning(
    db: None, data_dir: Path, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    learner = await make_person("Lea Learner", Role.LEARNER)
    settings = shared(
        data_dir,
        redis_prefix,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        rate_limit_burst=5,
        rate_limit_per_minute=6,
    )
    with caplog.at_level(logging.WARNING, logger="certgraph.guards"):
        async with clients(settings, 1) as (http,):
            answers = [
                await http.post("/graphql", json=VIEWER, headers=bearer(learner.token))
                for _ in range(20)
            ]
    assert [a.status_code for a in answers] == [200] * 20  # over the burst: not counted
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned
    assert NOT_COUNTED in warned[0] and "redis://127.0.0.1:" in warned[0]


async def test_the_warning_comes_once_a_minute_and_counting_resumes_when_redis_returns(
    relay: RedisRelay, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis away for 150 s of the limiter's clock, asked twice a second: every request
    served, three warnings (at 0, 60 and 120 s). Back, it counts again: a burst of 2."""
    clock = FakeClock()
    settings = Settings(
        redis_key_prefix=redis_prefix,
        rate_limit_burst=2,
        rate_limit_per_minute=6,
        redis_timeout_seconds=0.5,
    )
    limiter = RedisRateLimiter.from_settings(settings, relay.url)
    limiter.clock = clock
    try:
        with caplog.at_level(logging.INFO, logger="certgraph.guards"):
            waits = []
            for _ in range(300):
                waits.append(await limiter.admit("user:1"))
                clock.now += 0.5
            assert waits == [0.0] * 300
            assert len(warnings_of(caplog)) == 3

            await relay.start()
            clock.now += 1.0
            back = [await limiter.admit("user:1") for _ in range(3)]
        assert back[:2] == [0.0, 0.0]
        assert 9.0 < back[2] <= 10.0  # one token each 10 s
        assert len(warnings_of(caplog)) == 3
        assert any("counted in Redis again" in r.getMessage() for r in caplog.records)
    finally:
        await limiter.aclose()


async def test_a_slow_redis_is_not_waited_for_beyond_its_timeout(
    relay: RedisRelay, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    settings = Settings(
        redis_key_prefix=redis_prefix,
        rate_limit_burst=1,
        rate_limit_per_minute=6,
        redis_timeout_seconds=0.2,
    )
    await relay.start()
    limiter = RedisRateLimiter.from_settings(settings, relay.url)
    limiter.clock = clock
    try:
        assert await limiter.admit("user:1") == 0.0  # counted: the one token of the burst
        relay.delay = 2.0
        with caplog.at_level(logging.WARNING, logger="certgraph.guards"):
            started = time.monotonic()
            slow = await limiter.admit("user:1")
            elapsed = time.monotonic() - started
        assert slow == 0.0  # would have been refused: served uncounted
        assert elapsed < 1.0, elapsed
        assert len(warnings_of(caplog)) == 1
        relay.delay = 0.0
        clock.now += 1.5
        assert await limiter.admit("user:1") > 0  # counted again: the bucket is empty
    finally:
        await limiter.aclose()


def test_the_settings_choose_the_limiter() -> None:
    assert isinstance(rate_limiter(Settings()), TokenBucketLimiter)
    chosen = rate_limiter(Settings(redis_url=REDIS_URL))
    assert isinstance(chosen, RedisRateLimiter)
    env = {"CERTGRAPH_REDIS_URL": "http://127.0.0.1:6379"}
    with pytest.raises(SettingsError, match="CERTGRAPH_REDIS_URL"):
        load_settings(env)
