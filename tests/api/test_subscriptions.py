"""Live updates: GraphQL subscriptions over graphql-transport-ws on /graphql, against a real
uvicorn server in the test's event loop (its live feed woken by the app's own writes)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gql.api.ids import encode_id
from gql.api.subscriptions import LiveGraphQL
from gql.app import create_app
from gql.domain import live
from gql.domain.evidence import ReviewDecision, review_evidence, submit_evidence
from gql.plugins import create_plugin_host
from gql.settings import Settings
from gql.store.models import CertificationKind
from tests.conftest import QueryCounter
from tests.files.samples import BytesStream, pdf

from .conftest import GraphQLClient, World, make_certification, make_person
from .test_mutations import PROGRESS

PROTOCOL = "graphql-transport-ws"
ORIGIN = "https://spa.example.com"
ENROLLMENT = (
    "subscription { viewerEnrollmentChanged { id status progressPercent"
    " learner { name } certification { name } } }"
)
QUEUE = (
    "subscription { evidenceReviewQueueChanged { change evidenceId"
    " evidence { id status enrollment { learner { name } } } } }"
)
START = "mutation S($id: ID!) { startCertification(certificationId: $id) { errors { code } } }"
REDIS_URL = "redis://127.0.0.1:6379/0"
# Long enough for an event that was wrongly let through to arrive (the feed is woken at once).
QUIET_SECONDS = 0.5


@pytest.fixture
def settings(data_dir: Any) -> Settings:
    return Settings(data_dir=data_dir, cors_origins=[ORIGIN], subscriptions_max_connections=3)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app on a free port (its lifespan off: the `db` fixture opened the ORM), with its
    live feed running as the lifespan would run it; yields host:port."""
    feed: live.LiveFeed = app.state.live_feed
    host = app.state.services.plugins
    host.events_written = live.chain(host.events_written, feed.events_written)
    feed.start()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    for _ in range(500):
        if uv.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # its start-up error
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)
        await feed.stop()


@pytest_asyncio.fixture
async def server(db: None, app: Starlette) -> AsyncIterator[str]:
    async with serving(app) as address:
        yield address


@asynccontextmanager
async def connected(
    server: str, payload: dict[str, Any] | None, *, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"ws://{server}/graphql",
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
        open_timeout=5,
    ) as ws:
        if payload is not None:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield ws


