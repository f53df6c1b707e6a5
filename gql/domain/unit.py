"""One use case, one transaction: audit rows inside it, events after it commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gql import clock
from gql.plugins import get_plugin_host
from gql.policy import Event
from gql.store.db import write_transaction
from gql.store.writes import insert_audit_event


@dataclass
class Unit:
    """What a use case collects while its transaction is open."""

    actor_id: int | None
    now: datetime
    events: list[Event] = field(default_factory=list)

    def emit(self, name: str, **payload: Any) -> None:
        self.events.append(Event(name=name, at=self.now, actor_id=self.actor_id, payload=payload))

    async def audit(
        self,
        action: str,
        object_type: str,
        object_id: object | None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        await insert_audit_event(
            self.now,
            self.actor_id,
            action,
            object_type,
            None if object_id is None else str(object_id),
            before,
            after,
            detail,
        )


@asynccontextmanager
async def unit_of_work(actor_id: int | None) -> AsyncIterator[Unit]:
    """Open a write transaction; after it commits, hand the collected events to plugins."""
    unit = Unit(actor_id=actor_id, now=clock.now())
    async with write_transaction():
        yield unit
    host = get_plugin_host()
    for event in unit.events:
        await host.emit(event)


async def audit_refusal(
    actor_id: int | None, action: str, object_type: str, object_id: object | None, reason: str
) -> None:
    """Record an authorization refusal in its own transaction (the refused change has none)."""
    unit = Unit(actor_id=actor_id, now=clock.now())
    async with write_transaction():
        await unit.audit(f"denied:{action}", object_type, object_id, detail=reason)
