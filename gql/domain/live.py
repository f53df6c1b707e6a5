"""The live feed (docs/events.md, "Live updates"): each process reads new outbox events by seq
when woken and hands them to its local subscribers whose interest matches; subscribers re-read
what the events name with their own visibility."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from gql.domain.access import Actor, learner_scope, review_scope
from gql.store import outbox, reads
from gql.store.records import EnrollmentRecord, EvidenceRecord
from gql.vocabulary import pk_of

log = logging.getLogger("certgraph.live")

EVIDENCE_TYPES = frozenset({"evidence_submitted", "evidence_reviewed"})
# Events read per query while catching up.
READ_BATCH = 500
# A seq skipped by the feed is looked for again this long: on PostgreSQL a transaction that
# took a lower seq may commit after one with a higher seq was read (a rolled-back one never).
GAP_SECONDS = 30.0
# After a failed read or LISTEN connection, wait this long before trying again.
RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What a subscriber filters on; the objects themselves are re-read by the subscriber."""

    seq: int
    type: str
    learner_id: int | None
    enrollment_id: int | None
    evidence_id: int | None
    course_id: int | None


def live_event(event: outbox.StoredEvent) -> LiveEvent:
    data = event.data
    learner = data.get("learner")
    course = data.get("course")
    return LiveEvent(
        seq=event.seq,
        type=event.type,
        learner_id=pk_of(learner.get("id") if isinstance(learner, dict) else None, "User"),
        enrollment_id=pk_of(data.get("enrollmentId"), "Enrollment"),
        evidence_id=pk_of(data.get("evidenceId"), "Evidence"),
        course_id=pk_of(course.get("id") if isinstance(course, dict) else None, "Course"),
    )


@dataclass(frozen=True, slots=True)
class Interest:
    """Which events a subscriber is handed: one learner's (None: anyone's), of these types
    (None: any)."""

    learner_id: int | None = None
    types: frozenset[str] | None = None

    def matches(self, event: LiveEvent) -> bool:
        if self.learner_id is not None and event.learner_id != self.learner_id:
            return False
        return self.types is None or event.type in self.types


class SlowConsumer(Exception):
    """The subscriber's queue filled: it is dropped rather than buffered for ever."""


@dataclass(eq=False)
class Subscriber:
    interest: Interest
    queue: asyncio.Queue[LiveEvent]
    overflowed: bool = False

    def offer(self, event: LiveEvent) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # wake the reader so it notices at once
            with suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(event)

    async def next(self) -> LiveEvent:
        event = await self.queue.get()
        if self.overflowed:
            raise SlowConsumer("the subscriber fell behind")
        return event