async def receive(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def subscribed(ws: ClientConnection, query: str, op: str = "1") -> None:
    assert await receive(ws) == {"type": "connection_ack"}
    await ws.send(json.dumps({"type": "subscribe", "id": op, "payload": {"query": query}}))
    await asyncio.sleep(0.2)  # the subscription reaches the feed before the change is made


async def nothing_arrives(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await receive(ws, QUIET_SECONDS)


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await receive(ws)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_connection_init_without_a_valid_token_is_closed_4403(
    server: str, world: World
) -> None:
    for payload in ({}, {"Authorization": "Bearer cg_nonsense"}, {"token": ""}):
        async with connected(server, payload) as ws:
            assert await closed_with(ws) == 4403


async def test_each_accepted_form_of_the_token(server: str, world: World) -> None:
    token = world.learner.token
    for payload in (
        {"Authorization": f"Bearer {token}"},
        {"authorization": f"Bearer {token}"},
        {"token": token},
    ):
        async with connected(server, payload) as ws:
            assert await receive(ws) == {"type": "connection_ack"}


async def test_an_origin_not_in_cors_origins_is_refused(server: str, world: World) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connected(server, None, origin="https://evil.example.com"):
            pass
    assert refused.value.response.status_code == 403
    auth = {"token": world.learner.token}
    async with connected(server, auth, origin=ORIGIN) as ws:
        assert await receive(ws) == {"type": "connection_ack"}


async def test_connections_over_the_limit_are_closed_1013(server: str, world: World) -> None:
    auth = {"token": world.learner.token}
    async with (
        connected(server, auth) as a,
        connected(server, auth) as b,
        connected(server, auth) as c,
        connected(server, None) as over,
    ):
        assert await closed_with(over) == 1013
        for ws in (a, b, c):
            assert await receive(ws) == {"type": "connection_ack"}


async def test_the_learner_sees_their_own_enrollment_change_and_not_anothers(
    server: str, world: World
) -> None:
    cert = await make_certification("Cloud", world.course_ids[:2])
    course = world.course_gid(0)
    async with (
        httpx.AsyncClient(base_url=f"http://{server}") as http,
        connected(server, {"Authorization": f"Bearer {world.learner.token}"}) as ws,
    ):
        await subscribed(ws, ENROLLMENT)

        async def record(token: str) -> None:
            body = {
                "query": PROGRESS,
                "variables": {"input": {"courseId": course, "completed": True}},
            }
            answer = await http.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text

        # another learner's change is not theirs to see
        other_cert_start = {"query": START, "variables": {"id": encode_id("Certification", cert)}}
        for token in (world.other.token, world.learner.token):
            answer = await http.post(
                "/graphql", json=other_cert_start, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.json()["data"]["startCertification"]["errors"] == []
        # the learner's own start (enrolled, then started) arrives
        first = await receive(ws)
        assert first["type"] == "next" and first["id"] == "1"
        enrollment = first["payload"]["data"]["viewerEnrollmentChanged"]
        assert enrollment["learner"] == {"name": "Lea Learner"}
        while True:  # enrolled and started: each arrives
            try:
                await receive(ws, QUIET_SECONDS)
            except TimeoutError:
                break

        await record(world.other.token)
        await nothing_arrives(ws)
        await record(world.learner.token)
        changed = (await receive(ws))["payload"]["data"]["viewerEnrollmentChanged"]
        assert changed["id"] == enrollment["id"]
        assert changed["progressPercent"] == 50  # one course of two done
        assert changed["status"] == "STARTED"


async def test_the_review_queue_is_for_reviewers_and_shows_their_reports_only(
    server: str, app: Starlette, world: World
) -> None:
    cert = await make_certification("AWS", [], kind=CertificationKind.EXTERNAL, issuer="Amazon")
    blobs = app.state.services.blobs
    stranger = await make_person("Sam Stranger", world.learner.user.role)

    async def submit(person_actor: Any) -> int:
        row = await submit_evidence(
            person_actor,
            cert,
            BytesStream(pdf()),
            blobs=blobs,
            filename="proof.pdf",
            declared_type="application/pdf",
        )
        return row.id

    async with connected(server, {"token": world.learner.token}) as ws:
        await subscribed(ws, QUEUE)
        refused = await receive(ws)
        assert refused["type"] in ("next", "error")
        errors = refused["payload"]["errors"] if refused["type"] == "next" else refused["payload"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"

    async with (
        connected(server, {"token": world.manager.token}) as manager,
        connected(server, {"token": world.admin.token}) as admin,
    ):
        await subscribed(manager, QUEUE)
        await subscribed(admin, QUEUE)
        await submit(stranger.actor)  # not the manager's report
        seen = (await receive(admin))["payload"]["data"]["evidenceReviewQueueChanged"]
        assert seen["change"] == "SUBMITTED"
        assert seen["evidence"]["enrollment"]["learner"] == {"name": "Sam Stranger"}
        await nothing_arrives(manager)

        evidence_id = await submit(world.learner.actor)
        for ws in (manager, admin):
            change = (await receive(ws))["payload"]["data"]["evidenceReviewQueueChanged"]
            assert change["change"] == "SUBMITTED"
            assert change["evidenceId"] == encode_id("Evidence", evidence_id)
            assert change["evidence"]["status"] == "PENDING"
            assert change["evidence"]["enrollment"]["learner"] == {"name": "Lea Learner"}

        await review_evidence(world.manager.actor, evidence_id, ReviewDecision.APPROVE)
        for ws in (manager, admin):
            change = (await receive(ws))["payload"]["data"]["evidenceReviewQueueChanged"]
            assert change["change"] == "REVIEWED"
            assert change["evidence"]["status"] == "APPROVED"


async def test_redis_wakes_the_feed_of_another_process(
    db: None, world: World, settings: Settings
) -> None:
    """Two apps on one SQLite file, as two processes would be, polling once a minute: the
    writer's commit reaches the other's subscriber through Redis, at once."""
    prefix = f"certgraph-test:{uuid.uuid4().hex}:"
    shared = settings.model_copy(
        update={
            "redis_url": REDIS_URL,
            "redis_key_prefix": prefix,
            "subscriptions_poll_seconds": 60,
        }
    )
    watched = create_app(shared, plugins=create_plugin_host())
    writer = create_app(shared, plugins=create_plugin_host())
    cert = await make_certification("Cloud", world.course_ids[:1])
    transport = httpx.ASGITransport(app=writer)
    async with (
        serving(watched) as address,
        serving(writer),
        httpx.AsyncClient(transport=transport, base_url="http://certgraph.test") as http,
        connected(address, {"token": world.learner.token}) as ws,
    ):
        await subscribed(ws, ENROLLMENT)
        await asyncio.sleep(0.5)  # the watched feed is subscribed to the channel
        answer = await http.post(
            "/graphql",
            json={"query": START, "variables": {"id": encode_id("Certification", cert)}},
            headers={"Authorization": f"Bearer {world.learner.token}"},
        )
        assert answer.json()["data"]["startCertification"]["errors"] == [], answer.text
        changed = (await receive(ws, 2.0))["payload"]["data"]["viewerEnrollmentChanged"]
        assert changed["certification"] == {"name": "Cloud"}
    for app in (watched, writer):  # what their lifespans would close
        await app.state.rate_limiter.aclose()


async def test_a_subscriber_that_falls_behind_is_dropped_not_buffered() -> None:
    subscriber = live.Subscriber(live.Interest(), asyncio.Queue(maxsize=2))
    events = [live.LiveEvent(seq, "started", 1, 1, None, None) for seq in range(1, 4)]
    for event in events[:2]:
        subscriber.offer(event)
    assert await subscriber.next() == events[0]
    subscriber.offer(events[2])
    subscriber.offer(events[2])  # one more than the queue holds
    assert subscriber.queue.qsize() == 2  # never more than its size
    with pytest.raises(live.SlowConsumer):
        await subscriber.next()


async def test_the_feed_reads_nothing_while_nobody_is_subscribed(
    db: None, world: World, sql_queries: QueryCounter
) -> None:
    feed = live.LiveFeed(poll_seconds=0.01, queue_size=10)
    feed.start()
    try:
        sql_queries.reset()
        feed.wake()
        await asyncio.sleep(0.1)  # ten polls' time, and a wake
        assert sql_queries.count == 0
        async with feed.subscribe(live.Interest()):
            await asyncio.sleep(0.1)
            assert sql_queries.count > 0
    finally:
        await feed.stop()


async def test_a_subscription_posted_over_http_is_refused_unrun(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run(ENROLLMENT, token=world.learner.token)
    assert result["data"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_REQUEST"]


async def test_a_connection_whose_subscriber_falls_behind_is_closed_1008(
    app: Starlette, server: str, world: World
) -> None:
    feed: live.LiveFeed = app.state.live_feed
    feed.queue_size = 1
    async with connected(server, {"token": world.learner.token}) as ws:
        await subscribed(ws, ENROLLMENT)
        (subscriber,) = feed._subscribers
        learner = world.learner.user.id
        for seq in range(3):  # faster than it can be read: nothing awaits in between
            subscriber.offer(live.LiveEvent(10**9 + seq, "started", learner, -1, None, None))
        assert await closed_with(ws) == 1008


def live_graphql(app: Starlette) -> LiveGraphQL:
    """The app's WebSocket endpoint on /graphql."""
    for route in app.routes:
        if isinstance(route, WebSocketRoute) and isinstance(route.app, LiveGraphQL):
            return route.app
    raise AssertionError("no LiveGraphQL route")


async def test_subscribers_of_one_viewer_share_one_execution_per_event(
    app: Starlette, server: str, world: World
) -> None:
    """Five connections of one learner: each event is executed once and every connection is
    sent that result; the review queue of two viewers (a manager, an admin: three connections
    each) is executed once per viewer, each seeing their own."""
    endpoint = live_graphql(app)
    endpoint.max_connections = 10
    results = endpoint.results
    cert = await make_certification("Cloud", world.course_ids[:2])
    start = {"query": START, "variables": {"id": encode_id("Certification", cert)}}
    async with AsyncExitStack() as stack:
        tabs = [
            await stack.enter_async_context(connected(server, {"token": world.learner.token}))
            for _ in range(5)
        ]
        for ws in tabs:
            await subscribed(ws, ENROLLMENT)
        before = results.executions
        async with httpx.AsyncClient(base_url=f"http://{server}") as http:
            answer = await http.post(
                "/graphql", json=start, headers={"Authorization": f"Bearer {world.learner.token}"}
            )
        assert answer.json()["data"]["startCertification"]["errors"] == []
        received = []
        for ws in tabs:
            messages = [await receive(ws)]
            while True:  # enrolled and started: each arrives
                try:
                    messages.append(await receive(ws, QUIET_SECONDS))
                except TimeoutError:
                    break
            received.append([m["payload"] for m in messages])
        assert len(received[0]) >= 1
        assert all(each == received[0] for each in received)  # the same changes, each once
        assert results.executions - before == len(received[0])  # one execution per change

    blobs = app.state.services.blobs
    queue = (
        "subscription Queue { evidenceReviewQueueChanged { change evidence { id status"
        " enrollment { learner { name } } } } }"
    )
    external = await make_certification("AWS", [], kind=CertificationKind.EXTERNAL, issuer="Amazon")
    async with AsyncExitStack() as stack:
        viewers = {"manager": world.manager.token, "admin": world.admin.token}
        sockets = {
            name: [
                await stack.enter_async_context(connected(server, {"token": token}))
                for _ in range(3)
            ]
            for name, token in viewers.items()
        }
        for each in sockets.values():
            for ws in each:
                await subscribed(ws, queue)
        before = results.executions
        await submit_evidence(
            world.learner.actor,
            external,
            BytesStream(pdf()),
            blobs=blobs,
            filename="proof.pdf",
            declared_type="application/pdf",
        )
        for each in sockets.values():
            seen = [(await receive(ws))["payload"] for ws in each]
            assert all(payload == seen[0] for payload in seen)
            change = seen[0]["data"]["evidenceReviewQueueChanged"]
            assert change["evidence"]["enrollment"]["learner"] == {"name": "Lea Learner"}
        assert results.executions - before == 2  # one per viewer, not one per connection


async def test_a_refused_connection_and_a_refused_subscription_are_told_in_dutch(
    server: str, world: World
) -> None:
    """connection_init's Accept-Language (a browser cannot set a WebSocket's headers)."""
    refused = {"Authorization": "Bearer cg_nonsense", "Accept-Language": "nl-NL,nl;q=0.9"}
    async with connected(server, refused) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Verboden")
    async with connected(server, {"token": world.learner.token, "language": "nl"}) as ws:
        await subscribed(ws, QUEUE)
        answer = await receive(ws)
        errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
        assert errors[0]["message"] == "alleen managers en beheerders beoordelen bewijs"
    async with connected(server, {"token": world.learner.token}) as ws:  # English by default
        await subscribed(ws, QUEUE)
        answer = await receive(ws)
        errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
        assert errors[0]["message"] == "only managers and admins review evidence"
