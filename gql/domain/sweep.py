"""The sweep: what time alone makes happen. `certgraph sweep` runs it once; each dispatcher
runs it every CERTGRAPH_SWEEP_INTERVAL_SECONDS (docs/events.md, "Reminders and the sweep").

It emits certification_expired (gql.domain.expiry), then the reminders
(gql.domain.reminders), then deletes settled events older than the retention. Every step is
safe to run from several hosts at once and again at any time; an idle sweep is a handful of
queries that return no rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gql import clock
from gql.domain.expiry import sweep_expired
from gql.domain.reminders import sweep_reminder_counts
from gql.plugins import PluginHost
from gql.store import outbox
from gql.store.db import retrying

PRUNE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did: events emitted by kind, and settled events pruned."""

    expired: int = 0
    due_soon: int = 0
    overdue: int = 0
    expiring: int = 0
    pruned: int = 0

    @property
    def emitted(self) -> int:
        """Events this sweep emitted (pruned ones not counted)."""
        return self.expired + self.due_soon + self.overdue + self.expiring


async def prune_events(before_days: int) -> int:
    """Delete events settled everywhere and older than `before_days` days, a batch at a
    time; how many."""
    before = clock.now() - timedelta(days=before_days)
    total = 0
    while True:
        pruned = await retrying(lambda: outbox.prune_settled(before, PRUNE_BATCH))
        total += pruned
        if pruned < PRUNE_BATCH:
            return total


async def sweep(
    *, due_soon_days: int, retention_days: int, plugins: PluginHost | None = None
) -> SweepReport:
    """Run the expiry sweep, the reminders and the pruning once; what each did."""
    expired = await sweep_expired()
    reminders = await sweep_reminder_counts(clock.now(), due_soon_days, plugins)
    pruned = await prune_events(retention_days)
    return SweepReport(
        expired=expired,
        due_soon=reminders.due_soon,
        overdue=reminders.overdue,
        expiring=reminders.expiring,
        pruned=pruned,
    )
