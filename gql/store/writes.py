"""Writes the use cases share: enrollments, progress rows and audit rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from gql.store.models import AuditEvent, CourseProgress, Enrollment
from gql.store.records import ENROLLMENT_COLUMNS, EnrollmentRecord, ProgressRecord

# The columns a progress report changes.
PROGRESS_FIELDS = (
    "percent",
    "status",
    "started_at",
    "completed_at",
    "attempt_started_at",
    "updated_at",
)


def audit_row(
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    detail: str | None,
) -> AuditEvent:
    return AuditEvent(
        at=at,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        detail=detail,
    )


async def insert_audit_event(
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    detail: str | None,
) -> None:
    """Append an audit row. One statement."""
    await audit_row(at, actor_id, action, object_type, object_id, before, after, detail).save()


async def insert_audit_events(rows: Sequence[AuditEvent]) -> None:
    """Append several audit rows as one batch (one prepared INSERT)."""
    if rows:
        await AuditEvent.bulk_create(list(rows))


def _progress_model(row: ProgressRecord) -> CourseProgress:
    key = {} if row.id is None else {"id": row.id}
    return CourseProgress(
        **key,
        learner_id=row.learner_id,
        course_id=row.course_id,
        percent=row.percent,
        status=row.status,
        started_at=row.started_at,
        completed_at=row.completed_at,
        attempt_started_at=row.attempt_started_at,
        updated_at=row.updated_at,
    )


async def save_progress(row: ProgressRecord) -> ProgressRecord:
    """Insert a new progress row (id None) or update the columns a report changes; the row
    as stored. One statement."""
    model = _progress_model(row)
    if row.id is None:
        await model.save()
        return replace(row, id=model.id)
    await model.save(update_fields=list(PROGRESS_FIELDS), force_update=True)
    return row


async def write_progress(
    created: list[ProgressRecord], changed: list[ProgressRecord], batch_size: int
) -> None:
    """Insert and update many progress rows in bulk."""
    if created:
        await CourseProgress.bulk_create(
            [_progress_model(row) for row in created], batch_size=batch_size
        )
    if changed:
        await CourseProgress.bulk_update(
            [_progress_model(row) for row in changed],
            fields=list(PROGRESS_FIELDS),
            batch_size=batch_size,
        )


async def insert_enrollment(draft: EnrollmentRecord) -> EnrollmentRecord:
    """Write a new enrollment (`draft.id` is ignored); the record as stored. One statement."""
    model = await Enrollment.create(
        **{column: getattr(draft, column) for column in ENROLLMENT_COLUMNS if column != "id"}
    )
    return replace(draft, id=model.id)


async def update_enrollment(enrollment: EnrollmentRecord, **values: Any) -> EnrollmentRecord:
    """Set these columns of an enrollment; the record as stored. One statement."""
    # Tortoise keeps the UPDATE of a save(update_fields=...) per set of columns, where
    # filter().update() would build its SQL again on every call.
    await Enrollment(id=enrollment.id, **values).save(update_fields=list(values))
    return replace(enrollment, **values)
