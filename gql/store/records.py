"""The read model: one immutable record per concept, what the store hands the domain and the
domain hands the API. Bulk reads fill them from Tortoise's `.values_list()` (no model per
row); a few-row read with a joined table, and a write, turn models into them (`record_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from tortoise.models import Model

from gql.frozen import quick_init
from gql.vocabulary import (
    CertificationKind,
    CertificationState,
    CertificationType,
    EnrollmentOrigin,
    EvidenceStatus,
    ProgressStatus,
    Role,
)

R = TypeVar("R")


@quick_init
@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    email: str
    role: Role
    manager_id: int | None
    deactivated_at: datetime | None = None  # set: deactivated, credentials refused


USER_COLUMNS = ("id", "name", "email", "role", "manager_id", "deactivated_at")


@quick_init
@dataclass(frozen=True, slots=True)
class CourseRecord:
    id: int
    name: str
    description: str
    duration_minutes: int | None
    published_at: datetime
    retired_at: datetime | None = None  # set: retired, takes no new links


COURSE_COLUMNS = ("id", "name", "description", "duration_minutes", "published_at", "retired_at")


@quick_init
@dataclass(frozen=True, slots=True)
class CourseLinkRecord:
    """A certification's course: a certification_course row with its course."""

    id: int
    certification_id: int
    course_id: int
    mandatory: bool
    position: int
    course: CourseRecord


@quick_init
@dataclass(frozen=True, slots=True)
class CertificationRecord:
    id: int
    name: str
    overview: str
    kind: CertificationKind
    type: CertificationType
    issuer: str
    validity_months: int | None
    recertification_window_days: int
    days_to_complete: int | None
    state: CertificationState
    published_at: datetime | None
    policy_name: str
    policy_config: dict[str, Any]
    badge_name: str | None
    badge_sha256: str | None
    badge_content_type: str | None


CERTIFICATION_COLUMNS = (
    "id",
    "name",
    "overview",
    "kind",
    "type",
    "issuer",
    "validity_months",
    "recertification_window_days",
    "days_to_complete",
    "state",
    "published_at",
    "policy_name",
    "policy_config",
    "badge_name",
    "badge_sha256",
    "badge_content_type",
)


@quick_init
@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    """An enrollment with its certification, and the policy's last stored verdict."""

    id: int
    learner_id: int
    certification_id: int
    origin: EnrollmentOrigin
    assigned_by_id: int | None
    enrolled_at: datetime
    started_at: datetime | None
    due_at: datetime | None
    verdict_status: str
    verdict_progress: float
    verdict_explanation: str
    evaluated_cycle: int
    last_awarded_at: datetime | None
    last_expires_at: datetime | None
    last_award_cycle: int | None
    window_opens_at: datetime | None
    updated_at: datetime
    certification: CertificationRecord
    ended_at: datetime | None = None  # set: unassigned (ended); assigning again reopens it


ENROLLMENT_COLUMNS = (
    "id",
    "learner_id",
    "certification_id",
    "origin",
    "assigned_by_id",
    "enrolled_at",
    "started_at",
    "due_at",
    "verdict_status",
    "verdict_progress",
    "verdict_explanation",
    "evaluated_cycle",
    "last_awarded_at",
    "last_expires_at",
    "last_award_cycle",
    "window_opens_at",
    "updated_at",
    "ended_at",
)


@quick_init
@dataclass(frozen=True, slots=True)
class ProgressRecord:
    """A learner's progress on a course; `id` None for a row not yet written."""

    id: int | None
    learner_id: int
    course_id: int
    percent: int
    status: ProgressStatus
    started_at: datetime | None
    completed_at: datetime | None
    attempt_started_at: datetime | None
    updated_at: datetime


@quick_init
@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An unrevoked api_token row with its user."""

    id: int
    last_used_at: datetime | None
    user: UserRecord


@quick_init
@dataclass(frozen=True, slots=True)
class LearnerRecord:
    """What the access rules read of a user."""

    id: int
    manager_id: int | None


@quick_init
@dataclass(frozen=True, slots=True)
class AwardRecord:
    """An award: one per enrollment and cycle."""

    id: int
    enrollment_id: int
    cycle: int
    awarded_at: datetime
    expires_at: datetime | None
    earned_on: date
    expires_on: date | None


def award_record(row: Sequence[Any]) -> AwardRecord:
    """An AwardRecord from AWARD_COLUMNS' values. An award written by a release before the
    days were kept (still serving during a rolling upgrade) has none: its instants' UTC days,
    as migration 0006 gave the awards before it."""
    id_, enrollment_id, cycle, awarded_at, expires_at, earned_on, expires_on = row
    if earned_on is None:
        earned_on = awarded_at.astimezone(UTC).date()
        if expires_at is not None:
            expires_on = expires_at.astimezone(UTC).date()
    return AwardRecord(id_, enrollment_id, cycle, awarded_at, expires_at, earned_on, expires_on)


AWARD_COLUMNS = (
    "id",
    "enrollment_id",
    "cycle",
    "awarded_at",
    "expires_at",
    "earned_on",
    "expires_on",
)


@quick_init
@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """An evidence submission and its review."""

    id: int
    enrollment_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: EvidenceStatus
    submitted_at: datetime
    completed_on: date | None
    note: str | None
    reviewed_at: datetime | None
    review_comment: str | None
    reviewed_by_id: int | None


EVIDENCE_COLUMNS = (
    "id",
    "enrollment_id",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "status",
    "submitted_at",
    "completed_on",
    "note",
    "reviewed_at",
    "review_comment",
    "reviewed_by_id",
)


@quick_init
@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the append-only audit log."""

    id: int
    at: datetime
    actor_id: int | None
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str | None


AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "detail",
)


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in fields(cls))
    return names


def record_of(cls: type[R], model: Model, **nested: Any) -> R:
    """The record of a model a write saved (or read whole): its columns by the record's field
    names; `nested` gives the related records (an enrollment's certification)."""
    values = {
        name: nested[name] if name in nested else getattr(model, name) for name in _field_names(cls)
    }
    return cls(**values)


# An enrollment's columns, then its certification's: one row for enrollment_with_certification.
ENROLLMENT_WITH_CERTIFICATION_COLUMNS = (
    *ENROLLMENT_COLUMNS,
    *(f"certification__{column}" for column in CERTIFICATION_COLUMNS),
)


def enrollment_with_certification(*row: Any) -> EnrollmentRecord:
    n = len(ENROLLMENT_COLUMNS)
    return EnrollmentRecord(
        **dict(zip(ENROLLMENT_COLUMNS, row[:n], strict=True)),
        certification=CertificationRecord(*row[n:]),
    )


def enrollment_record_of(enrollment: Model, certification: Model) -> EnrollmentRecord:
    return record_of(
        EnrollmentRecord,
        enrollment,
        certification=record_of(CertificationRecord, certification),
    )
