"""The event outbox and its deliveries: written with the change, fanned out to destinations,
claimed by dispatchers under a lease, settled per attempt (docs/events.md, "Delivery")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.connection import get_connection
from tortoise.expressions import F, Q, Subquery

from gql.store import postgres, sql
from gql.store.models import Certification, Course, EventDelivery, OutboxEvent, User, Webhook
from gql.vocabulary import DeliveryState

# pg_try_advisory_xact_lock key of the fan-out: one dispatcher at a time writes deliveries,
# so an earlier event's deliveries always exist before a later one's can be claimed.
FAN_OUT_LOCK = 0x63657274  # "cert"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: UUID
    type: str
    occurred_at: datetime
    actor_id: int | None
    ordering_key: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event_id: UUID
    type: str
    occurred_at: datetime
    actor_id: int | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One claimed delivery: send `event` to `target`, then settle it with its id."""

    id: int
    target: str
    webhook_id: int | None
    webhook_url: str | None
    webhook_secret: str | None
    attempts: int  # including the one now being made
    event: StoredEvent


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    id: int
    event_types: tuple[str, ...]  # empty: every type


async def insert_events(rows: Sequence[OutboxRow]) -> None:
    """Write events (one statement)."""
    await OutboxEvent.bulk_create(
        [
            OutboxEvent(
                event_id=row.event_id,
                type=row.type,
                occurred_at=row.occurred_at,
                actor_id=row.actor_id,
                ordering_key=row.ordering_key,
                data=row.data,
            )
            for row in rows
        ]
    )


