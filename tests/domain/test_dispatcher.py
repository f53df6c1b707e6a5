"""The dispatcher: at least once with the same id, back-off, dead letters, order per learner,
leases that lapse, blocking hooks off the loop, several dispatchers sharing the work."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gql import Event, clock, hookimpl
from gql.domain.dispatcher import DispatchConfig, Dispatcher
from gql.plugins import PluginHost
from gql.store.models import EventDelivery, OutboxEvent, Webhook
from gql.vocabulary import DeliveryState, encode_id
from gql.webhooks import SendResult

from .factories import Factory

CONFIG = DispatchConfig(
    max_attempts=4,
    retry_base_seconds=10,
    retry_max_seconds=100,
    hook_timeout_seconds=2,
    sweep_interval_seconds=0,
)


class Recorder:
    """A plain `def` hook that keeps what it is handed and fails while `failing` says so."""

    def __init__(self, failing: Any = None) -> None:
        self.seen: list[Event] = []
        self.threads: set[str] = set()
        self.failing = failing or (lambda event, attempt: False)

    @hookimpl
    def certgraph_event(self, event: Event) -> None:
        self.seen.append(event)
        self.threads.add(threading.current_thread().name)
        if self.failing(event, sum(e.id == event.id for e in self.seen)):
            raise ConnectionError(f"receiver down for {event.type}")


def dispatcher_for(host: PluginHost, plugin: object, config: DispatchConfig = CONFIG) -> Dispatcher:
    host.register(plugin, "recorder")
    return Dispatcher(host, config)


async def delivery() -> EventDelivery:
    [row] = await EventDelivery.filter(target="plugin:recorder")
    return row


async def test_a_failed_delivery_is_retried_with_back_off_and_the_same_id(
    make: Factory, plugin_host: PluginHost, frozen_now: datetime
) -> None:
    recorder = Recorder(failing=lambda event, attempt: attempt <= 2)
    dispatcher = dispatcher_for(plugin_host, recorder)
    await make.course()  # the admin and a course: no event concerns a learner yet
    learner = await make.learner()
    recorder.seen.clear()
    await make.progress(learner, await make.course(), 30)

    assert await dispatcher.run_until_idle() == 1
    row = await delivery()
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 1)
    assert "ConnectionError: receiver down for progress_recorded" in (row.last_error or "")
    # the first back-off: between half and all of the base
    assert (
        frozen_now + timedelta(seconds=5)
        <= row.next_attempt_at
        <= frozen_now + timedelta(seconds=10)
    )
    assert await dispatcher.run_until_idle() == 0  # not due yet

    clock.advance(timedelta(seconds=10))
    assert await dispatcher.run_until_idle() == 1  # fails again: the second back-off doubles
    row = await delivery()
    assert row.next_attempt_at >= clock.now() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=20))
    assert await dispatcher.run_until_idle() == 1

    row = await delivery()
    assert (row.state, row.attempts, row.last_error) == (DeliveryState.DELIVERED, 3, None)
    assert len(recorder.seen) == 3 and len({e.id for e in recorder.seen}) == 1
    await dispatcher.stop()


async def test_after_the_last_attempt_a_delivery_is_dead_and_no_longer_holds_back_the_next(
    make: Factory, plugin_host: PluginHost, frozen_now: datetime
) -> None:
    recorder = Recorder(failing=lambda event, attempt: event.type == "progress_recorded")
    dispatcher = dispatcher_for(plugin_host, recorder)
    learner = await make.learner()
    course = await make.course()
    await make.progress(learner, course, 30)
    cert = await make.certification(await make.course())
    await make.assign(cert, learner)  # the learner's next event waits behind the failing one

    for _ in range(CONFIG.max_attempts - 1):
        await dispatcher.run_until_idle()
        assert "enrolled" not in [e.type for e in recorder.seen]
        clock.advance(timedelta(seconds=CONFIG.retry_max_seconds))

    await dispatcher.run_until_idle()  # the last attempt fails: dead, and the next goes out
    dead = await EventDelivery.get(target="plugin:recorder", event__type="progress_recorded")
    assert (dead.state, dead.attempts) == (DeliveryState.DEAD, CONFIG.max_attempts)
    assert dead.last_error == "ConnectionError: receiver down for progress_recorded"
    assert [e.type for e in recorder.seen] == ["progress_recorded"] * 4 + ["enrolled"]
    await dispatcher.stop()


async def test_one_learners_failing_event_holds_back_only_that_learners_later_ones(
    make: Factory, plugin_host: PluginHost, frozen_now: datetime
) -> None:
    stuck, other = await make.learner(), await make.learner()
    stuck_id = encode_id("User", stuck.user_id or 0)
    failed: list[Event] = []

    def fail_the_first_one(event: Event, attempt: int) -> bool:
        if event.data.learner.id == stuck_id and not failed:
            failed.append(event)
            return True
        return False

    recorder = Recorder(failing=fail_the_first_one)
    dispatcher = dispatcher_for(plugin_host, recorder)
    courses = [await make.course() for _ in range(3)]
    for course in courses:
        await make.progress(stuck, course, 10)
        await make.progress(other, course, 10)

    await dispatcher.run_until_idle()
    by_learner = [(e.data.learner.id, e.data.course.name) for e in recorder.seen]  # type: ignore[attr-defined]
    assert [c for who, c in by_learner if who != stuck_id] == [c.name for c in courses]
    assert [c for who, c in by_learner if who == stuck_id] == [courses[0].name]  # then held

    clock.advance(timedelta(seconds=10))
    await dispatcher.run_until_idle()
    delivered = [
        e.data.course.name  # type: ignore[attr-defined]
        for e in recorder.seen
        if e.data.learner.id == stuck_id
    ]
    assert delivered == [courses[0].name] + [c.name for c in courses]  # retried, then in order
    await dispatcher.stop()


async def test_a_lease_left_by_a_dead_process_lapses_and_the_event_goes_out_again(
    make: Factory, plugin_host: PluginHost, frozen_now: datetime
) -> None:
    recorder = Recorder()
    dispatcher = dispatcher_for(plugin_host, recorder)
    learner = await make.learner()
    await make.progress(learner, await make.course(), 50)
    await dispatcher.fan_out()
    claimed = await dispatcher.claim(10)  # ... and the process dies before sending
    assert [job.target for job in claimed] == ["plugin:recorder"]

    assert await dispatcher.run_until_idle() == 0  # leased: nobody else takes it
    clock.advance(timedelta(seconds=CONFIG.lease_seconds))
    assert await dispatcher.run_until_idle() == 1
    assert [e.id for e in recorder.seen] == [claimed[0].event.event_id]
    row = await delivery()
    assert (row.state, row.attempts) == (DeliveryState.DELIVERED, 2)
    await dispatcher.stop()


async def test_a_blocking_hook_runs_on_a_thread_of_its_own_and_the_loop_goes_on(
    make: Factory, plugin_host: PluginHost
) -> None:
    loop = asyncio.get_running_loop()
    entered, release = asyncio.Event(), threading.Event()
    order: list[str] = []

    class Blocking:
        @hookimpl
        def certgraph_event(self, event: Event) -> None:
            loop.call_soon_threadsafe(entered.set)
            release.wait(timeout=10)  # a blocking call: an SMTP client, `requests`
            order.append(f"hook on {threading.current_thread().name}")

    dispatcher = dispatcher_for(plugin_host, Blocking())
    learner = await make.learner()
    await make.progress(learner, await make.course(), 50)

    delivering = asyncio.create_task(dispatcher.run_until_idle())
    await asyncio.wait_for(entered.wait(), timeout=10)
    # the hook is blocked: the loop still serves a database read and a use case
    await make.progress(learner, await make.course(), 60)
    order.append("loop served a write while the hook blocked")
    release.set()
    assert await delivering >= 1
    assert order[0] == "loop served a write while the hook blocked"
    assert order[1].startswith("hook on certgraph-event-hook")
    await dispatcher.stop()


async def test_an_async_hook_past_its_timeout_is_a_failed_attempt(
    make: Factory, plugin_host: PluginHost, frozen_now: datetime
) -> None:
    class Slow:
        @hookimpl
        async def certgraph_event(self, event: Event) -> None:
            await asyncio.sleep(30)

    config = DispatchConfig(hook_timeout_seconds=0.2, sweep_interval_seconds=0)
    dispatcher = dispatcher_for(plugin_host, Slow(), config)
    learner = await make.learner()
    await make.progress(learner, await make.course(), 50)
    await dispatcher.run_until_idle()
    row = await delivery()
    assert (row.state, row.attempts, row.last_error) == (
        DeliveryState.PENDING,
        1,
        "timed out after 0.2 s",
    )
    await dispatcher.stop()


async def test_two_dispatchers_share_the_work_and_deliver_each_event_once(
    make: Factory, plugin_host: PluginHost
) -> None:
    recorder = Recorder()
    plugin_host.register(recorder, "recorder")
    first, second = Dispatcher(plugin_host, CONFIG), Dispatcher(plugin_host, CONFIG)
    courses = [await make.course() for _ in range(4)]
    for _ in range(5):
        learner = await make.learner()
        for course in courses:
            await make.progress(learner, course, 40)

    made = await asyncio.gather(first.run_until_idle(), second.run_until_idle())
    assert sum(made) == 20
    assert len(recorder.seen) == 20 and len({e.id for e in recorder.seen}) == 20
    assert await EventDelivery.filter(state=DeliveryState.DELIVERED).count() == 20
    await first.stop()
    await second.stop()


async def test_an_event_names_the_people_and_things_it_is_about(
    make: Factory, plugin_host: PluginHost
) -> None:
    recorder = Recorder()
    dispatcher = dispatcher_for(plugin_host, recorder)
    learner = await make.learner()
    cert = await make.certification(await make.course(), name="Fire safety")
    enrollment = await make.assign(cert, learner, due_at=datetime(2027, 1, 31, tzinfo=UTC))
    await dispatcher.run_until_idle()

    [enrolled] = [e for e in recorder.seen if e.type == "enrolled"]
    admin = await make.admin()
    assert enrolled.actor_id == encode_id("User", admin.user_id or 0)
    assert enrolled.body()["data"] == {
        "learner": {
            "id": encode_id("User", learner.user_id or 0),
            "name": learner.name,
            "email": learner.email,
        },
        "enrollmentId": encode_id("Enrollment", enrollment.id),
        "certification": {"id": encode_id("Certification", cert.id), "name": "Fire safety"},
        "dueAt": "2027-01-31T00:00:00+00:00",
        "origin": "ASSIGNED",
        "assignedBy": {
            "id": encode_id("User", admin.user_id or 0),
            "name": admin.name,
            "email": admin.email,
        },
    }
    stored = await OutboxEvent.get(event_id=enrolled.id)
    assert stored.fanned_out_at is not None
    await dispatcher.stop()


@pytest.mark.parametrize("attempts", [1, 2, 5, 20])
def test_the_back_off_doubles_up_to_its_cap_with_jitter_below_it(attempts: int) -> None:
    ceiling = min(CONFIG.retry_max_seconds, CONFIG.retry_base_seconds * 2 ** (attempts - 1))
    delays = [CONFIG.retry_delay(attempts) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 100  # jittered, not one value


class RecordingSender:
    """Stands in for the HTTP sender (tests/webhooks sends for real): notes what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, url: str, secret: str, event: Event) -> SendResult:
        self.sent.append((url, event.type))
        return SendResult(status_code=204, error=None)


