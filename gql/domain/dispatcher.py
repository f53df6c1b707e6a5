"""The dispatcher: takes events from the outbox to plugins and webhook endpoints, off the
request path (docs/events.md, "Delivery").

Each pass fans new events out into one delivery per destination, leases the deliveries that
are due (and not behind an earlier pending event of the same learner for the same
destination), sends each on its own task, and settles it: delivered, or failed and tried again
after an exponential back-off with jitter, or dead after the last attempt. A process killed
mid-send leaves a lease that lapses: the delivery is made again, with the same event id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from gql import clock
from gql.domain.sweep import sweep
from gql.events import Event, parse_data
from gql.plugins import PluginHost
from gql.settings import Settings
from gql.store import outbox
from gql.store.db import retrying, write_transaction
from gql.vocabulary import encode_id
from gql.webhooks import SendResult

log = logging.getLogger("certgraph.events")

FAN_OUT_BATCH = 200
# How long a failed pass (the database away) waits before the next.
ERROR_PAUSE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    max_attempts: int = 15
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 6 * 3600.0
    hook_timeout_seconds: float = 30.0
    hook_threads: int = 4
    webhook_timeout_seconds: float = 10.0
    poll_seconds: float = 1.0
    # Woken by a commit, wait this long first: a burst of commits shares one pass (each pass
    # is a write transaction and ~6 statements, on SQLite under the one write lock).
    gather_seconds: float = 0.05
    concurrency: int = 16
    # The reminder and expiry sweep, run by the dispatcher this often (0: never).
    sweep_interval_seconds: float = 3600.0

    @staticmethod
    def from_settings(settings: Settings) -> DispatchConfig:
        return DispatchConfig(
            max_attempts=settings.event_max_attempts,
            retry_base_seconds=settings.event_retry_base_seconds,
            retry_max_seconds=settings.event_retry_max_seconds,
            hook_timeout_seconds=settings.event_hook_timeout_seconds,
            hook_threads=settings.event_hook_threads,
            webhook_timeout_seconds=settings.webhook_timeout_seconds,
            poll_seconds=settings.event_poll_seconds,
            concurrency=settings.event_concurrency,
            sweep_interval_seconds=settings.sweep_interval_seconds,
        )

    @property
    def lease_seconds(self) -> float:
        """Longer than any one send may take, so a lease lapses only for a dead process."""
        return 2 * max(self.hook_timeout_seconds, self.webhook_timeout_seconds) + 5

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: doubling from the
        base up to the cap, then between half and all of that (jitter spreads a crowd of
        retries that failed together)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (attempts - 1))
        return float(ceiling * random.uniform(0.5, 1.0))


class WebhookSender(Protocol):
    async def send(self, url: str, secret: str, event: Event) -> SendResult: ...


def event_of(stored: outbox.StoredEvent) -> Event:
    return Event(
        id=stored.event_id,
        type=stored.type,
        occurred_at=stored.occurred_at,
        actor_id=None if stored.actor_id is None else encode_id("User", stored.actor_id),
        data=parse_data(stored.type, stored.data),
    )


class Dispatcher:
    """One per process (the server's lifespan starts it; `certgraph worker` runs one alone)."""

    def __init__(
        self,
        plugins: PluginHost,
        config: DispatchConfig,
        *,
        sender: WebhookSender | None = None,
        sweep: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.plugins = plugins
        self.config = config
        self.sender = sender
        self.sweep = sweep
        self.threads = ThreadPoolExecutor(
            max_workers=config.hook_threads, thread_name_prefix="certgraph-event-hook"
        )
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None

    # -- one pass ------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Settings, plugins: PluginHost, sender: WebhookSender
    ) -> Dispatcher:
        """The dispatcher of a server process or of `certgraph worker`, with its sweep."""
        return cls(
            plugins,
            DispatchConfig.from_settings(settings),
            sender=sender,
            sweep=functools.partial(
                sweep,
                due_soon_days=settings.due_soon_days,
                retention_days=settings.event_retention_days,
                plugins=plugins,
            ),
        )

    async def fan_out(self) -> int:
        """Write the deliveries of events not yet fanned out; returns how many events."""
        plugin_targets = [(target, None) for target in self.plugins.event_targets()]

        async def once() -> int:
            async with write_transaction():
                if not await outbox.take_fan_out_turn():
                    return 0
                events = await outbox.events_to_fan_out(FAN_OUT_BATCH)
                if not events:
                    return 0
                webhooks = await outbox.enabled_webhooks()
                keys = await outbox.ordering_keys_of([e.seq for e in events])
                targets: dict[int, list[tuple[str, int | None]]] = {}
                for event in events:
                    targets[event.seq] = plugin_targets + [
                        (f"webhook:{hook.id}", hook.id)
                        for hook in webhooks
                        if not hook.event_types or event.type in hook.event_types
                    ]
                await outbox.write_deliveries(events, targets, keys, clock.now())
                return len(events)

        if not await outbox.any_to_fan_out():
            return 0
        total = 0
        while True:
            done = await retrying(once)
            total += done
            if done < FAN_OUT_BATCH:
                return total

    async def claim(self, limit: int) -> list[outbox.DeliveryJob]:
        now = clock.now()
        lease = now + timedelta(seconds=self.config.lease_seconds)
        targets = self.plugins.event_targets()
        if not await outbox.any_due(targets, now):
            return []

        async def once() -> list[outbox.DeliveryJob]:
            async with write_transaction():
                return await outbox.claim_due(targets, now, lease, limit)

        return await retrying(once)

    async def deliver(self, job: outbox.DeliveryJob) -> None:
        """Send one claimed delivery and settle it; never raises (but for cancellation)."""
        status: int | None = None
        try:
            event = event_of(job.event)
            if job.webhook_id is not None:
                if self.sender is None or job.webhook_url is None or job.webhook_secret is None:
                    raise RuntimeError("this process sends no webhooks")
                result = await self.sender.send(job.webhook_url, job.webhook_secret, event)
                status, error = result.status_code, result.error
            else:
                await self.plugins.deliver(
                    job.target,
                    event,
                    threads=self.threads,
                    timeout=self.config.hook_timeout_seconds,
                )
                error = None
        except TimeoutError:
            error = f"timed out after {self.config.hook_timeout_seconds:g} s"
        except Exception as exc:  # a plugin's failure is the delivery's, retried later
            error = f"{type(exc).__name__}: {exc}"
        await self._settle(job, status, error)

    async def _settle(self, job: outbox.DeliveryJob, status: int | None, error: str | None) -> None:
        now = clock.now()
        if error is None:

            async def delivered() -> None:
                async with write_transaction():
                    await outbox.settle_delivered(job.id, now, status)

            await retrying(delivered)
            return
        dead = job.attempts >= self.config.max_attempts
        retry_at = now + timedelta(seconds=self.config.retry_delay(job.attempts))
        log.warning(
            "event %s (%s) to %s failed, attempt %d%s: %s",
            job.event.event_id,
            job.event.type,
            job.target,
            job.attempts,
            " (dead: no more attempts)" if dead else f", next at {retry_at.isoformat()}",
            error,
        )

        async def failed() -> None:
            async with write_transaction():
                await outbox.settle_failed(
                    job.id, dead=dead, next_attempt_at=retry_at, status_code=status, error=error
                )

        await retrying(failed)

    async def run_until_idle(self) -> int:
        """Fan out and deliver until nothing is due (deliveries backing off stay); returns
        how many deliveries were made. For `certgraph worker --once` and tests."""
        made = 0
        while True:
            await self.fan_out()
            jobs = await self.claim(self.config.concurrency)
            if not jobs:
                return made
            await asyncio.gather(*(self.deliver(job) for job in jobs))
            made += len(jobs)

    # -- running ---------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def sweep_periodically(self) -> None:
        """Run the sweep (reminders, expiry, pruning) now and then every interval, on a task of
        its own so a long sweep never delays deliveries. Sweeps on several processes agree:
        each event of theirs is emitted once."""
        if self.sweep is None or not self.config.sweep_interval_seconds:
            return
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the periodic sweep failed; trying again next period")
            await asyncio.sleep(self.config.sweep_interval_seconds)

    async def run(self) -> None:
        """Deliver until cancelled: woken by local commits, polling for the others'."""
        while True:
            self._wake.clear()
            try:
                await self.fan_out()
                free = self.config.concurrency - len(self._inflight)
                jobs = await self.claim(free) if free > 0 else []
            except Exception:
                log.exception("event dispatch pass failed; trying again shortly")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            for job in jobs:
                task = asyncio.create_task(self.deliver(job), name=f"deliver-{job.id}")
                self._inflight.add(task)
                task.add_done_callback(self._finished)
            if jobs and len(jobs) == free:
                continue  # more may be due: claim again as soon as a slot frees
            try:
                async with asyncio.timeout(self.config.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                continue
            await asyncio.sleep(self.config.gather_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed: %r", task.exception())
        self._wake.set()  # a slot is free

    def start(self) -> None:
        self.plugins.events_written = self.wake
        self._loop_task = asyncio.create_task(self.run(), name="certgraph-dispatcher")
        self._sweep_task = asyncio.create_task(self.sweep_periodically(), name="certgraph-sweep")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop claiming; give deliveries in flight `grace_seconds`, then cancel them (their
        leases lapse and another pass makes them again)."""
        self.plugins.events_written = lambda: None
        for task in (self._loop_task, self._sweep_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._loop_task = self._sweep_task = None
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.threads.shutdown(wait=False, cancel_futures=True)


async def outbox_backlog() -> tuple[int, int]:
    """(events waiting for their fan-out, deliveries pending), read for /metrics."""
    return await outbox.backlog()
