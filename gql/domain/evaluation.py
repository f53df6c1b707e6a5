"""Re-evaluating enrollments inside a write, and writing each award exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from gql import i18n
from gql.domain.calendar import day_of, start_of_day
from gql.domain.rules import award_expiry, award_expiry_date, started_at_for, window_opens_at
from gql.domain.status import (
    EnrollmentContext,
    EnrollmentStatus,
    EnrollmentView,
    load_context,
    stored_status,
)
from gql.domain.unit import Unit
from gql.events import CertificationCompleted
from gql.policy import VerdictStatus
from gql.store.records import AwardRecord, EnrollmentRecord
from gql.store.sql import insert_award_once, lock_users
from gql.store.writes import update_enrollment

__all__ = ["award_expiry", "evaluate_enrollments", "lock_learners"]


async def lock_learners(learner_ids: list[int]) -> set[int]:
    """Serialise writes about the same learner (PostgreSQL row locks, in id order); return
    the ids of the learners that exist (and are now locked).

    Two requests recording progress for one learner would otherwise each decide on a view
    without the other's write. SQLite needs no lock here: write_transaction already holds the
    database's write lock.
    """
    return await lock_users(learner_ids)


def _learner_day(view: EnrollmentView, completed_at: datetime) -> date | None:
    """The day the learner stated on their proof, when the policy dated the award by it (a
    policy does so by answering the start of that day in UTC, as external-evidence does with
    completionDate: learner); None when the award is dated by an instant."""
    for evidence in view.facts.evidence:
        day = evidence.completed_on
        if day is not None and datetime.combine(day, time.min, tzinfo=UTC) == completed_at:
            return day
    return None


async def _write_award_once(view: EnrollmentView, unit: Unit) -> AwardRecord | None:
    """Insert the award for this cycle, with its calendar days; None when another request
    already wrote it."""
    assert view.verdict is not None and view.verdict.completed_at is not None
    certification = view.certification
    previous = view.awards[-1] if view.awards else None
    completed_at = view.verdict.completed_at
    earned_on = _learner_day(view, completed_at)
    if earned_on is not None:
        # the day a person gave stays that day: it begins in the organisation's time zone
        completed_at = start_of_day(earned_on, unit.time_zone)
    # A learner-stated completion day may be "today" somewhere east of UTC, which starts
    # after now in UTC: an award is never dated in the future.
    awarded_at = min(completed_at, unit.now)
    if earned_on is None:
        earned_on = day_of(awarded_at, unit.time_zone)
    expires_at = award_expiry(certification, awarded_at, previous, unit.time_zone)
    expires_on = award_expiry_date(certification, earned_on, awarded_at, previous)
    award_id = await insert_award_once(
        view.enrollment.id, view.cycle, awarded_at, expires_at, earned_on, expires_on, unit.now
    )
    if award_id is None:
        return None
    return AwardRecord(
        award_id, view.enrollment.id, view.cycle, awarded_at, expires_at, earned_on, expires_on
    )


def _started_at(view: EnrollmentView, context: EnrollmentContext, now: datetime) -> datetime | None:
    """The startedAt to write for an enrollment past ENROLLED that was never started (its
    progress, an import, approved proof or a reassignment took it there): its earliest
    activity (rules.started_at_for)."""
    enrollment = view.enrollment
    if enrollment.started_at is not None or view.status == EnrollmentStatus.ENROLLED:
        return None
    progress = [
        context.progress.get((enrollment.learner_id, link.course_id)) for link in view.links
    ]
    activity = [
        at for row in progress if row is not None for at in (row.started_at, row.completed_at)
    ]
    activity += [e.submitted_at for e in view.evidence]
    activity += [a.awarded_at for a in view.awards]
    return started_at_for(enrollment.enrolled_at, activity, now)


async def evaluate_enrollments(
    enrollments: list[EnrollmentRecord], unit: Unit, context: EnrollmentContext | None = None
) -> list[EnrollmentView]:
    """Re-evaluate and store each enrollment's verdict; award the ones that just completed.
    The views hold the enrollments as stored.

    Callers hold the learners' lock (lock_learners) inside the unit's transaction. `context`:
    these enrollments' load_context, when the caller read it in this transaction and kept it
    up to date with what it wrote since; read here otherwise. An ended (unassigned)
    enrollment is left as it was (no view): assigning it again re-evaluates it.
    """
    enrollments = [e for e in enrollments if e.ended_at is None]
    if not enrollments:
        return []
    if context is None:
        context = await load_context(enrollments, unit.plugins)
    views: list[EnrollmentView] = []
    for enrollment in enrollments:
        view = context.view(enrollment, unit.now)
        verdict = view.verdict
        if verdict is not None:
            already = any(a.cycle == view.cycle for a in view.awards)
            if verdict.status == VerdictStatus.COMPLETE and not already:
                award = await _write_award_once(view, unit)
                if award is not None:
                    await unit.audit(
                        "award",
                        "Enrollment",
                        enrollment.id,
                        after={
                            "cycle": award.cycle,
                            "awardedAt": award.awarded_at.isoformat(),
                            "expiresAt": award.expires_at.isoformat() if award.expires_at else None,
                            "earnedOn": award.earned_on.isoformat(),
                            "expiresOn": award.expires_on.isoformat() if award.expires_on else None,
                        },
                    )
                    unit.emit(
                        CertificationCompleted,
                        learner_id=enrollment.learner_id,
                        certification=view.certification,
                        enrollment_id=enrollment.id,
                        due_at=enrollment.due_at,
                        cycle=award.cycle,
                        awarded_at=award.awarded_at,
                        expires_at=award.expires_at,
                        earned_on=award.earned_on,
                        expires_on=award.expires_on,
                    )
                    context.awards.setdefault(enrollment.id, []).append(award)
                    view = context.view(enrollment, unit.now)
            verdict_columns = {
                "verdict_status": stored_status(verdict, enrollment, view.facts),
                "verdict_progress": verdict.progress,
                # a Message as JSON (its msgid and params), rendered when read (gql/i18n.py)
                "verdict_explanation": i18n.dump(verdict.explanation),
                "evaluated_cycle": view.cycle,
            }
        else:
            verdict_columns = {}
        # Denormalised from the newest award for SQL sorting; refreshed on every evaluation so
        # a changed recertification window moves window_opens_at too.
        latest = view.awards[-1] if view.awards else None
        columns: dict[str, Any] = {
            **verdict_columns,
            "last_awarded_at": latest.awarded_at if latest else None,
            "last_expires_at": latest.expires_at if latest else None,
            "last_award_cycle": latest.cycle if latest else None,
            "window_opens_at": window_opens_at(view.certification, latest) if latest else None,
        }
        started_at = _started_at(view, context, unit.now)
        if started_at is not None:
            columns["started_at"] = started_at
        # an evaluation that changes nothing writes nothing (updated_at means a change)
        if any(getattr(enrollment, name) != value for name, value in columns.items()):
            view.enrollment = await update_enrollment(enrollment, **columns, updated_at=unit.now)
        views.append(view)
    return views
