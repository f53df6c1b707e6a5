"""The pure rules of cycles, expiry and course progress: no I/O, no clock, no plugins.

Each rule is written once here and used by reads (gql.domain.status), writes
(gql.domain.enrollments, gql.domain.evaluation) and the CSV import alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol, TypeVar

from gql.domain.calendar import add_months, add_months_to_date
from gql.frozen import quick_init
from gql.store.records import CourseLinkRecord, CourseRecord, ProgressRecord
from gql.vocabulary import CertificationType, ProgressStatus


class CycleRules(Protocol):
    """What the cycle rules read of a certification."""

    @property
    def type(self) -> str: ...
    @property
    def validity_months(self) -> int | None: ...
    @property
    def recertification_window_days(self) -> int: ...


class AwardFacts(Protocol):
    @property
    def enrollment_id(self) -> int: ...
    @property
    def cycle(self) -> int: ...
    @property
    def awarded_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def expires_on(self) -> date | None: ...


A = TypeVar("A", bound=AwardFacts)


@quick_init
@dataclass(frozen=True, slots=True)
class Cycle:
    number: int
    started_at: datetime | None  # None: cycle 1 counts all history


def window_opens_at(certification: CycleRules, award: AwardFacts) -> datetime | None:
    # The award's own expiry decides, not the certification's type today: an award made
    # while it was RECURRING still expires after it became PERPETUAL, and must then be
    # renewable (the renewal, PERPETUAL, never expires) instead of staying EXPIRED for good.
    if award.expires_at is None:
        return None
    return award.expires_at - timedelta(days=certification.recertification_window_days)


def current_cycle(certification: CycleRules, awards: Sequence[AwardFacts], now: datetime) -> Cycle:
    """Cycle 1 until the first award; cycle n+1 from the moment cycle n's window opens.
    `awards` in cycle order."""
    if not awards:
        return Cycle(1, None)
    latest = awards[-1]
    opens = window_opens_at(certification, latest)
    if opens is not None and now >= opens:
        return Cycle(latest.cycle + 1, opens)
    if latest.cycle <= 1:
        return Cycle(latest.cycle, None)
    previous = next((a for a in awards if a.cycle == latest.cycle - 1), None)
    return Cycle(latest.cycle, window_opens_at(certification, previous) if previous else None)


def open_cycle_starts(
    cycles: Iterable[tuple[CycleRules, Sequence[AwardFacts]]], now: datetime
) -> list[datetime]:
    """The starts of the recertification cycles open now among these enrollments, each
    given as (its certification, its awards in cycle order)."""
    starts = []
    for certification, awards in cycles:
        cycle = current_cycle(certification, awards, now)
        if cycle.started_at is not None:
            starts.append(cycle.started_at)
    return starts


def awards_by_enrollment(awards: Iterable[A]) -> dict[int, list[A]]:
    """Awards grouped by enrollment, each list in cycle order."""
    grouped: dict[int, list[A]] = defaultdict(list)
    for award in sorted(awards, key=lambda a: (a.enrollment_id, a.cycle)):
        grouped[award.enrollment_id].append(award)
    return dict(grouped)


def award_expiry(
    certification: CycleRules,
    awarded_at: datetime,
    previous: AwardFacts | None,
    zone: tzinfo = UTC,
) -> datetime | None:
    """Recertifying before expiry extends from the previous expiry, after it from the award date.
    Months are counted on the organisation's calendar (`zone`)."""
    if certification.type != CertificationType.RECURRING or not certification.validity_months:
        return None
    months = certification.validity_months
    if (
        previous is not None
        and previous.expires_at is not None
        and awarded_at < previous.expires_at
    ):
        return add_months(previous.expires_at, months, zone)
    return add_months(awarded_at, months, zone)


def award_expiry_date(
    certification: CycleRules,
    earned_on: date,
    awarded_at: datetime,
    previous: AwardFacts | None,
) -> date | None:
    """The calendar day an award expires on: award_expiry's rule on days, so a renewal
    before expiry extends from the previous award's expiresOn, else from `earned_on`."""
    if certification.type != CertificationType.RECURRING or not certification.validity_months:
        return None
    months = certification.validity_months
    renews = (
        previous is not None
        and previous.expires_at is not None
        and awarded_at < previous.expires_at
    )
    if renews and previous is not None and previous.expires_on is not None:
        return add_months_to_date(previous.expires_on, months)
    return add_months_to_date(earned_on, months)


