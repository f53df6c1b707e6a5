"""Webhook endpoints, for admins: create one (its signing secret is handed out once), change,
delete, rotate its secret, list them with their recent deliveries, and send an event again
(docs/webhooks.md). Each change is one transaction, audited without the secret.

A URL is checked before anything is written: http(s), and unless private addresses are
allowed, every address its host resolves to must be public (gql.webhooks.addresses; the
sender checks again on each connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from gql.domain.access import Actor, note_hidden, require_admin
from gql.domain.errors import InvalidInput, NotAllowed, NotFound, t
from gql.domain.pages import (
    DEFAULT_MAX_PAGE_SIZE,
    FIRST_PAGE,
    OrmKey,
    Page,
    PageRequest,
    check_first,
    orm_page,
)
from gql.domain.unit import unit_of_work
from gql.events import EVENT_TYPES
from gql.plugins import PluginHost, get_plugin_host
from gql.store import webhooks as store
from gql.store.webhooks import DeliveryRecord, WebhookRecord
from gql.vocabulary import DeliveryState
from gql.webhooks.addresses import AddressPolicy, AddressRefused, WebhookUrlError
from gql.webhooks.addresses import check_destination as _check_destination
from gql.webhooks.signing import new_secret

__all__ = [
    "KNOWN_EVENT_TYPES",
    "AddressPolicy",
    "DeliveryRecord",
    "DeliveryState",
    "WebhookRecord",
    "WebhookWithSecret",
    "create_webhook",
    "delete_webhook",
    "get_webhook",
    "list_webhooks",
    "recent_deliveries",
    "redeliver_event",
    "rotate_webhook_secret",
    "update_webhook",
]

# The types an endpoint may ask for, in the catalogue's order (docs/events.md).
KNOWN_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_TYPES)
MAX_DESCRIPTION_CHARS = 500


@dataclass(frozen=True, slots=True)
class WebhookWithSecret:
    """An endpoint and its signing secret: only what creating it, or rotating the secret,
    answers."""

    webhook: WebhookRecord
    secret: str


def _clean_events(events: Sequence[str] | None, field: Sequence[str]) -> tuple[str, ...]:
    """The types asked for, once each, in the catalogue's order; empty: every type."""
    if not events:
        return ()
    unknown = [(i, name) for i, name in enumerate(events) if name not in EVENT_TYPES]
    if unknown:
        names = ", ".join(repr(name) for _, name in unknown)
        raise InvalidInput(
            t(
                "unknown event types {names}: the known types are {known} (or none at all, for "
                "every type)",
                names=names,
                known=", ".join(KNOWN_EVENT_TYPES),
            )
            if len(unknown) > 1
            else t(
                "unknown event type {names}: the known types are {known} (or none at all, for "
                "every type)",
                names=names,
                known=", ".join(KNOWN_EVENT_TYPES),
            ),
            field=[*field, str(unknown[0][0])],
        )
    asked = set(events)
    return tuple(name for name in KNOWN_EVENT_TYPES if name in asked)


def _clean_description(description: str | None, field: Sequence[str]) -> str:
    cleaned = (description or "").strip()
    if len(cleaned) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(
            t(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters",
                MAX_DESCRIPTION_CHARS=MAX_DESCRIPTION_CHARS,
            ),
            field=field,
        )
    return cleaned


async def _checked_url(url: str, policy: AddressPolicy, field: Sequence[str]) -> str:
    try:
        return await _check_destination(url, policy)
    except WebhookUrlError as exc:
        raise InvalidInput(str(exc), field=field) from None
    except AddressRefused as exc:
        raise NotAllowed(str(exc), field=field) from None


