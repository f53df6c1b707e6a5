"""Reliability under concurrency, against `certgraph serve --workers 2` over real HTTP:
exactly one award per completion across worker processes, and no lost progress update.

Events are delivered by the workers' dispatchers after the answers (the outbox): the tests
count what was committed to the outbox, then wait for the probe plugin to have been handed
each of them, once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx

from tests.proof.live import (
    RECORD,
    START,
    Client,
    Deployment,
    Server,
    create_certification,
    create_course,
    create_person,
    db_pk,
    payload,
    record_figures,
)

CONCURRENT_COMPLETIONS = 50
LEARNERS = 3  # each gets its own burst of 50, all fired together
COURSES = 8
# Rounds of the exactly-once scenario, each on a certification and learners of its own, until
# one round's burst was served by both workers (see the test).
MAX_ROUNDS = 4


def http_client(url: str) -> httpx.AsyncClient:
    # A connection per request in flight: the requests really are concurrent. All of them
    # kept open afterwards, so the test can see which worker accepted each.
    most = LEARNERS * CONCURRENT_COMPLETIONS + 10
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    return httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits)


async def fire(client: Client, variables: dict[str, Any], token: str) -> httpx.Response:
    return await client.post(RECORD, variables, token=token)


async def completion_burst_round(
    deployment: Deployment, server: Server, admin_token: str, round_no: int
) -> dict[str, Any]:
    """One round of the exactly-once scenario: a fresh certification of 2 courses, LEARNERS
    fresh learners with the first course done, then a burst of completions of the last one.
    Every check is scoped to this round (its enrollments, its courses, the events committed
    since it began) and keeps exact counts. Returns the round's figures, including which
    worker process accepted the burst's connections."""
    before = {event_id for event_id, _ in await deployment.outbox()}

    async def committed_now(kind: str) -> list[str]:
        return [i for i, _ in await deployment.outbox(kind) if i not in before]

    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        first, last = [await create_course(admin, f"Exactly once {round_no}.{i}") for i in range(2)]
        cert = await create_certification(admin, f"Exactly Once {round_no}", [first, last])
        learners = [await create_person(admin, f"Learner {round_no}.{i}") for i in range(LEARNERS)]
        for learner in learners:
            payload(
                await admin.data(START, {"id": cert}, token=learner.token), "startCertification"
            )
            done = {"input": {"courseId": first, "completed": True}}
            payload(await admin.data(RECORD, done, token=learner.token), "recordCourseProgress")
        assert await committed_now("certification_completed") == []

    # Each request completes the last mandatory course: any of them could be the one.
    burst = [
        (learner, {"input": {"courseId": last, "completed": True}})
        for learner in learners
        for _ in range(CONCURRENT_COMPLETIONS)
    ]
    random.Random(6 + round_no).shuffle(burst)
    # A client of its own: every connection it opens carries burst requests only.
    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        responses = await asyncio.gather(
            *(fire(admin, variables, learner.token) for learner, variables in burst)
        )
        # Which worker process accepted each of the client's connections, read while the
        # client still holds them all open (see http_client).
        connections = server.connections_by_process()

    statuses = [r.status_code for r in responses]
    bodies = [r.json() for r in responses]
    server_errors = sum(1 for s in statuses if s >= 500)
    assert server_errors == 0, [r.text for r in responses if r.status_code >= 500][:3]
    assert statuses == [200] * len(burst)
    assert [
        b for b in bodies if b.get("errors") or b["data"]["recordCourseProgress"]["errors"]
    ] == []
    # Every answer already sees the certification completed (the award committed first).
    assert {
        e["status"] for b in bodies for e in b["data"]["recordCourseProgress"]["enrollments"]
    } == {"COMPLETED"}

    enrollment_ids = sorted(
        {db_pk(e["id"]) for b in bodies for e in b["data"]["recordCourseProgress"]["enrollments"]}
    )
    assert len(enrollment_ids) == LEARNERS
    database = deployment.database
    awards = {
        i: await database.value("SELECT count(*) FROM award WHERE enrollment_id = $1", i)
        for i in enrollment_ids
    }
    audit_awards = {
        i: await database.value(
            "SELECT count(*) FROM audit_event WHERE action = 'award' AND object_id = $1", str(i)
        )
        for i in enrollment_ids
    }
    assert awards == dict.fromkeys(enrollment_ids, 1)
    assert audit_awards == dict.fromkeys(enrollment_ids, 1)
    # One certification_completed event committed per award, and each handed to the plugin
    # once (by whichever worker's dispatcher took it). The probe's log holds the earlier
    # rounds' events too: wait for all committed so far, then take this round's enrollments'.
    committed = await committed_now("certification_completed")
    everything = await deployment.outbox("certification_completed")
    completed = [
        e
        for e in await deployment.wait_for_events(len(everything), "certification_completed")
        if db_pk(e["data"]["enrollmentId"]) in enrollment_ids
    ]
    events = Counter(db_pk(e["data"]["enrollmentId"]) for e in completed)
    assert len(committed) == LEARNERS
    assert sorted(e["id"] for e in completed) == sorted(committed)
    assert events == dict.fromkeys(enrollment_ids, 1)
    # A progress_recorded event per report: the first course's, then one per burst request.
    committed_progress = await committed_now("progress_recorded")
    assert len(committed_progress) == LEARNERS + len(burst)
    everything = await deployment.outbox("progress_recorded")
    recorded = [
        e
        for e in await deployment.wait_for_events(len(everything), "progress_recorded")
        if e["data"]["course"]["id"] in (first, last)
    ]
    assert sorted(e["id"] for e in recorded) == sorted(committed_progress)
    burst_events = [e for e in recorded if e["data"]["course"]["id"] == last]
    assert len(burst_events) == len(burst)
    return {
        "requests": len(burst),
        "awards": sum(awards.values()),
        "award_audit_rows": sum(audit_awards.values()),
        "completed_events": len(completed),
        "progress_events": len(recorded),
        "connections": connections,
        "delivering_processes": len({e["pid"] for e in recorded}),
        "http_5xx": server_errors,
    }