def started_at_for(
    enrolled_at: datetime, activity: Iterable[datetime | None], now: datetime
) -> datetime:
    """When an enrollment that went beyond ENROLLED without Start began: its earliest
    activity (progress on its courses, proof, an award), never before it was enrolled (history
    recorded before that counts for it, as awards may be dated before it) nor after now."""
    earliest = min((at for at in activity if at is not None), default=now)
    return max(enrolled_at, min(earliest, now))


def counts_in(cycle: Cycle, at: datetime | None) -> bool:
    return at is not None and (cycle.started_at is None or at >= cycle.started_at)


@quick_init
@dataclass(frozen=True, slots=True)
class CourseProgressView:
    course: CourseRecord
    status: ProgressStatus
    percent: int
    started_at: datetime | None
    completed_at: datetime | None  # the latest completion, whichever cycle it counted for
    updated_at: datetime | None
    mandatory: bool
    position: int
    last_activity_at: datetime | None  # in this cycle


def course_view(
    link: CourseLinkRecord, progress: ProgressRecord | None, cycle: Cycle
) -> CourseProgressView:
    course = link.course
    if progress is None:
        return CourseProgressView(
            course,
            ProgressStatus.NOT_STARTED,
            0,
            None,
            None,
            None,
            link.mandatory,
            link.position,
            None,
        )
    completed = counts_in(cycle, progress.completed_at)
    attempt_at = progress.attempt_started_at or progress.started_at or progress.updated_at
    in_cycle = completed or counts_in(cycle, attempt_at)
    if completed:
        status, percent = ProgressStatus.COMPLETED, 100
    elif in_cycle and progress.status != ProgressStatus.COMPLETED:
        percent = progress.percent
        status = ProgressStatus.IN_PROGRESS if percent > 0 else ProgressStatus.NOT_STARTED
    else:  # finished in an earlier cycle and not touched since this one began
        status, percent = ProgressStatus.NOT_STARTED, 0
    return CourseProgressView(
        course=course,
        status=status,
        percent=percent,
        started_at=progress.attempt_started_at or progress.started_at if in_cycle else None,
        completed_at=progress.completed_at,
        updated_at=progress.updated_at,
        mandatory=link.mandatory,
        position=link.position,
        last_activity_at=progress.updated_at if in_cycle else None,
    )


def _attempt_predates(row: ProgressRecord, cycle_starts: list[datetime]) -> bool:
    attempt_at = row.attempt_started_at or row.started_at
    return attempt_at is not None and any(attempt_at < start for start in cycle_starts)


def progress_after(
    row: ProgressRecord | None,
    *,
    learner_id: int,
    course_id: int,
    percent: int | None,
    completing: bool,
    when: datetime,
    cycle_starts: list[datetime],
    now: datetime,
) -> ProgressRecord:
    """The progress row after one report (a new row has id None).

    Percent never goes down within an attempt; a completion records the latest completion
    time; a report on a course whose completion or unfinished attempt predates a now-open
    cycle starts a new attempt (otherwise a late, lower report is ignored). Shared by
    recording and importing.
    """
    if row is None:
        started = min(when, now)
        return ProgressRecord(
            id=None,
            learner_id=learner_id,
            course_id=course_id,
            percent=100 if completing else (percent or 0),
            status=ProgressStatus.COMPLETED
            if completing
            else (ProgressStatus.IN_PROGRESS if percent else ProgressStatus.NOT_STARTED),
            started_at=started,
            completed_at=when if completing else None,
            attempt_started_at=started,
            updated_at=now,
        )
    if completing:
        started_at = row.started_at
        if started_at is None or when < started_at:
            started_at = when
        return replace(
            row,
            completed_at=max(row.completed_at, when) if row.completed_at else when,
            percent=100,
            status=ProgressStatus.COMPLETED,
            started_at=started_at,
            updated_at=now,
        )
    restarts = (
        row.completed_at is not None and any(row.completed_at < s for s in cycle_starts)
        if row.status == ProgressStatus.COMPLETED
        else _attempt_predates(row, cycle_starts)
    )
    if restarts:
        # A completion or an unfinished attempt before a now-open cycle counts as not started
        # there (course_view), so this report starts a new attempt rather than topping it up.
        value = percent or 0
        return replace(
            row,
            percent=value,
            status=ProgressStatus.IN_PROGRESS if value else ProgressStatus.NOT_STARTED,
            attempt_started_at=now,
            updated_at=now,
        )
    if row.status == ProgressStatus.COMPLETED:
        return replace(row, updated_at=now)  # a late, lower report on a completed course
    value = max(row.percent, percent or 0)
    return replace(
        row,
        percent=value,
        status=ProgressStatus.IN_PROGRESS if value > 0 else row.status,
        started_at=row.started_at or now,
        attempt_started_at=row.attempt_started_at if row.started_at else now,
        updated_at=now,
    )
