"""certification_expired: emitted exactly once per award, when first observed or by a sweep.

Expiry itself needs no job (EXPIRED is derived when read); only the event does. Whoever
first sets Award.expiry_noted_at (a compare-and-set update) emits it, so readers, several
sweepers on several hosts and retries all agree on one event.
"""

from __future__ import annotations

from gql import clock
from gql.domain.unit import unit_of_work
from gql.store.models import Award, Enrollment

SWEEP_BATCH = 500


async def note_expired(pairs: list[tuple[Enrollment, Award]]) -> int:
    """Emit certification_expired for each (enrollment, its newest award) not yet noted."""
    if not pairs:
        return 0
    emitted = 0
    async with unit_of_work(None) as unit:
        for enrollment, award in pairs:
            won = await Award.filter(id=award.id, expiry_noted_at=None).update(
                expiry_noted_at=unit.now
            )
            if won:
                emitted += 1
                award.expiry_noted_at = unit.now
                unit.emit(
                    "certification_expired",
                    enrollment_id=enrollment.id,
                    learner_id=enrollment.learner_id,
                    certification_id=enrollment.certification_id,
                    cycle=award.cycle,
                    expired_at=award.expires_at.isoformat() if award.expires_at else None,
                )
    return emitted


async def sweep_expired() -> int:
    """Note every newest award that has expired; safe to run often and concurrently."""
    now = clock.now()
    total = 0
    last_id = 0
    while True:
        enrollments = list(
            await Enrollment.filter(
                id__gt=last_id, last_expires_at__lte=now, last_award_cycle__isnull=False
            )
            .order_by("id")
            .limit(SWEEP_BATCH)
        )
        if not enrollments:
            return total
        last_id = enrollments[-1].id
        by_key = {(e.id, e.last_award_cycle): e for e in enrollments}
        awards = await Award.filter(
            enrollment_id__in=[e.id for e in enrollments], expiry_noted_at=None
        )
        pairs = [
            (by_key[(a.enrollment_id, a.cycle)], a)
            for a in awards
            if (a.enrollment_id, a.cycle) in by_key
        ]
        total += await note_expired(pairs)