def _audited(row: WebhookRecord) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never its secret."""
    return {
        "url": row.url,
        "events": list(row.event_types),
        "description": row.description,
        "enabled": row.enabled,
    }


async def create_webhook(
    actor: Actor,
    *,
    url: str,
    events: Sequence[str] | None,
    description: str | None,
    policy: AddressPolicy,
) -> WebhookWithSecret:
    """A new, enabled endpoint for these event types (none: every type) and its secret."""
    await require_admin(actor, "createWebhook", "Webhook")
    event_types = _clean_events(events, ["input", "events"])
    cleaned_description = _clean_description(description, ["input", "description"])
    checked_url = await _checked_url(url, policy, ["input", "url"])
    secret = new_secret()
    async with unit_of_work(actor) as unit:
        row = await store.insert_webhook(
            url=checked_url,
            event_types=event_types,
            description=cleaned_description,
            secret=secret,
            now=unit.now,
        )
        await unit.audit("createWebhook", "Webhook", row.id, after=_audited(row))
    return WebhookWithSecret(row, secret)


async def update_webhook(
    actor: Actor,
    webhook_id: int,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    policy: AddressPolicy,
) -> WebhookRecord:
    """Change only what is given (None: unchanged; `events` empty: every type)."""
    await require_admin(actor, "updateWebhook", "Webhook", webhook_id)
    changes: dict[str, Any] = {}
    if events is not None:
        changes["event_types"] = list(_clean_events(events, ["input", "events"]))
    if description is not None:
        changes["description"] = _clean_description(description, ["input", "description"])
    if enabled is not None:
        changes["enabled"] = enabled
    if await store.webhook_by_id(webhook_id) is None:
        raise NotFound(t("no such webhook"), field=["input", "id"])
    if url is not None:
        changes["url"] = await _checked_url(url, policy, ["input", "url"])
    async with unit_of_work(actor) as unit:
        before = await store.webhook_by_id(webhook_id)
        if before is None:  # deleted meanwhile
            raise NotFound(t("no such webhook"), field=["input", "id"])
        old = _audited(before)
        old["event_types"] = old.pop("events")
        changed = {name: value for name, value in changes.items() if old[name] != value}
        if not changed:
            return before
        await store.update_webhook(webhook_id, unit.now, **changed)
        after = await store.webhook_by_id(webhook_id)
        assert after is not None
        key = {"event_types": "events"}
        await unit.audit(
            "updateWebhook",
            "Webhook",
            webhook_id,
            before={key.get(name, name): old[name] for name in changed},
            after={key.get(name, name): value for name, value in changed.items()},
        )
    return after


async def delete_webhook(actor: Actor, webhook_id: int) -> int:
    """Delete the endpoint and its deliveries (pending ones are not sent); returns its id."""
    await require_admin(actor, "deleteWebhook", "Webhook", webhook_id)
    async with unit_of_work(actor) as unit:
        row = await store.webhook_by_id(webhook_id)
        if row is None:
            raise NotFound(t("no such webhook"), field=["id"])
        await store.delete_webhook(webhook_id)
        await unit.audit("deleteWebhook", "Webhook", webhook_id, before=_audited(row))
    return webhook_id


async def rotate_webhook_secret(actor: Actor, webhook_id: int) -> WebhookWithSecret:
    """A new secret for the endpoint (the old one stops at once: every request from now on,
    retries included, is signed with the new one)."""
    await require_admin(actor, "rotateWebhookSecret", "Webhook", webhook_id)
    secret = new_secret()
    async with unit_of_work(actor) as unit:
        row = await store.webhook_by_id(webhook_id)
        if row is None:
            raise NotFound(t("no such webhook"), field=["id"])
        await store.set_secret(webhook_id, secret, unit.now)
        await unit.audit("rotateWebhookSecret", "Webhook", webhook_id)
        rotated = await store.webhook_by_id(webhook_id)
        assert rotated is not None
    return WebhookWithSecret(rotated, secret)


async def get_webhook(actor: Actor, webhook_id: int) -> WebhookRecord | None:
    """The endpoint, for an admin; None otherwise (a refused read is audited)."""
    row = await store.webhook_by_id(webhook_id)
    if row is not None and not actor.is_admin:
        await note_hidden(actor, "webhook", "Webhook", webhook_id)
        return None
    return row


async def list_webhooks(actor: Actor, *, paging: PageRequest = FIRST_PAGE) -> Page[WebhookRecord]:
    """Every endpoint, oldest first."""
    await require_admin(actor, "webhooks", "Webhook")
    return await orm_page(
        store.all_webhooks(),
        [OrmKey("id")],
        record=store.webhook_record,
        columns=store.WEBHOOK_COLUMNS,
        kind="webhooks",
        paging=paging,
    )


async def recent_deliveries(
    actor: Actor,
    webhook_id: int,
    *,
    first: int | None = 20,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> list[DeliveryRecord]:
    """The endpoint's `first` newest deliveries, newest first."""
    await require_admin(actor, "webhooks", "Webhook", webhook_id)
    return await store.recent_deliveries(webhook_id, check_first(first, max_page_size))


def _event_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(
            t(
                "no such event: event IDs are UUIDs, the `id` of the body a "
                "webhook receives (and its webhook-id header), e.g. from `{ "
                "webhooks { edges { node { recentDeliveries { eventId } } } "
                "} }`"
            ),
            field=["eventId"],
        ) from None


async def redeliver_event(
    actor: Actor,
    event_id: str,
    webhook_id: int | None = None,
    *,
    plugins: PluginHost | None = None,
) -> list[DeliveryRecord]:
    """Send the event again to every enabled webhook endpoint it went to (or only
    `webhook_id`): its deliveries back to PENDING, due now, attempts reset, whatever their
    state (DEAD and DELIVERED too). Returns them. Receivers get the same event id again."""
    await require_admin(actor, "redeliverEvent", "Event")  # not the ID: it may be anything
    wanted = _event_id(event_id)
    async with unit_of_work(actor) as unit:
        event = await store.event_by_id(wanted)
        if event is None:
            raise NotFound(
                t("no such event (settled events are pruned after CERTGRAPH_EVENT_RETENTION_DAYS)"),
                field=["eventId"],
            )
        if webhook_id is not None:
            hook = await store.webhook_by_id(webhook_id)
            if hook is None:
                raise NotFound(t("no such webhook"), field=["webhookId"])
            if not hook.enabled:
                raise NotAllowed(
                    t("the webhook is disabled: enable it (updateWebhook) to send it events"),
                    field=["webhookId"],
                )
        if not event.fanned_out:
            raise NotAllowed(
                t(
                    "the event is not sent yet: its deliveries are being "
                    "written, and it will reach every endpoint that takes its "
                    "type"
                ),
                field=["eventId"],
            )
        rows = await store.reset_webhook_deliveries(event.seq, webhook_id, unit.now)
        if not rows:
            if webhook_id is not None:
                raise NotFound(
                    t(
                        "the event was not sent to this webhook (it does not take "
                        "the event's type, was disabled, or was created after the "
                        "event)"
                    ),
                    field=["webhookId"],
                )
            raise NotFound(t("the event was sent to no enabled webhook"), field=["eventId"])
        await unit.audit(
            "redeliverEvent",
            "Event",
            str(event.event_id),
            after={"webhookIds": sorted({row.webhook_id for row in rows})},
        )
    (plugins or get_plugin_host()).events_written()  # the local dispatcher sends them now
    return rows
