"""The completion-policy protocol and the value types a policy reads and returns.

A policy is a pure function from facts to a verdict: it reads no database and does no I/O.
The host builds the facts (already filtered to the current cycle) and calls the policy again
whenever they change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

_EARLIEST = datetime.min.replace(tzinfo=UTC)


class Message(str):
    """Text for people, translatable: `id` is the English text with `{name}` placeholders
    (the gettext msgid), `params` fill them. It is a `str` holding the English rendering, so
    it goes wherever text goes; the API renders it in the request's language (docs/plugins.md,
    "Explanations"). Params are ints and strs; a date or a nested Message is rendered in the
    language too."""

    id: str
    params: Mapping[str, object]

    def __new__(cls, id: str, params: Mapping[str, object] | None = None) -> Message:
        values = dict(params or {})
        text = super().__new__(cls, id.format(**values) if values else id)
        text.id = id
        text.params = values
        return text

    def __reduce__(self) -> tuple[type[Message], tuple[str, Mapping[str, object]]]:
        return (Message, (self.id, self.params))

    def __repr__(self) -> str:
        return f"Message({self.id!r}, {self.params!r})"


class VerdictStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    REJECTED = "REJECTED"
    COMPLETE = "COMPLETE"


@dataclass(frozen=True, slots=True)
class CourseFacts:
    """One course of the certification as the learner stands on it in this cycle."""

    course_id: int
    position: int
    mandatory: bool
    percent: int
    completed: bool  # completed in this cycle
    completed_at: datetime | None  # the completion that counts for this cycle
    last_activity_at: datetime | None


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    """One submission of proof made in this cycle."""

    evidence_id: int
    status: str  # "PENDING", "APPROVED" or "REJECTED"
    submitted_at: datetime
    reviewed_at: datetime | None
    completed_on: date | None


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    certification_id: int
    kind: str  # "INTERNAL" or "EXTERNAL"
    now: datetime
    cycle: int
    cycle_started_at: datetime | None  # None for cycle 1: all history counts
    courses: tuple[CourseFacts, ...] = ()
    evidence: tuple[EvidenceFacts, ...] = ()  # oldest first


@dataclass(frozen=True, slots=True)
class Verdict:
    status: VerdictStatus
    progress: float  # 0..1
    # course IDs still to do, in the order the learner should take them (player_order);
    # the enrollment's pendingCourses lists exactly these, in this order
    remaining: tuple[int, ...] = ()
    completed_at: datetime | None = None  # required when COMPLETE
    # for people: a Message (translated) or a plain str (shown as it is in every language)
    explanation: str | Message = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.progress <= 1.0:
            raise ValueError(f"progress must be within 0..1, got {self.progress}")
        if self.status is VerdictStatus.COMPLETE and self.completed_at is None:
            raise ValueError("a COMPLETE verdict needs completed_at")


def player_order(courses: Iterable[CourseFacts]) -> tuple[int, ...]:
    """These courses' IDs in the order a learner takes them (domain.md, Start): the started
    ones by most recent activity first, then the others in certification order, mandatory
    before optional. Policies use it to order `Verdict.remaining`."""
    pending = list(courses)
    started = [c for c in pending if not c.completed and c.percent > 0]
    started.sort(key=lambda c: (c.last_activity_at or _EARLIEST, c.position), reverse=True)
    # the complement by the same test: `c not in started` compared whole dataclasses, pairwise
    fresh = [c for c in pending if c.completed or not c.percent > 0]
    fresh.sort(key=lambda c: (not c.mandatory, c.position))
    return tuple(c.course_id for c in started + fresh)


@runtime_checkable
class CompletionPolicy(Protocol):
    """What `certgraph_completion_policies` returns a list of (docs/plugins.md explains each).

    `check_submission` is optional: the host treats a policy without it as accepting every
    submission, and a class that subclasses this protocol inherits that default. Both
    methods are isolated alike: if one raises or returns the wrong type, the host logs it and
    answers `PolicyUnavailable` (no verdict; the submission is refused).
    """

    name: str
    description: str
    config_model: type[BaseModel]

    def evaluate(self, facts: PolicyFacts, config: Any) -> Verdict: ...

    def check_submission(self, facts: PolicyFacts, config: Any) -> str | None:
        """Why a learner's new submission of proof must be refused now, or None to accept."""
        return None


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """A file that passed the size and type checks, offered to `certgraph_check_upload`."""

    purpose: str  # "evidence", "badge" or "import"
    filename: str  # sanitised
    content_type: str  # sniffed
    size_bytes: int
    sha256: str
    path: str  # a temporary file holding the bytes, readable until the hook returns
    uploader_id: int | None


@dataclass(frozen=True, slots=True)
class UploadRefusal:
    """Returned by `certgraph_check_upload` to refuse a file; `reason` is shown to the user."""

    reason: str
