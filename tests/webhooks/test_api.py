"""The webhook admin API through HTTP: create (the secret answered once), update (only what
is given), delete, rotate, list with recent deliveries, redeliver; admins only; bad URLs,
refused addresses and unknown event types answered with a code and nothing written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from standardwebhooks import Webhook as Verifier

from gql.api.ids import decode_id, encode_id
from gql.domain import enrollments
from gql.domain.dispatcher import DispatchConfig, Dispatcher
from gql.domain.webhooks import KNOWN_EVENT_TYPES, AddressPolicy, create_webhook
from gql.events import Event
from gql.plugins import PluginHost
from gql.store.models import AuditEvent, EventDelivery, OutboxEvent, Webhook
from gql.webhooks import SendResult
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification

PUBLIC_URL = "https://93.184.215.14/hooks/certgraph"  # an IP literal: no DNS in tests

CREATE = """
mutation C($input: CreateWebhookInput!) {
  createWebhook(input: $input) {
    webhook { id url events description enabled createdAt updatedAt }
    secret
    errors { code message field }
  }
}"""
UPDATE = """
mutation U($input: UpdateWebhookInput!) {
  updateWebhook(input: $input) {
    webhook { id url events description enabled updatedAt }
    errors { code message field }
  }
}"""
DELETE = """
mutation D($id: ID!) { deleteWebhook(id: $id) { deletedId errors { code message field } } }"""
ROTATE = """
mutation R($id: ID!) {
  rotateWebhookSecret(id: $id) { webhook { id url } secret errors { code message field } }
}"""
DELIVERY_FIELDS = """
  eventId eventType attempt state statusCode lastAttemptAt nextAttemptAt deliveredAt error