@dataclass
class LiveFeed:
    """One per process. `listen(url, wake)`: a cross-process wake-up source, opened while
    subscribers exist (PostgreSQL's LISTEN); `poll_seconds`: how often the outbox is read
    anyway while anyone is subscribed (other processes' writes on SQLite)."""

    poll_seconds: float
    queue_size: int
    database_url: str | None = None  # PostgreSQL: LISTEN on it
    redis_url: str | None = None  # also publish and hear "events written" there
    redis_channel: str = "certgraph:events"
    _subscribers: set[Subscriber] = field(default_factory=set)
    _cursor: int | None = None
    _gaps: dict[int, float] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _listener: outbox.LiveListener | None = None
    _listener_retry_at: float = 0.0
    _redis: Redis | None = None
    _redis_task: asyncio.Task[None] | None = None
    _publishing: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def wake(self) -> None:
        self._wake.set()

    def events_written(self) -> None:
        """This process committed events: wake its own feed, and tell the other processes'
        through Redis when configured (PostgreSQL's NOTIFY needs no telling)."""
        self.wake()
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._publish(self._redis))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, redis: Redis) -> None:
        try:
            await redis.publish(self.redis_channel, "")
        except Exception as exc:  # the others still find the events at their next poll
            log.warning("could not publish to Redis: %s", exc)

    def start(self) -> None:
        if self.redis_url:
            self._redis = Redis.from_url(self.redis_url)
            self._redis_task = asyncio.create_task(self._hear_redis(self._redis))
        self._task = asyncio.create_task(self._run(), name="certgraph-live-feed")

    async def stop(self) -> None:
        for task in (self._task, self._redis_task, *self._publishing):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        self._task = self._redis_task = None
        await self._close_listener()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _hear_redis(self, redis: Redis) -> None:
        """Wake on every message of the channel (cheap: a wake with no subscriber reads
        nothing); reconnects after a failure."""
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.redis_channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lost the Redis channel (%s); polling until it is back", exc)
                await asyncio.sleep(RETRY_SECONDS)

    @asynccontextmanager
    async def subscribe(self, interest: Interest) -> AsyncIterator[Subscriber]:
        """A subscriber handed every matching event committed from now on."""
        if self._cursor is None:
            newest = await outbox.last_seq()
            if self._cursor is None:
                self._cursor = newest
        subscriber = Subscriber(interest, asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.add(subscriber)
        self.wake()  # opens the LISTEN connection when it is the first
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    async def _run(self) -> None:
        while True:
            timeout = self.poll_seconds if self._subscribers else None
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            if not self._subscribers:
                # Nobody listens: forget the position, so nothing is read until someone does.
                self._cursor = None
                self._gaps.clear()
                continue
            await self._ensure_listener()
            try:
                await self.read_once()
            except Exception:  # the database away: try again at the next wake or poll
                log.exception("the live feed could not read the outbox")
                await asyncio.sleep(RETRY_SECONDS)

    async def read_once(self) -> int:
        """Read the events after the cursor and hand them out; returns how many were read."""
        if self._cursor is None:
            return 0
        now = time.monotonic()
        self._gaps = {seq: at for seq, at in self._gaps.items() if now - at < GAP_SECONDS}
        total = 0
        while True:
            events = await outbox.events_after(self._cursor, list(self._gaps), READ_BATCH)
            for event in events:
                if event.seq in self._gaps:
                    del self._gaps[event.seq]
                elif event.seq > self._cursor:
                    for missing in range(self._cursor + 1, event.seq):
                        self._gaps[missing] = now
                    self._cursor = event.seq
                else:
                    continue
                self._fan_out(live_event(event))
            total += len(events)
            if len(events) < READ_BATCH:
                return total

    def _fan_out(self, event: LiveEvent) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.interest.matches(event):
                subscriber.offer(event)

    async def _ensure_listener(self) -> None:
        if self.database_url is None or self.database_url.startswith("sqlite"):
            return
        if self._listener is not None and self._listener.alive:
            return
        if time.monotonic() < self._listener_retry_at:
            return
        await self._close_listener()
        try:
            self._listener = await outbox.LiveListener.open(self.database_url, self.wake)
        except Exception as exc:  # polling still finds the events, later
            log.warning("the live feed could not LISTEN (%s); polling only", exc)
            self._listener_retry_at = time.monotonic() + RETRY_SECONDS

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(Exception):
                await listener.close()


def chain(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    """Both callbacks, for PluginHost.events_written (the dispatcher's wake and the feed's)."""

    def both() -> None:
        first()
        then()

    return both


# -- re-reading what an event names, as the subscriber may see it -------------------------


async def enrollments_changed(actor: Actor, event: LiveEvent) -> list[EnrollmentRecord]:
    """The enrollments of the actor's own that the event changed (progress on a course
    changes each of their enrollments counting it)."""
    if actor.user_id is None or event.learner_id != actor.user_id:
        return []
    if event.enrollment_id is not None:
        return await reads.enrollments(learner_id=actor.user_id, id=event.enrollment_id)
    if event.course_id is not None:
        return await reads.enrollments_counting(actor.user_id, event.course_id)
    return []


async def reviewable_evidence(actor: Actor, event: LiveEvent) -> EvidenceRecord | None:
    """The event's evidence when the actor may review it (a manager's reports', anyone's
    for admins, never their own)."""
    scope = review_scope(actor)
    if scope is None or event.evidence_id is None:
        return None
    rows = await reads.evidence_where(scope, id=event.evidence_id)
    return rows[0] if rows else None


async def visible_enrollment(actor: Actor, enrollment_id: int) -> EnrollmentRecord | None:
    rows = await reads.enrollments(learner_scope(actor), id=enrollment_id)
    return rows[0] if rows else None
