"""Reminders: certification_due_soon, certification_overdue and certification_expiring, each
emitted once per enrollment and cycle by the sweep (the rules: docs/recurrence.md,
"Reminders").

Like certification_expired (gql.domain.expiry), a reminder is decided by no read and no
request: the sweep (`certgraph sweep`, and every dispatcher on its schedule) reads the
enrollments owed one and nobody has noted, a batch at a time, and claims each by inserting
its enrollment_notice row (unique on enrollment, kind and cycle) in the transaction that
writes the event. Of any number of racing sweepers exactly one inserts the row, and only it
emits the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gql.domain.unit import unit_of_work
from gql.events import (
    CertificationDueSoon,
    CertificationExpiring,
    CertificationOverdue,
    EnrollmentEventData,
)
from gql.plugins import PluginHost
from gql.store import reminders
from gql.store.db import retrying
from gql.store.reminders import Candidate

SWEEP_BATCH = 500
DAY = timedelta(days=1)

# Reads one page of candidates after a keyset position.
_Page = Callable[[tuple[datetime, int] | None], Awaitable[list[Candidate]]]


@dataclass(frozen=True, slots=True)
class ReminderCounts:
    """How many reminders of each kind one sweep emitted."""

    due_soon: int = 0
    overdue: int = 0
    expiring: int = 0

    @property
    def total(self) -> int:
        return self.due_soon + self.overdue + self.expiring


def days_left(due_at: datetime, now: datetime) -> int:
    """Whole days from `now` to the due date, rounded down (0 within its last day)."""
    return max(0, (due_at - now) // DAY)


def _due_soon_fields(candidate: Candidate, now: datetime) -> dict[str, Any]:
    assert candidate.due_at is not None
    return {"cycle": candidate.cycle, "days_left": days_left(candidate.due_at, now)}


def _overdue_fields(candidate: Candidate, now: datetime) -> dict[str, Any]:
    return {"cycle": candidate.cycle}


def _expiring_fields(candidate: Candidate, now: datetime) -> dict[str, Any]:
    return {
        "cycle": candidate.cycle,
        "expires_at": candidate.expires_at,
        "expires_on": candidate.expires_on,
        "window_opened_at": candidate.window_opens_at,
    }


async def _note(
    kind: type[EnrollmentEventData],
    batch: list[Candidate],
    now: datetime,
    fields: Callable[[Candidate, datetime], dict[str, Any]],
    plugins: PluginHost | None,
) -> int:
    """Claim this batch's reminders and emit the ones this sweeper won, in one transaction."""

    async def once() -> int:
        async with unit_of_work(None, plugins) as unit:
            won = await reminders.note_once(
                kind.TYPE, [(c.enrollment_id, c.cycle) for c in batch], unit.now
            )
            for candidate in batch:
                if (candidate.enrollment_id, candidate.cycle) not in won:
                    continue  # another sweeper noted it (now or before this read)
                unit.emit(
                    kind,
                    learner_id=candidate.learner_id,
                    certification=candidate.certification_id,
                    enrollment_id=candidate.enrollment_id,
                    due_at=candidate.due_at,
                    **fields(candidate, now),
                )
            return len(won)

    # The whole batch again on a transient conflict (SQLite busy, a PostgreSQL
    # serialisation failure): the notices make a retry emit only what is still un-noted.
    return await retrying(once)


async def _sweep_kind(
    kind: type[EnrollmentEventData],
    page: _Page,
    now: datetime,
    fields: Callable[[Candidate, datetime], dict[str, Any]],
    plugins: PluginHost | None,
) -> int:
    total = 0
    after: tuple[datetime, int] | None = None
    while True:
        batch = await page(after)
        if not batch:
            return total
        after = batch[-1].position
        total += await _note(kind, batch, now, fields, plugins)
        if len(batch) < SWEEP_BATCH:
            return total


async def sweep_reminder_counts(
    now: datetime, due_soon_days: int, plugins: PluginHost | None = None
) -> ReminderCounts:
    """Emit every reminder owed at `now` that nobody has emitted; how many of each kind."""
    until = now + timedelta(days=due_soon_days)
    due_soon = await _sweep_kind(
        CertificationDueSoon,
        lambda after: reminders.due_soon(CertificationDueSoon.TYPE, now, until, after, SWEEP_BATCH),
        now,
        _due_soon_fields,
        plugins,
    )
    # overdue in two reads, each on its own index: never awarded; awarded and expired
    overdue = await _sweep_kind(
        CertificationOverdue,
        lambda after: reminders.overdue_unawarded(
            CertificationOverdue.TYPE, now, after, SWEEP_BATCH
        ),
        now,
        _overdue_fields,
        plugins,
    ) + await _sweep_kind(
        CertificationOverdue,
        lambda after: reminders.overdue_expired(CertificationOverdue.TYPE, now, after, SWEEP_BATCH),
        now,
        _overdue_fields,
        plugins,
    )
    # A window opens at most the longest window before its award's expiry: only awards
    # expiring within it are read (an index range on last_expires_at).
    horizon = now + timedelta(days=await reminders.longest_window_days())
    expiring = await _sweep_kind(
        CertificationExpiring,
        lambda after: reminders.expiring(
            CertificationExpiring.TYPE, now, horizon, after, SWEEP_BATCH
        ),
        now,
        _expiring_fields,
        plugins,
    )
    return ReminderCounts(due_soon, overdue, expiring)


async def sweep_reminders(
    now: datetime, due_soon_days: int, plugins: PluginHost | None = None
) -> int:
    """Emit every reminder owed at `now` that nobody has emitted; how many events this
    sweep emitted. Safe to run often and from several hosts at once."""
    return (await sweep_reminder_counts(now, due_soon_days, plugins)).total


async def rearm_due_reminders(enrollment_ids: list[int]) -> int:
    """Let these enrollments be reminded again of their due date (due soon, overdue), in the
    current cycle too: for the transaction that moves their due date (assigning again with
    another `dueAt`). Inside that transaction; returns how many notices were forgotten."""
    return await reminders.forget_notices(
        enrollment_ids, [CertificationDueSoon.TYPE, CertificationOverdue.TYPE]
    )
