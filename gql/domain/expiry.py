"""certification_expired: emitted exactly once per award, when first observed or by a sweep.

Expiry itself needs no job (EXPIRED is derived when read); only the event does, and reads
never write: `certgraph sweep` (cron) sets Award.expiry_noted_at by compare-and-set and emits
it, so sweepers on several hosts and retries agree on one event.
"""

from __future__ import annotations

from datetime import datetime

from gql import clock
from gql.domain.unit import unit_of_work
from gql.events import CertificationExpired
from gql.store import reads
from gql.store.db import retrying
from gql.store.models import Award
from gql.store.records import AwardRecord

SWEEP_BATCH = 500
# An expired award with its enrollment's learner and certification ids and due date.
ExpiredAward = tuple[AwardRecord, int, int, datetime | None]


async def note_expired(expired: list[ExpiredAward]) -> int:
    """Emit certification_expired for each of these awards not yet noted.

    Returns how many this call emitted: the awards whose compare-and-set it won.
    """
    if not expired:
        return 0
    # One lock order for every sweeper (they note overlapping sets), so two
    # of them on PostgreSQL wait for each other instead of deadlocking.
    ordered = sorted(expired, key=lambda item: item[0].id)
    # The whole batch again on a transient conflict (SQLite busy, a PostgreSQL deadlock):
    # the compare-and-set makes a retry emit only what is still un-noted.
    return await retrying(lambda: _note_once(ordered))


async def _note_once(expired: list[ExpiredAward]) -> int:
    won = 0
    async with unit_of_work(None) as unit:
        for award, learner_id, certification_id, due_at in expired:
            changed = await Award.filter(id=award.id, expiry_noted_at=None).update(
                expiry_noted_at=unit.now
            )
            if changed:
                won += 1
                unit.emit(
                    CertificationExpired,
                    learner_id=learner_id,
                    certification=certification_id,
                    enrollment_id=award.enrollment_id,
                    due_at=due_at,
                    cycle=award.cycle,
                    expired_at=award.expires_at,
                    expired_on=award.expires_on,
                )
    return won


async def sweep_expired() -> int:
    """Note every newest award that has expired; return how many events this sweep emitted.

    Safe to run often and from several hosts at once: it reads only expired awards nobody
    has noted yet (an idle sweep is one query that returns no rows), and each is claimed by
    compare-and-set, so of racing sweepers exactly one emits each event.
    """
    now = clock.now()
    total = 0
    last_id = 0
    while True:
        batch = await reads.unnoted_expired_awards(now, last_id, SWEEP_BATCH)
        if not batch:
            return total
        last_id = batch[-1][0].id
        total += await note_expired(batch)
