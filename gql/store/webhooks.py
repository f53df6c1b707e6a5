"""Webhook endpoints and their deliveries, as the admin API reads and changes them (the
dispatcher's side is gql.store.outbox). Records never carry an endpoint's secret: only
`insert_webhook` and `set_secret` take one, and nothing here reads it back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.queryset import QuerySet

from gql.store.models import EventDelivery, OutboxEvent, Webhook
from gql.vocabulary import DeliveryState


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    url: str
    event_types: tuple[str, ...]  # empty: every type
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


WEBHOOK_COLUMNS = ("id", "url", "event_types", "description", "enabled", "created_at", "updated_at")


def webhook_record(*row: Any) -> WebhookRecord:
    """The record of one row of WEBHOOK_COLUMNS."""
    pk, url, event_types, description, enabled, created_at, updated_at = row
    return WebhookRecord(
        int(pk),
        str(url),
        tuple(event_types or ()),
        str(description),
        bool(enabled),
        created_at,
        updated_at,
    )


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event on its way to one webhook endpoint."""

    id: int
    webhook_id: int
    event_id: UUID  # the event's id: the webhook-id header, the same on every attempt
    event_type: str
    state: DeliveryState
    attempts: int  # made so far (reset by a redelivery)
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


_DELIVERY_COLUMNS = (
    "id",
    "webhook_id",
    "event__event_id",
    "event__type",
    "state",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
)


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    event_id = row[2] if isinstance(row[2], UUID) else UUID(str(row[2]))
    return DeliveryRecord(
        int(row[0]),
        int(row[1]),
        event_id,
        str(row[3]),
        DeliveryState(row[4]),
        int(row[5]),
        *row[6:],
    )


@dataclass(frozen=True, slots=True)
class EventRef:
    seq: int
    event_id: UUID
    type: str
    fanned_out: bool  # its deliveries have been written


# -- endpoints ------------------------------------------------------------------------------


def all_webhooks() -> QuerySet[Webhook]:
    """Every endpoint, for a page (gql.domain.pages.orm_page over WEBHOOK_COLUMNS)."""
    return Webhook.all()


async def insert_webhook(
    *, url: str, event_types: Sequence[str], description: str, secret: str, now: datetime
) -> WebhookRecord:
    row = await Webhook.create(
        url=url,
        event_types=list(event_types),
        description=description,
        secret=secret,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    return webhook_record(*(getattr(row, column) for column in WEBHOOK_COLUMNS))


async def webhook_by_id(pk: int) -> WebhookRecord | None:
    rows = await Webhook.filter(id=pk).limit(1).values_list(*WEBHOOK_COLUMNS)
    return webhook_record(*rows[0]) if rows else None


async def update_webhook(pk: int, now: datetime, **changes: Any) -> None:
    """Set only these columns (url, event_types, description, enabled) and updated_at."""
    await Webhook.filter(id=pk).update(updated_at=now, **changes)


async def set_secret(pk: int, secret: str, now: datetime) -> None:
    await Webhook.filter(id=pk).update(secret=secret, updated_at=now)


async def delete_webhook(pk: int) -> bool:
    """Delete the endpoint and its deliveries; False when there was none."""
    return bool(await Webhook.filter(id=pk).delete())


# -- deliveries -----------------------------------------------------------------------------


async def recent_deliveries(webhook_id: int, limit: int) -> list[DeliveryRecord]:
    """The endpoint's newest deliveries first (by when they were written)."""
    if limit <= 0:
        return []
    rows = (
        await EventDelivery.filter(webhook_id=webhook_id)
        .order_by("-id")
        .limit(limit)
        .values_list(*_DELIVERY_COLUMNS)
    )
    return [_delivery(row) for row in rows]


async def event_by_id(event_id: UUID) -> EventRef | None:
    rows = (
        await OutboxEvent.filter(event_id=event_id)
        .limit(1)
        .values_list("seq", "event_id", "type", "fanned_out_at")
    )
    if not rows:
        return None
    seq, stored_id, event_type, fanned_out_at = rows[0]
    stored = stored_id if isinstance(stored_id, UUID) else UUID(str(stored_id))
    return EventRef(int(seq), stored, str(event_type), fanned_out_at is not None)


async def reset_webhook_deliveries(
    event_seq: int, webhook_id: int | None, now: datetime
) -> list[DeliveryRecord]:
    """Put the event's deliveries to enabled webhooks (only this endpoint's, when given)
    back to PENDING, due now, no attempt made, whatever their state; returns them as they
    now are. A lease is left alone: an attempt in flight settles the delivery as usual."""
    found = EventDelivery.filter(
        event_id=event_seq, webhook_id__not_isnull=True, webhook__enabled=True
    )
    if webhook_id is not None:
        found = found.filter(webhook_id=webhook_id)
    ids = list(await found.order_by("id").values_list("id", flat=True))
    if not ids:
        return []
    await EventDelivery.filter(id__in=ids).update(
        state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, delivered_at=None
    )
    rows = await EventDelivery.filter(id__in=ids).order_by("id").values_list(*_DELIVERY_COLUMNS)
    return [_delivery(row) for row in rows]
