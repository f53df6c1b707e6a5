"""Two instances behind a (test-played) load balancer, as docs/deploy.md lays them out: two
`certgraph serve` of 2 workers each, own ports and data directories, one PostgreSQL database,
one Redis. The test alternates its requests between them: the rate limit is one budget across
all four processes (each instance's /metrics counting what both its workers served), a
completion raced on both is awarded once, and kill -9 of one instance mid-load loses no
acknowledged write. PostgreSQL only (tests/proof/instances.py)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.proof.instances import Instances, instances
from tests.proof.live import (
    CREATE_COURSE,
    ON_POSTGRES,
    RECORD,
    START,
    Client,
    Deployment,
    Person,
    create_certification,
    create_course,
    create_person,
    db_pk,
    payload,
    record_figures,
)

__all__ = ["instances"]  # a fixture, imported for this module

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="several instances share a PostgreSQL database (instances.py)"
)

VIEWER = {"query": "{ viewer { id } }"}


async def scrape_requests(http: httpx.AsyncClient) -> dict[str, int]:
    """certgraph_requests_total of /graphql by outcome, from one scrape of an instance."""
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    counted: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "certgraph_requests_total" and sample.labels["route"] == "graphql":
                counted[sample.labels["outcome"]] += int(sample.value)
    return dict(counted)


def cli_person(deployment: Deployment, name: str) -> Person:
    """A learner made at the command line (the CLI is not rate limited; the API would spend
    the admin's budget)."""
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
    made = json.loads(
        deployment.cli(
            "user", "create", "--name", name, "--email", email, "--role", "learner", "--json"
        ).stdout
    )
    return Person(made["id"], made["token"])


async def test_the_rate_limit_is_one_budget_across_instances_and_workers(
    instances: Instances,
) -> None:
    """Burst 5, refilled 1 a minute, per caller. Two callers send 160 requests each, at once,
    half to each instance: 10 are answered, 5 per caller, the rest are 429. A budget per
    instance would have answered 20, one per worker process up to 40. The burst is over in
    well under a minute, so no token comes back meanwhile (asserted). Which workers held the
    burst's connections is in the figures (the kernel decides: on a busy machine one worker
    of an instance may take them all)."""
    burst, per_caller, callers = 5, 160, 2
    deployment = instances.deployment
    people = [cli_person(deployment, f"Caller {i}") for i in range(callers)]
    servers = await instances.start(
        CERTGRAPH_RATE_LIMIT_BURST=str(burst), CERTGRAPH_RATE_LIMIT_PER_MINUTE="1"
    )
    sends = [(people[i % callers], (i // callers) % 2) for i in range(callers * per_caller)]
    connections = callers * per_caller // 2
    async with (
        instances.http(servers[0], connections) as first,
        instances.http(servers[1], connections) as second,
    ):
        lanes = (first, second)
        started = time.monotonic()
        async with instances.workers_serving(servers) as serving:
            answers = await asyncio.gather(
                *(
                    lanes[lane].post(
                        "/graphql",
                        json=VIEWER,
                        headers={"Authorization": f"Bearer {person.token}"},
                    )
                    for person, lane in sends
                )
            )
        elapsed = time.monotonic() - started

        # Each instance's /metrics, answered by either of its workers, counts every request
        # sent to it (both workers' files), by outcome.
        scraped = [await scrape_requests(lane) for lane in lanes]

    assert elapsed < 60, elapsed  # else a token may have been refilled: inconclusive
    granted = Counter(
        (person.id, lane)
        for (person, lane), answer in zip(sends, answers, strict=True)
        if answer.status_code == 200
    )
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {429}
    assert {a.json()["errors"][0]["extensions"]["code"] for a in refused} == {"RATE_LIMITED"}
    # Redis's answer: the next token of a caller comes within the minute.
    assert {1 <= int(a.headers["retry-after"]) <= 60 for a in refused} == {True}
    assert sum(granted.values()) == callers * burst
    for person in people:
        assert granted[(person.id, 0)] + granted[(person.id, 1)] == burst
    for lane, counted in enumerate(scraped):
        sent_here = [a for (_, to), a in zip(sends, answers, strict=True) if to == lane]
        expected = Counter("ok" if a.status_code == 200 else "refused" for a in sent_here)
        assert counted == dict(expected), (lane, counted)
    record_figures(
        "rate limit in Redis, burst 5, 2 callers, 2 instances x 2 workers",
        sent=len(answers),
        granted=sum(granted.values()),
        granted_by_instance=[
            sum(n for (_, lane), n in granted.items() if lane == i) for i in (0, 1)
        ],
        refused_429=len(refused),
        workers_serving=[len(pids) for pids in serving],
        seconds=round(elapsed, 2),
    )


async def test_a_completion_raced_on_both_instances_is_awarded_once(
    instances: Instances,
) -> None:
    """3 learners one course short of a certification; 70 requests each completing that
    course, all at once, alternated between the instances (105 per instance). One award, one
    award audit row and one certification_completed event per learner, the event handed to
    the plugin once. The figures say which workers served."""
    learners_count, per_learner = 3, 70
    deployment = instances.deployment
    admin_token = deployment.create_admin()
    servers = await instances.start()
    async with instances.http(servers[0]) as http:
        admin = Client(http, admin_token)
        first, last = [await create_course(admin, f"Raced {i}") for i in range(2)]
        cert = await create_certification(admin, "Raced", [first, last])
        learners = [await create_person(admin, f"Racer {i}") for i in range(learners_count)]
        for learner in learners:
            payload(
                await admin.data(START, {"id": cert}, token=learner.token), "startCertification"
            )
            done = {"input": {"courseId": first, "completed": True}}
            payload(await admin.data(RECORD, done, token=learner.token), "recordCourseProgress")
    assert await deployment.outbox("certification_completed") == []

    race = [learners[i % learners_count] for i in range(learners_count * per_learner)]
    finish = {"input": {"courseId": last, "completed": True}}
    connections = len(race) // 2
    async with (
        instances.http(servers[0], connections) as one,
        instances.http(servers[1], connections) as other,
    ):
        lanes = (Client(one), Client(other))
        async with instances.workers_serving(servers) as serving:
            responses = await asyncio.gather(
                *(
                    lanes[i % 2].post(RECORD, finish, token=learner.token)
                    for i, learner in enumerate(race)
                )
            )

    assert [r.status_code for r in responses] == [200] * len(race), [
        r.text for r in responses if r.status_code != 200
    ][:3]
    bodies = [r.json() for r in responses]
    assert [
        b for b in bodies if b.get("errors") or b["data"]["recordCourseProgress"]["errors"]
    ] == []
    enrollments = sorted(
        {db_pk(e["id"]) for b in bodies for e in b["data"]["recordCourseProgress"]["enrollments"]}
    )
    assert len(enrollments) == learners_count
    database = deployment.database
    awards = {
        i: await database.value("SELECT count(*) FROM award WHERE enrollment_id = $1", i)
        for i in enrollments
    }
    audited = {
        i: await database.value(
            "SELECT count(*) FROM audit_event WHERE action = 'award' AND object_id = $1", str(i)
        )
        for i in enrollments
    }
    assert awards == dict.fromkeys(enrollments, 1)
    assert audited == dict.fromkeys(enrollments, 1)
    # The outbox's rows: one certification_completed per learner (each has one enrollment;
    # an event's ordering key is its learner), each handed to the plugin once.
    committed = await deployment.outbox("certification_completed")
    per_learner = Counter(
        key
        for (key,) in await database.rows(
            "SELECT ordering_key FROM outbox_event WHERE type = 'certification_completed'"
        )
    )
    assert per_learner == {f"learner:{db_pk(learner.id)}": 1 for learner in learners}
    handed = await deployment.wait_for_events(len(committed), "certification_completed")
    assert sorted(e["id"] for e in handed) == sorted(event_id for event_id, _ in committed)
    assert sorted(db_pk(e["data"]["enrollmentId"]) for e in handed) == enrollments
    record_figures(
        "completion race, 2 instances x 2 workers",
        requests=len(race),
        enrollments=learners_count,
        awards=sum(awards.values()),
        completed_events=len(committed),
        workers_serving=[len(pids) for pids in serving],
    )


@dataclass
class Acknowledged:
    """The client's log: every course a server said it created, by instance."""

    courses: dict[int, str] = field(default_factory=dict)  # pk -> name
    by_instance: Counter[int] = field(default_factory=Counter)
    failed_in_flight: Counter[int] = field(default_factory=Counter)


async def writer(
    http: httpx.AsyncClient, token: str, lane: int, n: int, log: Acknowledged, stop: asyncio.Event
) -> None:
    admin = Client(http, token)
    sequence = 0
    while not stop.is_set():
        name = f"instance-{lane}-writer-{n}-{sequence}"
        sequence += 1
        try:
            response = await admin.post(CREATE_COURSE, {"name": name})
        except httpx.TransportError:
            log.failed_in_flight[lane] += 1
            return  # its instance is gone; a balancer would send the next one elsewhere
        assert response.status_code == 200, response.text
        result = response.json()["data"]["createCourse"]
        assert result["errors"] == [], result
        log.courses[db_pk(result["course"]["id"])] = name
        log.by_instance[lane] += 1


async def test_kill_9_of_one_instance_mid_load_loses_no_acknowledged_write(
    instances: Instances,
) -> None:
    """4 writers per instance create courses in a stream; after 1.5 s one instance (both its
    workers) is killed with SIGKILL, the other goes on for 1.5 s. Every course a server
    acknowledged is in the database, the surviving instance never failed a request, and a
    replacement instance serves at once."""
    writers = 4
    deployment = instances.deployment
    admin_token = deployment.create_admin()
    doomed, survivor = await instances.start()
    log = Acknowledged()
    stop = asyncio.Event()
    async with (
        instances.http(doomed, writers) as to_doomed,
        instances.http(survivor, writers) as to_survivor,
    ):
        tasks = [
            asyncio.create_task(writer(http, admin_token, lane, n, log, stop))
            for lane, http in enumerate((to_doomed, to_survivor))
            for n in range(writers)
        ]
        await asyncio.sleep(1.5)
        assert not any(task.done() for task in tasks), "writers stopped before the kill"
        doomed.kill()
        at_kill = log.by_instance[1]
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    assert log.by_instance[0] > 0 and log.by_instance[1] > at_kill, log.by_instance
    assert log.failed_in_flight[1] == 0
    stored = dict(await deployment.database.rows("SELECT id, name FROM course"))
    lost = {pk: name for pk, name in log.courses.items() if stored.get(pk) != name}
    assert lost == {}

    (replacement,) = await instances.start(1)
    async with instances.http(replacement) as http:
        admin = Client(http, admin_token)
        total = await admin.data("{ courses(first: 1) { totalCount } }")
        assert total["courses"]["totalCount"] >= len(log.courses)
        after = await admin.data(CREATE_COURSE, {"name": "after the kill"})
        assert after["createCourse"]["errors"] == []
    record_figures(
        "kill -9 of one of 2 instances mid-load",
        acknowledged_by_instance=[log.by_instance[0], log.by_instance[1]],
        acknowledged_by_survivor_after_kill=log.by_instance[1] - at_kill,
        in_flight_at_kill=log.failed_in_flight[0],
        acknowledged_lost=len(lost),
    )
