"""Events never lost and never in a request's way (issue 14), against real servers over real
HTTP: the probe plugin logs every event it is handed (tests/proof/probe), a webhook receiver
in the test process (tests/proof/receiver.py) logs every attempt it gets, and the outbox and
delivery tables are read with plain SQL.

- kill -9 between commit and delivery, and in the middle of a delivery: the event is
  delivered afterwards, with the id it was committed with;
- a webhook receiver down for 30 s gets every event after it returns, and no event twice
  without a failed attempt between;
- a receiver taking 10 s per request slows neither mutations nor `{ viewer { id } }`;
- two server processes on one PostgreSQL database deliver each event once per endpoint and
  once per plugin;
- a plugin whose blocking hook sleeps 5 s holds no request up;
- every webhook request's signature verifies with the `standardwebhooks` package.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import WebhookVerificationError

from tests.files.samples import pdf
from tests.proof.live import (
    ON_POSTGRES,
    RECORD,
    START,
    Client,
    Deployment,
    Person,
    create_certification,
    create_course,
    create_person,
    create_webhook,
    payload,
    record_figures,
)
from tests.proof.receiver import Attempt, Receiver, verify

# The receiver listens on 127.0.0.1: a private address, refused unless allowed.
WEBHOOKS = {"CERTGRAPH_WEBHOOK_ALLOW_PRIVATE": "true"}
SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) {
    evidence { id } errors { code message }
  }
}
"""
VIEWER = "{ viewer { id } }"
DELIVERIES = """
{ webhooks { edges { node { id recentDeliveries(first: 100) {
    eventId eventType attempt state statusCode } } } } }
"""


def http_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=60.0)


async def seed(
    admin: Client, *, learners: int, courses: int, started: bool = True
) -> tuple[str, list[str], list[Person]]:
    """A certification of `courses` courses and `learners` learners (who started it: the
    `enrolled` and `started` events); creating them emits no event."""
    course_ids = [await create_course(admin, f"Evented {i}") for i in range(courses)]
    cert = await create_certification(admin, "Evented", course_ids)
    people = [await create_person(admin, f"Evented Learner {i}") for i in range(learners)]
    if started:
        for person in people:
            await start(admin, cert, person)
    return cert, course_ids, people


async def start(admin: Client, cert: str, learner: Person) -> None:
    payload(await admin.data(START, {"id": cert}, token=learner.token), "startCertification")


async def report(
    admin: Client, learner: Person, course: str, percent: int | None = None
) -> dict[str, Any]:
    """recordCourseProgress (M1): a percent, or the course completed (no percent)."""
    progress: dict[str, Any] = {"courseId": course}
    progress.update({"percent": percent} if percent is not None else {"completed": True})
    data = await admin.data(RECORD, {"input": progress}, token=learner.token)
    return payload(data, "recordCourseProgress")


async def submit(admin: Client, learner: Person, cert: str) -> None:
    """submitEvidence (M2): a small PDF for an EXTERNAL certification."""
    response = await admin.upload(
        SUBMIT,
        {"cert": cert},
        {"file": ("proof.pdf", pdf(f"{learner.id} {cert}"), "application/pdf")},
        token=learner.token,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["submitEvidence"]["errors"] == [], response.text


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["id"] for e in events)


def committed_ids(committed: list[tuple[str, str]]) -> list[str]:
    return sorted(event_id for event_id, _ in committed)


def statuses_by_event(attempts: list[Attempt], path: str | None = None) -> dict[str, list[int]]:
    """Each event's attempts at the receiver (by webhook-id), in the order they came."""
    seen: dict[str, list[int]] = {}
    for attempt in attempts:
        if path in (None, attempt.path):
            seen.setdefault(attempt.webhook_id, []).append(attempt.status)
    return seen


def assert_signed(secret: str, attempts: list[Attempt], committed: list[tuple[str, str]]) -> None:
    """Every attempt verifies with `secret`, and carries the committed event it names."""
    types = dict(committed)
    for attempt in attempts:
        event = verify(secret, attempt)
        assert event["id"] == attempt.webhook_id, attempt.headers
        assert types[event["id"]] == event["type"]