async def user_names(ids: Iterable[int]) -> list[tuple[int, str, str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = await User.filter(id__in=wanted).values_list("id", "name", "email")
    return [(int(pk), str(name), str(email)) for pk, name, email in rows]


async def course_names(ids: Iterable[int]) -> list[tuple[int, str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = await Course.filter(id__in=wanted).values_list("id", "name")
    return [(int(pk), str(name)) for pk, name in rows]


async def certification_names(ids: Iterable[int]) -> list[tuple[int, str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = await Certification.filter(id__in=wanted).values_list("id", "name")
    return [(int(pk), str(name)) for pk, name in rows]


def _stored(event: OutboxEvent) -> StoredEvent:
    return StoredEvent(
        seq=event.seq,
        event_id=event.event_id if isinstance(event.event_id, UUID) else UUID(str(event.event_id)),
        type=event.type,
        occurred_at=event.occurred_at,
        actor_id=event.actor_id,
        data=event.data,
    )


# -- fan-out ----------------------------------------------------------------------------


async def take_fan_out_turn() -> bool:
    """Inside a transaction: may this dispatcher fan out now? On PostgreSQL one at a time
    (a transaction-scoped advisory lock, skipped when taken); SQLite's write lock already
    serialises it."""
    if sql.Sql().dialect == "sqlite":
        return True
    rows = await get_connection("default").execute_query_dict(
        "SELECT pg_try_advisory_xact_lock($1) AS taken", [FAN_OUT_LOCK]
    )
    return bool(rows[0]["taken"])


async def any_to_fan_out() -> bool:
    """Is any event waiting for its deliveries? (A plain read, so an idle dispatcher never
    takes SQLite's write lock.)"""
    return await OutboxEvent.filter(fanned_out_at=None).exists()


async def any_due(plugin_targets: Sequence[str], now: datetime) -> bool:
    """Is any delivery this process could make due and unleased? (A plain read.)"""
    return (
        await EventDelivery.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until=None) | Q(locked_until__lte=now))
        .filter(Q(webhook__enabled=True) | Q(target__in=list(plugin_targets) or [""]))
        .exists()
    )


async def events_to_fan_out(limit: int) -> list[StoredEvent]:
    """The oldest events without deliveries yet, in the order they were written."""
    events = await OutboxEvent.filter(fanned_out_at=None).order_by("seq").limit(limit)
    return [_stored(e) for e in events]


async def enabled_webhooks() -> list[WebhookTarget]:
    rows = await Webhook.filter(enabled=True).order_by("id").values_list("id", "event_types")
    return [WebhookTarget(int(pk), tuple(types or ())) for pk, types in rows]


async def write_deliveries(
    events: Sequence[StoredEvent],
    targets_of: dict[int, list[tuple[str, int | None]]],
    ordering_keys: dict[int, str],
    now: datetime,
) -> int:
    """Write each event's deliveries (target, webhook id) and mark the events fanned out."""
    deliveries = [
        EventDelivery(
            event_id=event.seq,
            target=target,
            webhook_id=webhook_id,
            ordering_key=ordering_keys[event.seq],
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
        )
        for event in events
        for target, webhook_id in targets_of.get(event.seq, [])
    ]
    if deliveries:
        await EventDelivery.bulk_create(deliveries)
    await OutboxEvent.filter(seq__in=[e.seq for e in events]).update(fanned_out_at=now)
    return len(deliveries)


async def ordering_keys_of(seqs: Sequence[int]) -> dict[int, str]:
    rows = await OutboxEvent.filter(seq__in=list(seqs)).values_list("seq", "ordering_key")
    return {int(seq): str(key) for seq, key in rows}


# -- claiming and settling --------------------------------------------------------------


async def claim_due(
    plugin_targets: Sequence[str], now: datetime, lease_until: datetime, limit: int
) -> list[DeliveryJob]:
    """Lease up to `limit` due deliveries this process can make: its plugins' and every
    webhook's, each only when no earlier event for the same destination and learner is still
    pending (order). Run inside a write transaction; on PostgreSQL rows another dispatcher
    holds are skipped, not waited for."""
    ids = await sql.claimable_deliveries(plugin_targets, now, limit)
    if not ids:
        return []
    await EventDelivery.filter(id__in=ids).update(
        locked_until=lease_until, attempts=F("attempts") + 1, last_attempt_at=now
    )
    claimed = (
        await EventDelivery.filter(id__in=ids)
        .select_related("event", "webhook")
        .order_by("event_id", "id")
    )
    return [
        DeliveryJob(
            id=d.id,
            target=d.target,
            webhook_id=d.webhook_id,
            webhook_url=d.webhook.url if d.webhook is not None else None,
            webhook_secret=d.webhook.secret if d.webhook is not None else None,
            attempts=d.attempts,
            event=_stored(d.event),
        )
        for d in claimed
    ]


async def settle_delivered(delivery_id: int, now: datetime, status_code: int | None) -> None:
    await EventDelivery.filter(id=delivery_id, state=DeliveryState.PENDING).update(
        state=DeliveryState.DELIVERED,
        delivered_at=now,
        locked_until=None,
        last_status_code=status_code,
        last_error=None,
    )


async def settle_failed(
    delivery_id: int,
    *,
    dead: bool,
    next_attempt_at: datetime,
    status_code: int | None,
    error: str,
) -> None:
    await EventDelivery.filter(id=delivery_id, state=DeliveryState.PENDING).update(
        state=DeliveryState.DEAD if dead else DeliveryState.PENDING,
        next_attempt_at=next_attempt_at,
        locked_until=None,
        last_status_code=status_code,
        last_error=error[:2000],
    )


async def prune_settled(before: datetime, limit: int) -> int:
    """Delete events older than `before` whose every delivery is settled (deliveries go
    with them); returns how many."""
    pending = Subquery(EventDelivery.filter(state=DeliveryState.PENDING).values("event_id"))
    seqs = (
        await OutboxEvent.filter(occurred_at__lt=before, fanned_out_at__not_isnull=True)
        .exclude(seq__in=pending)
        .order_by("seq")
        .limit(limit)
        .values_list("seq", flat=True)
    )
    if not seqs:
        return 0
    # the events deleted (SQLite's count would include the cascaded deliveries)
    await OutboxEvent.filter(seq__in=list(seqs)).delete()
    return len(seqs)


async def backlog() -> tuple[int, int]:
    """(events not yet fanned out, deliveries pending): the outbox's backlog, for /metrics."""
    unfanned = await OutboxEvent.filter(fanned_out_at=None).count()
    pending = await EventDelivery.filter(state=DeliveryState.PENDING).count()
    return unfanned, pending


# -- the live feed (docs/events.md, "Live updates") ---------------------------------------

# The channel a writing transaction notifies on PostgreSQL; delivered to listeners on commit.
LIVE_CHANNEL = "certgraph_events"


async def notify_live() -> None:
    """Inside the writing transaction: wake the live feeds listening on PostgreSQL (the
    notification is sent on commit, and not at all on rollback). Nothing on SQLite."""
    if sql.Sql().dialect == "sqlite":
        return
    await get_connection("default").execute_query("SELECT pg_notify($1, '')", [LIVE_CHANNEL])


async def last_seq() -> int:
    """The newest event's seq (0 when the outbox is empty)."""
    newest = await OutboxEvent.all().order_by("-seq").first()
    return newest.seq if newest is not None else 0


async def events_after(after: int, also: Sequence[int], limit: int) -> list[StoredEvent]:
    """Events with seq above `after`, plus those of `also` (seqs skipped earlier, whose
    transactions may have committed since), in seq order."""
    where = Q(seq__gt=after) | Q(seq__in=list(also)) if also else Q(seq__gt=after)
    events = await OutboxEvent.filter(where).order_by("seq").limit(limit)
    return [_stored(e) for e in events]


class LiveListener:
    """One dedicated PostgreSQL connection LISTENing on LIVE_CHANNEL: `wake` is called on
    each notification, from the event loop."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, url: str, wake: Callable[[], None]) -> LiveListener:
        from gql.store.db import normalise_url

        connection = await postgres.connect(normalise_url(url))
        await connection.add_listener(LIVE_CHANNEL, lambda *_: wake())
        return cls(connection)

    @property
    def alive(self) -> bool:
        return not self._connection.is_closed()

    async def close(self) -> None:
        await self._connection.close()