"""
REDELIVER = (
    "mutation X($eventId: ID!, $webhookId: ID) { redeliverEvent(eventId: $eventId, "
    "webhookId: $webhookId) { deliveries {"
    + DELIVERY_FIELDS
    + "} errors { code message field } } }"
)
LIST = (
    "query L($first: Int, $after: String) { webhooks(first: $first, after: $after) {"
    " totalCount pageInfo { hasNextPage endCursor }"
    " edges { node { id url events description enabled createdAt"
    " recentDeliveries(first: 10) {" + DELIVERY_FIELDS + "} } } } }"
)


def pk_of(global_id: str) -> int:
    pk = decode_id(global_id, "Webhook")
    assert pk is not None
    return pk


async def create(client: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("url", PUBLIC_URL)
    data = await client.data(CREATE, {"input": fields}, token=token)
    payload: dict[str, Any] = data["createWebhook"]
    return payload


async def audit_text() -> str:
    rows = await AuditEvent.all().values_list("action", "before", "after", "detail")
    return json.dumps(rows, default=str)


async def test_create_answers_the_secret_once_and_never_again(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(
        graphql_client,
        world.admin.token,
        events=["certification_completed", "enrolled", "enrolled"],
        description="  Slack bridge ",
    )
    assert payload["errors"] == []
    hook = payload["webhook"]
    assert hook["url"] == PUBLIC_URL
    assert hook["events"] == ["enrolled", "certification_completed"]  # once each, catalogue order
    assert hook["description"] == "Slack bridge"
    assert hook["enabled"] is True
    secret = payload["secret"]
    assert secret.startswith("whsec_")
    Verifier(secret)  # a secret receivers can verify with
    row = await Webhook.get(id=pk_of(hook["id"]))
    assert row.secret == secret

    # nowhere else: not in the list, not through node, not in the audit log
    listed = await graphql_client.run(LIST, token=world.admin.token)
    node = await graphql_client.run(
        "query N($id: ID!) { node(id: $id) { id ... on Webhook { url events } } }",
        {"id": hook["id"]},
        token=world.admin.token,
    )
    assert listed["data"]["webhooks"]["edges"][0]["node"]["id"] == hook["id"]
    assert node["data"]["node"] == {"id": hook["id"], "url": PUBLIC_URL, "events": hook["events"]}
    key = secret.removeprefix("whsec_")
    assert key not in json.dumps(listed) + json.dumps(node) + await audit_text()
    asked = await graphql_client.run(
        "{ webhooks { edges { node { secret } } } }", token=world.admin.token
    )
    assert asked["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    audit = await AuditEvent.get(action="createWebhook")
    assert audit.object_type == "Webhook" and audit.object_id == str(row.id)
    assert audit.after == {
        "url": PUBLIC_URL,
        "events": ["enrolled", "certification_completed"],
        "description": "Slack bridge",
        "enabled": True,
    }


async def test_no_events_means_every_type_and_the_types_are_listed(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(graphql_client, world.admin.token)
    assert payload["webhook"]["events"] == []
    assert payload["webhook"]["description"] == ""
    data = await graphql_client.data("{ webhookEventTypes }", token=world.admin.token)
    assert data["webhookEventTypes"] == list(KNOWN_EVENT_TYPES)
    assert "certification_completed" in data["webhookEventTypes"]


async def test_update_changes_only_the_fields_given(
    graphql_client: GraphQLClient, world: World
) -> None:
    created = await create(
        graphql_client, world.admin.token, events=["enrolled"], description="first"
    )
    hook_id = created["webhook"]["id"]
    token = world.admin.token

    data = await graphql_client.data(
        UPDATE, {"input": {"id": hook_id, "description": "second"}}, token=token
    )
    hook = data["updateWebhook"]["webhook"]
    assert data["updateWebhook"]["errors"] == []
    assert (hook["url"], hook["events"], hook["description"], hook["enabled"]) == (
        PUBLIC_URL,
        ["enrolled"],
        "second",
        True,
    )

    data = await graphql_client.data(
        UPDATE, {"input": {"id": hook_id, "enabled": False, "events": []}}, token=token
    )
    hook = data["updateWebhook"]["webhook"]
    assert (hook["url"], hook["events"], hook["description"], hook["enabled"]) == (
        PUBLIC_URL,
        [],
        "second",
        False,
    )

    other_url = "https://93.184.215.15/v2"
    data = await graphql_client.data(
        UPDATE, {"input": {"id": hook_id, "url": other_url}}, token=token
    )
    hook = data["updateWebhook"]["webhook"]
    assert (hook["url"], hook["events"], hook["description"], hook["enabled"]) == (
        other_url,
        [],
        "second",
        False,
    )
    row = await Webhook.get(enabled=False)
    assert row.secret == created["secret"]  # an update never touches the secret

    updates = await AuditEvent.filter(action="updateWebhook").order_by("id")
    assert [(a.before, a.after) for a in updates] == [
        ({"description": "first"}, {"description": "second"}),
        ({"enabled": True, "events": ["enrolled"]}, {"enabled": False, "events": []}),
        ({"url": PUBLIC_URL}, {"url": other_url}),
    ]


async def test_update_and_delete_of_an_unknown_webhook_are_not_found(
    graphql_client: GraphQLClient, world: World
) -> None:
    token = world.admin.token
    missing = encode_id("Webhook", 999)
    data = await graphql_client.data(
        UPDATE, {"input": {"id": missing, "enabled": False}}, token=token
    )
    assert data["updateWebhook"]["errors"] == [
        {"code": "NOT_FOUND", "message": "no such webhook", "field": ["input", "id"]}
    ]
    data = await graphql_client.data(DELETE, {"id": "nonsense"}, token=token)
    (error,) = data["deleteWebhook"]["errors"]
    assert error["code"] == "NOT_FOUND"
    assert "{ webhooks { edges { node { id url } } } }" in error["message"]


async def test_delete_removes_the_endpoint_and_its_deliveries(
    graphql_client: GraphQLClient, world: World, plugin_host: PluginHost
) -> None:
    created = await create(graphql_client, world.admin.token)
    hook_id = created["webhook"]["id"]
    sender = RecordingSender([SendResult(204, None)])
    await emit_events(world)
    await run_dispatcher(plugin_host, sender)
    assert await EventDelivery.filter(webhook_id__not_isnull=True).count() == 2

    data = await graphql_client.data(DELETE, {"id": hook_id}, token=world.admin.token)
    assert data["deleteWebhook"] == {"deletedId": hook_id, "errors": []}
    assert await Webhook.all().count() == 0
    assert await EventDelivery.filter(webhook_id__not_isnull=True).count() == 0
    listed = await graphql_client.data(LIST, token=world.admin.token)
    assert listed["webhooks"]["totalCount"] == 0
    audit = await AuditEvent.get(action="deleteWebhook")
    assert audit.before is not None and audit.before["url"] == PUBLIC_URL

    again = await graphql_client.data(DELETE, {"id": hook_id}, token=world.admin.token)
    assert again["deleteWebhook"]["errors"][0]["code"] == "NOT_FOUND"


async def test_rotate_answers_a_new_secret_once(
    graphql_client: GraphQLClient, world: World
) -> None:
    created = await create(graphql_client, world.admin.token)
    data = await graphql_client.data(
        ROTATE, {"id": created["webhook"]["id"]}, token=world.admin.token
    )
    rotated = data["rotateWebhookSecret"]
    assert rotated["errors"] == []
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert (await Webhook.get()).secret == rotated["secret"]
    audit = await AuditEvent.get(action="rotateWebhookSecret")
    assert audit.before is None and audit.after is None
    assert rotated["secret"].removeprefix("whsec_") not in await audit_text()


async def test_the_list_pages_by_cursor(graphql_client: GraphQLClient, world: World) -> None:
    ids = [
        (await create(graphql_client, world.admin.token, description=f"n{i}"))["webhook"]["id"]
        for i in range(3)
    ]
    first = await graphql_client.data(LIST, {"first": 2}, token=world.admin.token)
    page = first["webhooks"]
    assert [e["node"]["id"] for e in page["edges"]] == ids[:2]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"] is True
    second = await graphql_client.data(
        LIST, {"first": 2, "after": page["pageInfo"]["endCursor"]}, token=world.admin.token
    )
    assert [e["node"]["id"] for e in second["webhooks"]["edges"]] == ids[2:]
    bad = await graphql_client.run(LIST, {"after": "junk"}, token=world.admin.token)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["learner", "manager"])
async def test_only_admins_manage_webhooks(
    graphql_client: GraphQLClient, world: World, who: str
) -> None:
    created = await create(graphql_client, world.admin.token)
    hook_id = created["webhook"]["id"]
    before = await Webhook.get()
    token = getattr(world, who).token
    attempts: list[tuple[str, dict[str, Any]]] = [
        (CREATE, {"input": {"url": "https://93.184.215.16/x"}}),
        (UPDATE, {"input": {"id": hook_id, "url": "https://93.184.215.16/x", "enabled": False}}),
        (DELETE, {"id": hook_id}),
        (ROTATE, {"id": hook_id}),
        (REDELIVER, {"eventId": "8d9f1f6e-6a1b-4d5c-9a55-3f4f5e6a7b8c"}),
        (REDELIVER, {"eventId": "x" * 5000}),  # refused without a 500: no column too small
        (LIST, {}),
    ]
    for document, variables in attempts:
        result = await graphql_client.run(document, variables, token=token)
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", result
        assert not any((result["data"] or {}).values())  # a mutation nulls only its own field
    node = await graphql_client.data(
        "query N($id: ID!) { node(id: $id) { id } }", {"id": hook_id}, token=token
    )
    assert node["node"] is None
    after = await Webhook.get()
    assert (after.url, after.enabled, after.secret) == (before.url, before.enabled, before.secret)
    assert await Webhook.all().count() == 1
    denied = await AuditEvent.filter(action__startswith="denied:").values_list("action", flat=True)
    assert set(denied) >= {
        "denied:createWebhook",
        "denied:updateWebhook",
        "denied:deleteWebhook",
        "denied:rotateWebhookSecret",
        "denied:redeliverEvent",
        "denied:webhooks",
    }


# -- refused input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code", "says"),
    [
        ("ftp://93.184.215.14/x", "INVALID_INPUT", "http:// or https://"),
        ("not a url", "INVALID_INPUT", "spaces"),
        ("", "INVALID_INPUT", "must not be empty"),
        ("https://", "INVALID_INPUT", "must name a host"),
        ("https://93.184.215.14:0/x", "INVALID_INPUT", "port"),
        ("https://me:pw@93.184.215.14/x", "INVALID_INPUT", "user name or password"),
        ("https://" + "a" * 2000 + ".com/", "INVALID_INPUT", "at most 2000"),
        ("http://127.0.0.1:8080/hook", "NOT_ALLOWED", "loopback"),
        ("http://localhost/hook", "NOT_ALLOWED", "localhost resolves to"),
        ("http://127.1/hook", "NOT_ALLOWED", "loopback"),
        ("http://[::1]/hook", "NOT_ALLOWED", "loopback"),
        ("http://10.0.0.7/hook", "NOT_ALLOWED", "private"),
        ("http://192.168.1.1/hook", "NOT_ALLOWED", "private"),
        ("http://169.254.169.254/latest/meta-data", "NOT_ALLOWED", "link-local"),
        ("http://[fe80::1]/hook", "NOT_ALLOWED", "link-local"),
        ("http://[::ffff:10.0.0.1]/hook", "NOT_ALLOWED", "private"),
        ("http://[::ffff:127.0.0.1]/hook", "NOT_ALLOWED", "loopback"),
        ("http://[fd00::1]/hook", "NOT_ALLOWED", "private"),
        ("http://0.0.0.0/hook", "NOT_ALLOWED", "unspecified"),
        ("http://224.0.0.1/hook", "NOT_ALLOWED", "multicast"),
        ("http://240.0.0.1/hook", "NOT_ALLOWED", "private"),
        ("http://100.64.0.1/hook", "NOT_ALLOWED", "non-global"),
    ],
)
async def test_a_bad_or_private_url_is_refused_and_nothing_written(
    graphql_client: GraphQLClient, world: World, url: str, code: str, says: str
) -> None:
    audits = await AuditEvent.all().count()
    payload = await create(graphql_client, world.admin.token, url=url)
    assert payload["webhook"] is None and payload["secret"] is None
    (error,) = payload["errors"]
    assert (error["code"], error["field"]) == (code, ["input", "url"])
    assert says in error["message"]
    assert await Webhook.all().count() == 0
    assert await AuditEvent.all().count() == audits


async def test_an_update_to_a_private_url_is_refused_and_nothing_changes(
    graphql_client: GraphQLClient, world: World
) -> None:
    created = await create(graphql_client, world.admin.token, description="kept")
    audits = await AuditEvent.all().count()
    data = await graphql_client.data(
        UPDATE,
        {
            "input": {
                "id": created["webhook"]["id"],
                "url": "http://169.254.169.254/",
                "description": "changed",
            }
        },
        token=world.admin.token,
    )
    assert data["updateWebhook"]["webhook"] is None
    assert data["updateWebhook"]["errors"][0]["code"] == "NOT_ALLOWED"
    row = await Webhook.get()
    assert (row.url, row.description) == (PUBLIC_URL, "kept")
    assert await AuditEvent.all().count() == audits


async def test_unknown_event_types_are_refused_with_the_known_ones(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(
        graphql_client, world.admin.token, events=["enrolled", "bogus", "Enrolled"]
    )
    (error,) = payload["errors"]
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == ["input", "events", "1"]
    assert error["message"].startswith("unknown event types 'bogus', 'Enrolled': the known")
    for name in KNOWN_EVENT_TYPES:
        assert name in error["message"]
    assert payload["secret"] is None
    assert await Webhook.all().count() == 0

    created = await create(graphql_client, world.admin.token, events=["enrolled"])
    data = await graphql_client.data(
        UPDATE,
        {"input": {"id": created["webhook"]["id"], "events": ["started", "nope"]}},
        token=world.admin.token,
    )
    assert data["updateWebhook"]["errors"][0]["field"] == ["input", "events", "1"]
    assert (await Webhook.get()).event_types == ["enrolled"]


async def test_private_addresses_are_accepted_when_allowed(world: World) -> None:
    created = await create_webhook(
        SYSTEM,
        url="http://127.0.0.1:9/hook",
        events=None,
        description=None,
        policy=AddressPolicy(allow_private=True),
    )
    assert created.webhook.url == "http://127.0.0.1:9/hook"
    assert await Webhook.filter(url="http://127.0.0.1:9/hook").count() == 1


# -- deliveries and redelivery ------------------------------------------------------------------


@dataclass
class RecordingSender:
    """Answers each send with the next result (the last one repeating); records what it got."""

    results: list[SendResult]
    sent: list[tuple[str, Event]] = field(default_factory=list)

    async def send(self, url: str, secret: str, event: Event) -> SendResult:
        self.sent.append((url, event))
        return self.results[min(len(self.sent), len(self.results)) - 1]


async def run_dispatcher(host: PluginHost, sender: RecordingSender, max_attempts: int = 1) -> None:
    dispatcher = Dispatcher(
        host,
        DispatchConfig(max_attempts=max_attempts, hook_threads=1, sweep_interval_seconds=0),
        sender=sender,
    )
    try:
        await dispatcher.run_until_idle()
    finally:
        dispatcher.threads.shutdown(wait=True)


async def emit_events(world: World) -> None:
    """A learner starts a certification: `enrolled` and `started`."""
    cert = await make_certification("Cloud", world.course_ids[:1])
    await enrollments.start_certification(world.learner.actor, cert)


@pytest_asyncio.fixture
async def two_hooks(graphql_client: GraphQLClient, world: World) -> AsyncIterator[list[str]]:
    ids = [
        (await create(graphql_client, world.admin.token, url=url))["webhook"]["id"]
        for url in (PUBLIC_URL, "https://93.184.215.15/other")
    ]
    yield ids


async def deliveries_of(client: GraphQLClient, token: str) -> dict[str, list[dict[str, Any]]]:
    data = await client.data(LIST, token=token)
    return {
        edge["node"]["id"]: edge["node"]["recentDeliveries"] for edge in data["webhooks"]["edges"]
    }


async def test_recent_deliveries_show_each_attempt_and_redeliver_resets_them(
    graphql_client: GraphQLClient, world: World, plugin_host: PluginHost, two_hooks: list[str]
) -> None:
    token = world.admin.token
    await emit_events(world)
    failing = RecordingSender([SendResult(500, "answered HTTP 500")])
    await run_dispatcher(plugin_host, failing)  # one attempt each: dead at once
    assert len(failing.sent) == 4  # two events to two endpoints

    shown = await deliveries_of(graphql_client, token)
    for hook_id in two_hooks:
        rows = shown[hook_id]
        assert [row["eventType"] for row in rows] == ["started", "enrolled"]  # newest first
        for row in rows:
            assert row["state"] == "DEAD"
            assert (row["attempt"], row["statusCode"], row["error"]) == (
                1,
                500,
                "answered HTTP 500",
            )
            assert row["lastAttemptAt"] is not None
            assert row["nextAttemptAt"] is None and row["deliveredAt"] is None
    enrolled_id = shown[two_hooks[0]][1]["eventId"]
    first_sent = {str(event.id) for _, event in failing.sent}
    assert enrolled_id in first_sent

    # only one endpoint's delivery of one event
    data = await graphql_client.data(
        REDELIVER, {"eventId": enrolled_id, "webhookId": two_hooks[1]}, token=token
    )
    payload = data["redeliverEvent"]
    assert payload["errors"] == []
    (row,) = payload["deliveries"]
    assert (row["eventId"], row["state"], row["attempt"], row["deliveredAt"]) == (
        enrolled_id,
        "PENDING",
        0,
        None,
    )
    assert row["nextAttemptAt"] is not None
    shown = await deliveries_of(graphql_client, token)
    assert [r["state"] for r in shown[two_hooks[0]]] == ["DEAD", "DEAD"]
    assert [r["state"] for r in shown[two_hooks[1]]] == ["DEAD", "PENDING"]

    working = RecordingSender([SendResult(204, None)])
    await run_dispatcher(plugin_host, working)
    assert [(url, str(event.id)) for url, event in working.sent] == [
        ("https://93.184.215.15/other", enrolled_id)  # the same event id as before
    ]
    shown = await deliveries_of(graphql_client, token)
    delivered = shown[two_hooks[1]][1]
    assert (delivered["state"], delivered["attempt"], delivered["statusCode"]) == (
        "DELIVERED",
        1,
        204,
    )
    assert delivered["deliveredAt"] is not None and delivered["error"] is None

    # every endpoint, whatever the state: the DELIVERED one too
    data = await graphql_client.data(REDELIVER, {"eventId": enrolled_id}, token=token)
    rows = data["redeliverEvent"]["deliveries"]
    assert [(r["state"], r["attempt"]) for r in rows] == [("PENDING", 0), ("PENDING", 0)]
    again = RecordingSender([SendResult(204, None)])
    await run_dispatcher(plugin_host, again)
    assert sorted(url for url, _ in again.sent) == [PUBLIC_URL, "https://93.184.215.15/other"]
    assert {str(event.id) for _, event in again.sent} == {enrolled_id}
    audits = await AuditEvent.filter(action="redeliverEvent").order_by("id")
    assert [(a.object_type, a.object_id) for a in audits] == [("Event", enrolled_id)] * 2
    assert audits[0].after == {"webhookIds": [pk_of(two_hooks[1])]}


async def test_redeliver_refuses_what_it_cannot_send_again(
    graphql_client: GraphQLClient, world: World, plugin_host: PluginHost
) -> None:
    token = world.admin.token
    hook = (await create(graphql_client, token, events=["started"]))["webhook"]["id"]
    other = (await create(graphql_client, token, events=["certification_completed"]))["webhook"][
        "id"
    ]
    await emit_events(world)
    await run_dispatcher(plugin_host, RecordingSender([SendResult(204, None)]))
    started = (await deliveries_of(graphql_client, token))[hook][0]["eventId"]

    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"eventId": "not-a-uuid"}, "NOT_FOUND", ["eventId"]),
        ({"eventId": "8d9f1f6e-6a1b-4d5c-9a55-3f4f5e6a7b8c"}, "NOT_FOUND", ["eventId"]),
        ({"eventId": started, "webhookId": other}, "NOT_FOUND", ["webhookId"]),
        ({"eventId": started, "webhookId": encode_id("Webhook", 999)}, "NOT_FOUND", ["webhookId"]),
        ({"eventId": started, "webhookId": "junk"}, "NOT_FOUND", ["webhookId"]),
    ]
    states = await EventDelivery.all().order_by("id").values_list("state", "attempts")
    for variables, code, path in cases:
        data = await graphql_client.data(REDELIVER, variables, token=token)
        payload = data["redeliverEvent"]
        assert payload["deliveries"] == []
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, path)], variables
    assert await EventDelivery.all().order_by("id").values_list("state", "attempts") == states

    # a disabled endpoint is sent nothing, redelivered or not
    await graphql_client.data(UPDATE, {"input": {"id": hook, "enabled": False}}, token=token)
    disabled = [
        ({"eventId": started, "webhookId": hook}, "NOT_ALLOWED", ["webhookId"]),
        ({"eventId": started}, "NOT_FOUND", ["eventId"]),
    ]
    for variables, code, path in disabled:
        data = await graphql_client.data(REDELIVER, variables, token=token)
        errors = data["redeliverEvent"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, path)], variables
    assert await EventDelivery.all().order_by("id").values_list("state", "attempts") == states
    assert await AuditEvent.filter(action="redeliverEvent").count() == 0


async def test_events_reach_a_real_receiver_signed_end_to_end(
    world: World, plugin_host: PluginHost, receiver: Any, graphql_client: GraphQLClient
) -> None:
    """createWebhook (private addresses allowed), a use case emits, the dispatcher sends
    with the real sender: the receiver verifies each with standardwebhooks."""
    from gql.webhooks.sender import HttpWebhookSender

    created = await create_webhook(
        SYSTEM,
        url=receiver.url(),
        events=["enrolled", "started"],
        description="local",
        policy=AddressPolicy(allow_private=True),
    )
    receiver.secret = created.secret
    await emit_events(world)
    sender = HttpWebhookSender(timeout_seconds=5, allow_private=True)
    dispatcher = Dispatcher(
        plugin_host, DispatchConfig(hook_threads=1, sweep_interval_seconds=0), sender=sender
    )
    try:
        await dispatcher.run_until_idle()
    finally:
        dispatcher.threads.shutdown(wait=True)
        await sender.aclose()
    assert [got.payload["type"] for got in receiver.received] == ["enrolled", "started"]
    assert all(got.verified for got in receiver.received)
    learner = receiver.received[0].payload["data"]["learner"]
    assert learner == {
        "id": world.learner.id,
        "name": "Lea Learner",
        "email": world.learner.user.email,
    }
    shown = await deliveries_of(graphql_client, world.admin.token)
    rows = shown[encode_id("Webhook", created.webhook.id)]
    assert [(r["state"], r["statusCode"]) for r in rows] == [("DELIVERED", 204)] * 2
    assert {r["eventId"] for r in rows} == {got.headers["webhook-id"] for got in receiver.received}


async def test_an_event_not_yet_fanned_out_is_not_redelivered(
    graphql_client: GraphQLClient, world: World, plugin_host: PluginHost
) -> None:
    await create(graphql_client, world.admin.token)
    await emit_events(world)  # written to the outbox; no dispatcher has run
    event_id = str((await OutboxEvent.all().order_by("seq").first().values_list("event_id"))[0])
    data = await graphql_client.data(REDELIVER, {"eventId": event_id}, token=world.admin.token)
    (error,) = data["redeliverEvent"]["errors"]
    assert (error["code"], error["field"]) == ("NOT_ALLOWED", ["eventId"])
    assert await EventDelivery.all().count() == 0
