"""certification_expired: emitted exactly once per award, when first observed or by a sweep.

Expiry itself needs no job (EXPIRED is derived when read); only the event does, and reads
never write: `certgraph sweep` (cron) sets Award.expiry_noted_at by compare-and-set and emits
it, so sweepers on several hosts and retries agree on one event.
"""

from __future__ import annotations

from tortoise.expressions import F

from gql import clock
from gql.domain.unit import unit_of_work
from gql.store.db import retrying
from gql.store.models import Award, Enrollment

SWEEP_BATCH = 500


async def note_expired(pairs: list[tuple[Enrollment, Award]]) -> int:
    """Emit certification_expired for each (enrollment, its newest award) not yet noted.

    Returns how many this call emitted: the awards whose compare-and-set it won.
    """
    if not pairs:
        return 0
    # One lock order for every sweeper (they note overlapping sets), so two
    # of them on PostgreSQL wait for each other instead of deadlocking.
    ordered = sorted(pairs, key=lambda pair: pair[1].id)
    # The whole batch again on a transient conflict (SQLite busy, a PostgreSQL deadlock):
    # the compare-and-set makes a retry emit only what is still un-noted.
    return await retrying(lambda: _note_once(ordered))


async def _note_once(pairs: list[tuple[Enrollment, Award]]) -> int:
    won: list[Award] = []
    async with unit_of_work(None) as unit:
        for enrollment, award in pairs:
            changed = await Award.filter(id=award.id, expiry_noted_at=None).update(
                expiry_noted_at=unit.now
            )
            if changed:
                won.append(award)
                unit.emit(
                    "certification_expired",
                    enrollment_id=enrollment.id,
                    learner_id=enrollment.learner_id,
                    certification_id=enrollment.certification_id,
                    cycle=award.cycle,
                    expired_at=award.expires_at.isoformat() if award.expires_at else None,
                )
    for award in won:  # committed: the caller's rows may say so now
        award.expiry_noted_at = unit.now
    return len(won)


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
        batch = list(
            await Award.filter(
                expiry_noted_at=None,
                expires_at__lte=now,
                id__gt=last_id,
                # the enrollment's newest award: one superseded by a renewal never "expired"
                enrollment__last_award_cycle=F("cycle"),
            )
            .select_related("enrollment")
            .order_by("id")
            .limit(SWEEP_BATCH)
        )
        if not batch:
            return total
        last_id = batch[-1].id
        total += await note_expired([(award.enrollment, award) for award in batch])
