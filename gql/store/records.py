"""Immutable rows the store reads with Tortoise's `.values()` for the hot read paths.

Building a model per row costs more than the statement on these paths (hundreds of course
links and progress rows per page, a token on every request); values come converted by the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gql.store.models import ProgressStatus, Role


@dataclass(frozen=True, slots=True)
class CourseRow:
    id: int
    name: str
    description: str
    duration_minutes: int | None
    published_at: datetime


@dataclass(frozen=True, slots=True)
class CourseLinkRow:
    """A certification's course: a certification_course row with its course."""

    id: int
    certification_id: int
    course_id: int
    mandatory: bool
    position: int
    course: CourseRow


@dataclass(frozen=True, slots=True)
class ProgressRow:
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


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The columns of a token's user that make an Actor."""

    id: int
    name: str
    email: str
    role: Role
    manager_id: int | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An unrevoked api_token row with its user."""

    id: int
    last_used_at: datetime | None
    user: TokenUser


@dataclass(frozen=True, slots=True)
class LearnerRow:
    """What the access rules read of a user."""

    id: int
    manager_id: int | None