async def test_concurrent_completions_award_exactly_once_across_processes(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(workers=2).start()
    # The burst must really be served by both worker processes: each holding some of the
    # burst client's connections, each of which carried at least one burst request. Nothing
    # guarantees that for one burst: the workers share the listening socket, asyncio accepts
    # up to 100 waiting connections per wake-up, and on a busy 2-core machine one worker has
    # taken all 150 before the other was scheduled. So the scenario runs in rounds, each fully
    # checked on its own, until a round's burst was spread over both workers. (The events say
    # nothing here: their pid is the delivering dispatcher's.)
    rounds: list[dict[str, Any]] = []
    while len(rounds) < MAX_ROUNDS:
        rounds.append(await completion_burst_round(deployment, server, admin_token, len(rounds)))
        if len(rounds[-1]["connections"]) == 2:
            break
    spread = rounds[-1]
    assert len(spread["connections"]) == 2, (
        f"no burst in {len(rounds)} rounds was served by both workers; connections accepted "
        f"per worker pid, by round: {[r['connections'] for r in rounds]}"
    )
    # Across all rounds: every committed event handed to the plugin, once.
    committed = await deployment.outbox()
    delivered = await deployment.wait_for_events(len(committed))
    assert sorted(e["id"] for e in delivered) == sorted(event_id for event_id, _ in committed)
    record_figures(
        "exactly once (2 workers)",
        requests=spread["requests"],
        enrollments=LEARNERS,
        awards=spread["awards"],
        award_audit_rows=spread["award_audit_rows"],
        completed_events=spread["completed_events"],
        progress_events=spread["progress_events"],
        worker_processes=len(spread["connections"]),
        connections_per_worker=sorted(spread["connections"].values()),
        delivering_processes=spread["delivering_processes"],
        http_5xx=spread["http_5xx"],
        rounds=len(rounds),
    )


async def test_concurrent_progress_on_different_courses_is_never_lost(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(workers=2).start()
    async with http_client(server.url) as http:
        admin = Client(http, admin_token)
        courses = [await create_course(admin, f"Lost update {i}") for i in range(COURSES)]
        cert = await create_certification(admin, "No Lost Update", courses)
        learner = await create_person(admin, "Busy Learner")
        payload(await admin.data(START, {"id": cert}, token=learner.token), "startCertification")

        # Every course gets percents 10..90 in random order, half of them a completion too;
        # all of it at once, from two processes, about one learner.
        percents = list(range(10, 100, 10))
        reports: list[dict[str, Any]] = [
            {"input": {"courseId": course, "percent": p}} for course in courses for p in percents
        ]
        completed = courses[: COURSES // 2]
        reports += [{"input": {"courseId": c, "completed": True}} for c in completed]
        random.Random(2).shuffle(reports)
        responses = await asyncio.gather(*(fire(admin, r, learner.token) for r in reports))
        assert [r.status_code for r in responses] == [200] * len(reports)
        assert [r.json() for r in responses if r.json().get("errors")] == []

        learner_pk = db_pk(learner.id)
        progress_sql = (
            "SELECT course_id, percent, status FROM course_progress WHERE learner_id = $1"
        )
        landed = {
            course_id: (percent, status)
            for course_id, percent, status in await deployment.database.rows(
                progress_sql, learner_pk
            )
        }
        # Every course at the highest percent reported, or completed: no report was lost.
        assert landed == {
            db_pk(c): (100, "COMPLETED") if c in completed else (90, "IN_PROGRESS") for c in courses
        }
        assert await deployment.outbox("certification_completed") == []

        # The rest complete together: the certification completes once, on the last one.
        rest = [{"input": {"courseId": c, "completed": True}} for c in courses[COURSES // 2 :]]
        finals = await asyncio.gather(*(fire(admin, r, learner.token) for r in rest))
        assert [r.status_code for r in finals] == [200] * len(rest)

    final = {
        course_id: (percent, status)
        for course_id, percent, status in await deployment.database.rows(progress_sql, learner_pk)
    }
    assert final == dict.fromkeys((db_pk(c) for c in courses), (100, "COMPLETED"))
    enrollment_ids = [
        row[0]
        for row in await deployment.database.rows(
            "SELECT id FROM enrollment WHERE learner_id = $1", learner_pk
        )
    ]
    assert len(enrollment_ids) == 1
    awards = await deployment.database.value(
        "SELECT count(*) FROM award WHERE enrollment_id = $1", enrollment_ids[0]
    )
    assert awards == 1
    committed = await deployment.outbox()
    assert [kind for _, kind in committed].count("certification_completed") == 1
    assert [kind for _, kind in committed].count("progress_recorded") == len(reports) + len(rest)
    # Every committed event reaches the plugin, once.
    delivered = await deployment.wait_for_events(len(committed))
    assert sorted(e["id"] for e in delivered) == sorted(event_id for event_id, _ in committed)
    assert len(deployment.events("certification_completed")) == 1
    progress_events = deployment.events("progress_recorded")
    assert len(progress_events) == len(reports) + len(rest)
    record_figures(
        "no lost update (2 workers)",
        requests=len(reports) + len(rest),
        courses=COURSES,
        rows_landed=len(landed),
        awards=awards,
        http_5xx=sum(1 for r in [*responses, *finals] if r.status_code >= 500),
    )