async def test_a_disabled_endpoint_waits_and_gets_its_events_in_order_once_enabled(
    make: Factory, plugin_host: PluginHost
) -> None:
    now = clock.now()
    hook = await Webhook.create(
        url="https://hooks.example.com/in",
        event_types=[],
        description="chat",
        secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    sender = RecordingSender()
    dispatcher = Dispatcher(plugin_host, CONFIG, sender=sender)
    learner = await make.learner()
    await make.progress(learner, await make.course("First"), 10)
    await dispatcher.fan_out()
    await Webhook.filter(id=hook.id).update(enabled=False)
    await make.progress(learner, await make.course("Second"), 10)  # written while disabled

    assert await dispatcher.run_until_idle() == 0
    assert sender.sent == []
    await Webhook.filter(id=hook.id).update(enabled=True)
    assert await dispatcher.run_until_idle() == 1
    assert sender.sent == [("https://hooks.example.com/in", "progress_recorded")]
    delivery = await EventDelivery.get(webhook_id=hook.id)
    assert (delivery.state, delivery.last_status_code) == (DeliveryState.DELIVERED, 204)
    await dispatcher.stop()


async def test_the_dispatcher_sweeps_on_its_own_schedule_and_survives_a_failing_sweep(
    db: None, plugin_host: PluginHost
) -> None:
    runs: list[int] = []
    twice = asyncio.Event()

    async def sweep() -> None:
        runs.append(len(runs))
        if len(runs) >= 3:
            twice.set()
        if len(runs) == 1:
            raise ConnectionError("database away")

    config = DispatchConfig(sweep_interval_seconds=0.05, poll_seconds=0.05)
    dispatcher = Dispatcher(plugin_host, config, sweep=sweep)
    dispatcher.start()
    await asyncio.wait_for(twice.wait(), timeout=10)
    await dispatcher.stop()
    assert runs[:3] == [0, 1, 2]  # the first failed, the schedule went on
    stopped_at = len(runs)
    await asyncio.sleep(0.2)
    assert len(runs) == stopped_at  # stopped means stopped


async def test_a_burst_of_commits_shares_one_pass(
    db: None, plugin_host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Woken by commits in quick succession, the dispatcher waits gather_seconds and makes one
    pass for all of them, not one each."""
    passes: list[float] = []
    config = DispatchConfig(sweep_interval_seconds=0, poll_seconds=30, gather_seconds=0.2)
    dispatcher = Dispatcher(plugin_host, config)

    async def fan_out() -> int:
        passes.append(asyncio.get_running_loop().time())
        return 0

    monkeypatch.setattr(dispatcher, "fan_out", fan_out)
    dispatcher.start()
    try:
        await asyncio.sleep(0.05)
        assert len(passes) == 1  # the pass at start
        for _ in range(5):
            dispatcher.wake()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        assert len(passes) == 2
        assert passes[1] - passes[0] >= 0.2
    finally:
        await dispatcher.stop()