# -- kill -9 -----------------------------------------------------------------------------------


async def test_kill_9_between_commit_and_delivery_then_delivered_with_the_same_id(
    deployment: Deployment,
) -> None:
    """A server that does not dispatch (CERTGRAPH_DISPATCHER=false) commits the changes and
    their events, and is killed: the events are in the outbox and nowhere else. `certgraph
    worker --once` then delivers each, with the id it was committed with."""
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_DISPATCHER="false").start()
    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        _, courses, learners = await seed(admin, learners=2, courses=2)
        for learner in learners:
            await report(admin, learner, courses[0], 50)
            await report(admin, learner, courses[0])
    committed = await deployment.outbox()
    server.kill()

    kinds = Counter(kind for _, kind in committed)
    assert kinds["progress_recorded"] == 4 and kinds["enrolled"] == 2, kinds
    assert deployment.events() == []  # committed, not delivered ...
    assert await deployment.deliveries() == []  # ... nor even fanned out

    worker = deployment.cli("worker", "--once")
    assert f"{len(committed)} deliveries made" in worker.stdout, worker.stdout
    delivered = deployment.events()
    assert ids(delivered) == committed_ids(committed)  # each once, with its committed id
    assert len({e["pid"] for e in delivered}) == 1  # by the worker process
    assert {(state, attempts) for _, _, state, attempts, _ in await deployment.deliveries()} == {
        ("DELIVERED", 1)
    }
    record_figures(
        "kill -9 between commit and delivery",
        committed=len(committed),
        delivered_after=len(delivered),
    )


async def test_kill_9_mid_delivery_then_delivered_again_with_the_same_id(
    deployment: Deployment,
) -> None:
    """The probe's hook hangs; the server is killed while the hook runs. Until the dead
    process's lease lapses nobody sends the event again (nor that learner's later ones,
    which wait behind it); then a restarted server delivers all, the hung one with the id
    of its first attempt, on its second attempt."""
    admin_token = deployment.create_admin()
    # lease: 2 x max(hook 3 s, webhook 1 s) + 5 = 11 s
    server = await deployment.server(
        CERTGRAPH_PROOF_SLOW_HOOK_SECONDS="600",
        CERTGRAPH_EVENT_HOOK_TIMEOUT="3",
        CERTGRAPH_WEBHOOK_TIMEOUT="1",
    ).start()
    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        _, courses, learners = await seed(admin, learners=1, courses=2)
        await report(admin, learners[0], courses[0], 40)
        await report(admin, learners[0], courses[1], 60)
        for _ in range(100):
            if deployment.hooks_started():
                break
            await asyncio.sleep(0.02)
    server.kill()  # within a fraction of a second of the hook starting: before its timeout
    killed_at = time.monotonic()
    in_flight = deployment.hooks_started()
    committed = await deployment.outbox()
    assert len(in_flight) == 1, in_flight
    assert in_flight[0]["id"] in committed_ids(committed)
    assert deployment.events() == []  # the hook never returned
    held = {row[0]: row[2:4] for row in await deployment.deliveries()}
    assert held[in_flight[0]["id"]] == ("PENDING", 1)

    # While the lease holds, a dispatcher takes neither it nor what waits behind it.
    worker = deployment.cli("worker", "--once")
    assert "0 deliveries made" in worker.stdout, worker.stdout
    assert deployment.events() == []

    restarted = await deployment.server().start()
    delivered = await deployment.wait_for_events(len(committed), timeout=45)
    redelivered_after = time.monotonic() - killed_at
    assert ids(delivered) == committed_ids(committed)  # each once, with its committed id
    first = next(e for e in delivered if e["id"] == in_flight[0]["id"])
    assert delivered[0] == first  # order per learner: the hung event first
    assert first["type"] == in_flight[0]["type"]
    assert first["pid"] in restarted.processes()
    attempts = {row[0]: row[2:4] for row in await deployment.deliveries()}
    assert attempts == {
        event_id: ("DELIVERED", 2 if event_id == first["id"] else 1)
        for event_id in committed_ids(committed)
    }
    record_figures(
        "kill -9 mid-delivery",
        committed=len(committed),
        lease_seconds=11,
        redelivered_after_s=round(redelivered_after, 1),
        attempts_of_hung_event=2,
    )


