"""One use case, one transaction: audit rows inside it, events after it commits; and the
per-request buffer of denied reads, written as one batch when the request is over."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gql import clock
from gql.plugins import PluginHost, get_plugin_host
from gql.policy import Event
from gql.store.db import retrying, write_transaction
from gql.store.writes import audit_row, insert_audit_event, insert_audit_events

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """What a use case collects while its transaction is open."""

    actor_id: int | None
    now: datetime
    events: list[Event] = field(default_factory=list)
    plugins: PluginHost | None = None

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
async def unit_of_work(
    actor_id: int | None, plugins: PluginHost | None = None
) -> AsyncIterator[Unit]:
    """Open a write transaction; after it commits, hand the collected events to plugins."""
    host = plugins or get_plugin_host()
    unit = Unit(actor_id=actor_id, now=clock.now(), plugins=host)
    async with write_transaction():
        yield unit
    for event in unit.events:
        await host.emit(event)


async def audit_refusal(
    actor_id: int | None, action: str, object_type: str, object_id: object | None, reason: str
) -> None:
    """Record a refused action in its own transaction (the refused change has none)."""
    unit = Unit(actor_id=actor_id, now=clock.now())
    async with write_transaction():
        await unit.audit(f"denied:{action}", object_type, object_id, detail=reason)


# -- denied reads ---------------------------------------------------------------------------


@dataclass
class DeniedReads:
    """Reads of objects hidden from their reader, collected during one request."""

    rows: list[tuple[datetime, int | None, str, str, str | None, str]] = field(default_factory=list)


_denied: ContextVar[DeniedReads | None] = ContextVar("certgraph_denied_reads", default=None)


@contextmanager
def collecting_denied_reads(buffer: DeniedReads | None = None) -> Iterator[DeniedReads]:
    """Collect the denied reads of the code run inside (a request) into `buffer` instead of
    writing each at once; write them with flush_denied_reads once the answer is sent."""
    buffer = DeniedReads() if buffer is None else buffer
    token = _denied.set(buffer)
    try:
        yield buffer
    finally:
        _denied.reset(token)


async def note_denied_read(
    actor_id: int | None, action: str, object_type: str, object_id: object | None, reason: str
) -> None:
    """Audit a read of an object the reader may not see (it reads as not found): into the
    request's buffer when one is collecting, else at once."""
    key = None if object_id is None else str(object_id)
    buffer = _denied.get()
    if buffer is None:
        await audit_refusal(actor_id, action, object_type, object_id, reason)
        return
    buffer.rows.append((clock.now(), actor_id, f"denied:{action}", object_type, key, reason))


async def flush_denied_reads(buffer: DeniedReads) -> int:
    """Write the collected denied reads as one batch (nothing when there are none);
    returns how many. A failure is logged, never raised: the answer was already decided."""
    rows, buffer.rows = buffer.rows, []
    if not rows:
        return 0
    events = [
        audit_row(at, actor_id, action, object_type, object_id, None, None, detail)
        for at, actor_id, action, object_type, object_id, detail in rows
    ]
    try:
        await retrying(lambda: insert_audit_events(events))
    except Exception:  # the reader's answer must not depend on the log
        log.exception("could not write %d denied-read audit rows", len(rows))
        return 0
    return len(rows)