# -- webhook receivers -------------------------------------------------------------------------

DOWN_SECONDS = 30.0
BACK_OFF = {
    "CERTGRAPH_EVENT_RETRY_BASE_SECONDS": "1",
    "CERTGRAPH_EVENT_RETRY_MAX_SECONDS": "5",
    "CERTGRAPH_EVENT_MAX_ATTEMPTS": "100",
}


async def test_receiver_down_for_30_s_gets_every_event_after_it_returns(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    async with Receiver(status=503) as receiver:
        server = await deployment.server(**WEBHOOKS, **BACK_OFF).start()
        async with http_client(server.url) as http:
            admin = Client(http, admin_token)
            _, secret = await create_webhook(admin, receiver.url())
            down_since = time.monotonic()
            _, courses, learners = await seed(admin, learners=3, courses=2)
            # more events through the outage, every 10 s
            for step, percent in enumerate((20, 40, 60)):
                await asyncio.sleep(max(0.0, down_since + 10 * step - time.monotonic()))
                for learner in learners:
                    await report(admin, learner, courses[step % 2], percent)
            await asyncio.sleep(max(0.0, down_since + DOWN_SECONDS - time.monotonic()))
            refused = len(receiver.attempts)
            receiver.status = 204  # back
            up_at = time.monotonic()
            committed = await deployment.outbox()
            accepted = await receiver.wait_for_accepted(len(committed), timeout=60)
            drained_after = max(a.answered_at for a in accepted) - up_at
            await asyncio.sleep(2.0)  # two polls more: nothing else comes
            endpoint = (await admin.data(DELIVERIES))["webhooks"]["edges"][0]["node"]
        plugin = await deployment.wait_for_events(len(committed))

    assert refused > len(learners)  # the outage was really tried, and retried
    assert all(a.status == 503 for a in receiver.attempts[:refused])
    # Every event delivered after the receiver returned, exactly once ...
    assert receiver.accepted_ids() == dict.fromkeys(committed_ids(committed), 1)
    assert all(a.received_at >= up_at for a in accepted)
    # ... and none received twice in a row without a failed attempt between: each event's
    # attempts are failures, then one success, then nothing.
    tries = statuses_by_event(receiver.attempts)
    assert {event_id: s[:-1] == [503] * (len(s) - 1) for event_id, s in tries.items()} == (
        dict.fromkeys(committed_ids(committed), True)
    )
    assert_signed(secret, receiver.attempts, committed)
    # certgraph's own account (recentDeliveries) matches the receiver's log.
    assert {
        d["eventId"]: (d["state"], d["attempt"], d["statusCode"])
        for d in endpoint["recentDeliveries"]
    } == {event_id: ("DELIVERED", len(s), 204) for event_id, s in tries.items()}
    # The plugin, another destination, was never held back by the receiver's outage.
    assert ids(plugin) == committed_ids(committed)
    record_figures(
        "webhook receiver down 30 s",
        events=len(committed),
        attempts=len(receiver.attempts),
        refused_while_down=refused,
        most_attempts_one_event=max(len(s) for s in tries.values()),
        drained_s_after_return=round(drained_after, 1),
    )


SLOW_SECONDS = 10.0
M1_RUNS = 20  # per phase
M2_RUNS = 8
VIEWER_PROBES = 60
NOISE = 3.0  # a p50 with the slow receiver may be this many times the one without (+ 20 ms)


async def test_receiver_taking_10_s_slows_no_request(deployment: Deployment) -> None:
    """M1 (recordCourseProgress) and M2 (submitEvidence) p50, and a concurrent
    `{ viewer { id } }`, without a webhook, then with one whose receiver takes 10 s."""
    admin_token = deployment.create_admin()
    async with Receiver(delay_seconds=SLOW_SECONDS) as receiver:
        # a 30 s webhook timeout: each delivery is in flight the whole 10 s, then succeeds
        server = await deployment.server(**WEBHOOKS, CERTGRAPH_WEBHOOK_TIMEOUT="30").start()
        async with http_client(server.url) as http, http_client(server.url) as probing:
            admin = Client(http, admin_token)
            prober = Client(probing, admin_token)
            # one course more than the phases complete: no M1 here completes the certification
            _, courses, learners = await seed(admin, learners=4, courses=2 * M1_RUNS // 4 + 1)
            externals = [
                await create_certification(admin, f"External {i}", [], kind="EXTERNAL")
                for i in range(2 * M2_RUNS // 4)
            ]
            await report(admin, learners[0], courses[0], 1)  # warm up
            await prober.data(VIEWER)

            async def phase(n: int) -> dict[str, list[float]]:
                """M1 then M2, in sequence, while another client probes the viewer."""
                done = asyncio.Event()
                viewer: list[float] = []
                held: list[float] = []  # deliveries the receiver held as each write returned

                async def write(call: Callable[[], Awaitable[Any]]) -> float:
                    took = await timed(call)
                    held.append(receiver.in_flight)
                    return took

                async def probe() -> None:
                    while not done.is_set() or len(viewer) < VIEWER_PROBES:
                        viewer.append(await timed(lambda: prober.data(VIEWER)))
                        await asyncio.sleep(0.02)

                async def until_held() -> None:
                    # The first event's delivery reaches the receiver before the next write:
                    # every later write is answered while one is held. (The dispatcher gathers
                    # commits for up to 50 ms and writes the deliveries in a transaction of its
                    # own first: with writes of a few ms, several were answered before it.)
                    deadline = time.monotonic() + SLOW_SECONDS
                    while receiver.in_flight < 1:
                        assert time.monotonic() < deadline, "no delivery reached the receiver"
                        await asyncio.sleep(0.005)

                probing = asyncio.create_task(probe())
                try:
                    m1 = []
                    for c in courses[n * 5 : n * 5 + 5]:
                        for p in learners:
                            m1.append(await write(lambda p=p, c=c: report(admin, p, c)))
                            if n == 1 and len(m1) == 1:
                                await until_held()
                    m2 = [
                        await write(lambda p=p, c=c: submit(admin, p, c))
                        for c in externals[n * 2 : n * 2 + 2]
                        for p in learners
                    ]
                finally:
                    done.set()
                    await probing
                return {"m1": m1, "m2": m2, "viewer": viewer, "held": held}

            quiet = await phase(0)
            await create_webhook(admin, receiver.url())
            slow = await phase(1)
            # Then only reads, while the deliveries are still held (each for 10 s).
            held_reads: list[float] = []
            held_during: set[int] = {receiver.in_flight}
            for _ in range(VIEWER_PROBES):
                held_reads.append(await timed(lambda: prober.data(VIEWER)))
                held_during.add(receiver.in_flight)
                await asyncio.sleep(0.01)
            answered_by_end = len(receiver.accepted())

    assert len(slow["m1"]) == M1_RUNS and len(slow["m2"]) == M2_RUNS
    # Deliveries to the slow receiver were in flight while the writes were answered (all but
    # the first, whose event's delivery each later write waited for), and none while there was
    # no webhook.
    answered_while_held = sum(1 for h in slow.pop("held") if h >= 1)
    assert answered_while_held >= M1_RUNS
    assert set(quiet.pop("held")) == {0}
    p50 = {
        phase: {op: statistics.median(v) for op, v in t.items()}
        for phase, t in {"quiet": quiet, "slow": slow}.items()
    }
    figures = {
        f"{op}_p50_ms_{phase}": ms(values[op]) for phase, values in p50.items() for op in values
    }
    figures["viewer_p95_ms_quiet"] = ms(p95(quiet["viewer"]))
    figures["viewer_p95_ms_slow"] = ms(p95(slow["viewer"]))
    figures["viewer_p50_ms_held"] = ms(statistics.median(held_reads))
    figures["viewer_p95_ms_held"] = ms(p95(held_reads))
    record_figures(
        "webhook receiver taking 10 s",
        **figures,
        viewer_probes=f"{len(quiet['viewer'])}+{len(slow['viewer'])}+{len(held_reads)}",
        writes_answered_while_held=f"{answered_while_held}/{M1_RUNS + M2_RUNS}",
        most_deliveries_held=receiver.most_in_flight,
        deliveries_answered_by_end=answered_by_end,
    )
    # The bound: a viewer read stays under 50 ms while deliveries are held: median
    # and p95 of the reads made while nothing else ran, median of those made between the
    # writes (their p95 is the writes' own time on one worker: a figure, in both phases).
    assert min(held_during) >= 1, held_during
    assert statistics.median(held_reads) < 0.050, figures
    assert p95(held_reads) < 0.050, figures
    assert p50["slow"]["viewer"] < 0.050, figures
    # M1 and M2 unchanged within noise (with listeners awaited in the request, M1 took the
    # listener's time per event: seconds).
    for op in ("m1", "m2"):
        assert p50["slow"][op] < NOISE * p50["quiet"][op] + 0.020, figures


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="two server processes on one database is the PostgreSQL deployment (SKIP LOCKED); "
    "on SQLite, test_live_concurrency's two workers share one file",
)
async def test_two_servers_deliver_each_event_once_per_endpoint_and_plugin(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    async with Receiver() as receiver:
        servers = [await deployment.server(**WEBHOOKS).start() for _ in range(2)]
        async with http_client(servers[0].url) as first, http_client(servers[1].url) as second:
            admins = [Client(first, admin_token), Client(second, admin_token)]
            secrets = {
                path: (await create_webhook(admins[0], receiver.url(path)))[1]
                for path in ("/a", "/b")
            }
            _, courses, learners = await seed(admins[1], learners=4, courses=4)
            # Reports from every learner through both servers at once.
            reports = [
                (learner, course, percent)
                for learner in learners
                for course in courses
                for percent in (30, 60)
            ]
            random.Random(14).shuffle(reports)
            await asyncio.gather(
                *(
                    report(admins[i % 2], learner, course, percent)
                    for i, (learner, course, percent) in enumerate(reports)
                )
            )
            committed = await deployment.outbox()
            for path in secrets:
                await receiver.wait_for_accepted(len(committed), path)
            plugin = await deployment.wait_for_events(len(committed))
            await asyncio.sleep(3.0)  # three polls more: no second delivery comes

    expected = dict.fromkeys(committed_ids(committed), 1)
    for path, secret in secrets.items():
        assert receiver.accepted_ids(path) == expected, path
        assert_signed(secret, [a for a in receiver.attempts if a.path == path], committed)
    assert len(receiver.attempts) == 2 * len(committed)  # no attempt failed, none repeated
    assert Counter(e["id"] for e in deployment.events()) == expected
    by_server = Counter(
        next(n for n, s in enumerate(servers) if e["pid"] in s.processes()) for e in plugin
    )
    record_figures(
        "two servers, one PostgreSQL database",
        events=len(committed),
        deliveries_per_endpoint=[len(receiver.accepted(p)) for p in secrets],
        plugin_deliveries=len(plugin),
        plugin_deliveries_by_server=[by_server[0], by_server[1]],
    )


# -- a blocking plugin ---------------------------------------------------------------------

SLOW_HOOK_SECONDS = 5


async def test_blocking_hook_sleeping_5_s_holds_no_request(deployment: Deployment) -> None:
    """The probe's plain `def` hook sleeps 5 s (time.sleep) per event. With every thread of
    the hooks' pool asleep (4 learners' first events at once), a viewer read, /healthz, a
    mutation and an upload (whose file I/O uses threads too) are all answered, and before
    any of the hooks returned."""
    admin_token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_PROOF_SLOW_HOOK_SECONDS=str(SLOW_HOOK_SECONDS), CERTGRAPH_EVENT_HOOK_THREADS="4"
    ).start()
    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        cert, courses, learners = await seed(admin, learners=5, courses=1, started=False)
        external = await create_certification(admin, "External", [], kind="EXTERNAL")
        for learner in learners[:4]:
            await start(admin, cert, learner)
        for _ in range(150):
            if len(deployment.hooks_started()) >= 4:
                break
            await asyncio.sleep(0.02)
        asleep = deployment.hooks_started()
        assert len(asleep) == 4, asleep  # the pool's four threads, each in time.sleep

        viewer = [await timed(lambda: admin.data(VIEWER)) for _ in range(20)]
        health = [await timed(lambda: http.get("/healthz")) for _ in range(10)]
        writes = [
            await timed(lambda: create_course(admin, "Written while a hook sleeps")),
            await timed(lambda: report(admin, learners[4], courses[0], 10)),
            await timed(lambda: submit(admin, learners[4], external)),
        ]
        returned_meanwhile = deployment.events()
        delivered = await deployment.wait_for_events(4, timeout=SLOW_HOOK_SECONDS + 10)
    server.kill()  # its hooks sleep on; nothing here is about shutting down

    assert returned_meanwhile == []  # every answer came while all four hooks slept
    assert {e["id"] for e in delivered[:4]} == {e["id"] for e in asleep}
    record_figures(
        "blocking hook sleeping 5 s (4 hook threads asleep)",
        viewer_p50_ms=ms(statistics.median(viewer)),
        viewer_max_ms=ms(max(viewer)),
        healthz_max_ms=ms(max(health)),
        create_course_ms=ms(writes[0]),
        record_progress_ms=ms(writes[1]),
        submit_evidence_ms=ms(writes[2]),
    )


# -- signatures ------------------------------------------------------------------------------


async def test_every_webhook_request_verifies_with_standardwebhooks(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    async with Receiver() as receiver:
        server = await deployment.server(**WEBHOOKS).start()
        async with http_client(server.url) as http:
            admin = Client(http, admin_token)
            _, secret = await create_webhook(admin, receiver.url())
            _, courses, learners = await seed(admin, learners=2, courses=2)
            for learner in learners:
                await report(admin, learner, courses[0], 70)
                await report(admin, learner, courses[1])
            committed = await deployment.outbox()
            accepted = await receiver.wait_for_accepted(len(committed))
            plugin = await deployment.wait_for_events(len(committed))

    assert receiver.accepted_ids() == dict.fromkeys(committed_ids(committed), 1)
    assert_signed(secret, receiver.attempts, committed)
    # Plugins and receivers are told the same thing.
    told = {e["id"]: e["data"] for e in plugin}
    assert {a.webhook_id: a.event["data"] for a in accepted} == told

    # What a receiver must refuse: a body changed on the way, another id, another secret.
    sample = next(
        a
        for a in accepted
        if a.event["type"] == "progress_recorded" and a.event["data"]["completed"]
    )
    tampered = sample.body.replace(b'"completed":true', b'"completed":false')
    assert tampered != sample.body
    other_id = {
        **sample.headers,
        "webhook-id": next(i for i, _ in committed if i != sample.webhook_id),
    }
    wrong_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    for body, headers, key in (
        (tampered, sample.headers, secret),
        (sample.body, other_id, secret),
        (sample.body, sample.headers, wrong_secret),
    ):
        with pytest.raises(WebhookVerificationError):
            verify(key, Attempt(sample.path, headers, body, sample.status, 0.0))
    assert secret not in server.log()
    record_figures(
        "webhook signatures",
        requests_verified=len(receiver.attempts),
        tampered_refused=3,
    )
