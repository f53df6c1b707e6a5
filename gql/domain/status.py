"""The enrollment read model: the facts a policy sees, the verdict and the derived status,
all computed from `now` when read (a read never writes; noting an expiry is left to writes
and `certgraph sweep`, docs/recurrence.md)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from gql import clock, i18n
from gql.domain.errors import t
from gql.domain.rules import (
    CourseProgressView,
    Cycle,
    awards_by_enrollment,
    counts_in,
    course_view,
    current_cycle,
    window_opens_at,
)
from gql.plugins import PluginHost, PolicyUnavailable, get_plugin_host
from gql.policy import (
    CourseFacts,
    EvidenceFacts,
    PolicyFacts,
    Verdict,
    VerdictStatus,
    player_order,
)
from gql.store import course_links as store_course_links
from gql.store import reads
from gql.store.records import (
    AwardRecord,
    CertificationRecord,
    CourseLinkRecord,
    EnrollmentRecord,
    EvidenceRecord,
    ProgressRecord,
)
from gql.vocabulary import CertificationKind, ProgressStatus

__all__ = ["CourseProgressView", "Cycle", "current_cycle", "window_opens_at"]


class EnrollmentStatus(StrEnum):
    ENROLLED = "ENROLLED"
    STARTED = "STARTED"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    REJECTED = "REJECTED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"


# What Enrollment.verdict_status stores: the verdict as a status, before awards are considered.
STORED_COMPLETE = "COMPLETE"


@dataclass(slots=True)
class EnrollmentView:
    enrollment: EnrollmentRecord
    certification: CertificationRecord
    status: EnrollmentStatus
    progress_percent: int
    explanation: str
    cycle: int
    cycle_started_at: datetime | None
    overdue: bool
    completed_at: datetime | None
    expires_at: datetime | None
    window_open: bool
    # the award in force's calendar days (Award.earned_on, expires_on)
    completed_on: date | None
    expires_on: date | None
    verdict: Verdict | None  # None when the policy could not give one
    facts: PolicyFacts
    courses: list[CourseProgressView] = field(default_factory=list)
    pending_courses: list[CourseProgressView] = field(default_factory=list)
    awards: list[AwardRecord] = field(default_factory=list)
    evidence: list[EvidenceRecord] = field(default_factory=list)
    links: list[CourseLinkRecord] = field(default_factory=list)


def proof_counts_in(cycle: Cycle, evidence: EvidenceRecord) -> bool:
    """Proof counts for the cycle it was submitted in, unless the completion it states is
    from before that cycle began: a certificate that lapsed is no renewal."""
    if not counts_in(cycle, evidence.submitted_at):
        return False
    started = cycle.started_at
    return (
        started is None
        or evidence.completed_on is None
        or evidence.completed_on >= started.astimezone(UTC).date()
    )


def build_facts(
    certification: CertificationRecord,
    courses: list[CourseProgressView],
    evidence: list[EvidenceRecord],
    cycle: Cycle,
    now: datetime,
) -> PolicyFacts:
    in_cycle = [e for e in evidence if proof_counts_in(cycle, e)]
    in_cycle.sort(key=lambda e: (e.submitted_at, e.id))
    return PolicyFacts(
        certification_id=certification.id,
        kind=str(certification.kind),
        now=now,
        cycle=cycle.number,
        cycle_started_at=cycle.started_at,
        courses=tuple(
            CourseFacts(
                course_id=c.course.id,
                position=c.position,
                mandatory=c.mandatory,
                percent=c.percent,
                completed=c.status == ProgressStatus.COMPLETED,
                completed_at=c.completed_at if c.status == ProgressStatus.COMPLETED else None,
                last_activity_at=c.last_activity_at,
            )
            for c in courses
        ),
        evidence=tuple(
            EvidenceFacts(
                evidence_id=e.id,
                status=str(e.status),
                submitted_at=e.submitted_at,
                reviewed_at=e.reviewed_at,
                completed_on=e.completed_on,
            )
            for e in in_cycle
        ),
    )


def stored_status(verdict: Verdict, enrollment: EnrollmentRecord, facts: PolicyFacts) -> str:
    """The verdict as Enrollment.verdict_status (what RELEVANCE sorts on before awards)."""
    if verdict.status == VerdictStatus.COMPLETE:
        return STORED_COMPLETE
    if verdict.status == VerdictStatus.PENDING_APPROVAL:
        return EnrollmentStatus.PENDING_APPROVAL
    if verdict.status == VerdictStatus.REJECTED:
        return EnrollmentStatus.REJECTED
    active = any(c.percent > 0 or c.completed for c in facts.courses)
    if verdict.status == VerdictStatus.IN_PROGRESS or active or enrollment.started_at is not None:
        return EnrollmentStatus.STARTED
    return EnrollmentStatus.ENROLLED


def evaluate(
    certification: CertificationRecord, facts: PolicyFacts, plugins: PluginHost
) -> Verdict:
    """Ask the certification's policy; PolicyUnavailable when there is no verdict to be had."""
    return plugins.evaluate(certification.policy_name, facts, certification.policy_config)


def derive_view(
    enrollment: EnrollmentRecord,
    certification: CertificationRecord,
    links: list[CourseLinkRecord],
    progress: dict[int, ProgressRecord],
    awards: list[AwardRecord],
    evidence: list[EvidenceRecord],
    now: datetime,
    plugins: PluginHost,
) -> EnrollmentView:
    awards = sorted(awards, key=lambda a: a.cycle)
    cycle = current_cycle(certification, awards, now)
    courses = [course_view(link, progress.get(link.course_id), cycle) for link in links]
    facts = build_facts(certification, courses, evidence, cycle, now)
    verdict: Verdict | None
    try:
        verdict = evaluate(certification, facts, plugins)
        explanation = verdict.explanation
        progress_value = verdict.progress
        verdict_state = stored_status(verdict, enrollment, facts)
    except PolicyUnavailable as exc:
        verdict = None
        known = i18n.load(enrollment.verdict_explanation)
        explanation = (
            t("{explanation} (last known state: {error})", explanation=known, error=str(exc))
            if known
            else t("(last known state: {error})", error=str(exc))
        )
        progress_value = enrollment.verdict_progress
        verdict_state = enrollment.verdict_status
        if verdict_state == EnrollmentStatus.ENROLLED and enrollment.started_at is not None:
            verdict_state = EnrollmentStatus.STARTED

    latest = awards[-1] if awards else None
    if latest is not None and (latest.expires_at is None or now < latest.expires_at):
        status = EnrollmentStatus.COMPLETED
    elif latest is not None:
        status = EnrollmentStatus.EXPIRED
    elif verdict_state == STORED_COMPLETE:
        status = EnrollmentStatus.STARTED  # complete but not yet awarded: the next write awards
    else:
        status = EnrollmentStatus(verdict_state)
    in_force = status == EnrollmentStatus.COMPLETED
    opens = window_opens_at(certification, latest) if latest is not None else None
    window_open = opens is not None and now >= opens
    return EnrollmentView(
        enrollment=enrollment,
        certification=certification,
        status=status,
        progress_percent=max(0, min(100, round(progress_value * 100))),
        explanation=explain(status, explanation, latest, cycle.number, window_open),
        cycle=cycle.number,
        cycle_started_at=cycle.started_at,
        overdue=(
            enrollment.due_at is not None
            and now > enrollment.due_at
            and status != EnrollmentStatus.COMPLETED
        ),
        completed_at=latest.awarded_at if in_force and latest else None,
        expires_at=latest.expires_at if in_force and latest else None,
        window_open=window_open,
        completed_on=latest.earned_on if in_force and latest else None,
        expires_on=latest.expires_on if in_force and latest else None,
        verdict=verdict,
        facts=facts,
        courses=courses,
        pending_courses=pending_courses(courses, verdict, facts),
        awards=awards,
        evidence=sorted(evidence, key=lambda e: (e.submitted_at, e.id)),
        links=links,
    )


def pending_courses(
    courses: list[CourseProgressView], verdict: Verdict | None, facts: PolicyFacts
) -> list[CourseProgressView]:
    """The courses the policy says remain, in its order; without a verdict (the policy is
    not installed) every course not done in this cycle, in player order."""
    by_id = {c.course.id: c for c in courses}
    if verdict is not None:
        remaining = verdict.remaining
    else:
        remaining = player_order(f for f in facts.courses if not f.completed)
    # a policy's unknown or repeated IDs are ignored
    return [by_id[i] for i in dict.fromkeys(remaining) if i in by_id]


def progress_counts(view: EnrollmentView) -> tuple[int, int]:
    """(done, required) for Enrollment.progressDetail. INTERNAL: the mandatory courses (every
    course when none is flagged) completed in this cycle; EXTERNAL: one proof, done when the
    verdict is complete (or, without a verdict, an award is in force)."""
    if view.certification.kind == CertificationKind.EXTERNAL:
        complete = (
            view.verdict.status == VerdictStatus.COMPLETE
            if view.verdict is not None
            else view.status == EnrollmentStatus.COMPLETED
        )
        return (1 if complete else 0), 1
    required = [c for c in view.facts.courses if c.mandatory] or list(view.facts.courses)
    return sum(1 for c in required if c.completed), len(required)


def explain(
    status: EnrollmentStatus,
    explanation: str,
    latest: AwardRecord | None,
    cycle: int,
    window_open: bool,
) -> str:
    """The policy's explanation, told against the status: until when a completion is valid
    and what the open next cycle still needs; since when an expired one has lapsed."""
    if latest is None or latest.expires_at is None:
        return explanation
    # the award's own day (the organisation's calendar; the UTC day of awards written
    # before it was kept)
    until = latest.expires_on or latest.expires_at.astimezone(UTC).date()
    if status == EnrollmentStatus.COMPLETED:
        if window_open:
            return t(
                "valid until {until}; recertification is open (cycle {cycle}): {explanation}",
                until=until,
                cycle=cycle,
                explanation=explanation,
            )
        if explanation:
            return t("{explanation}; valid until {until}", explanation=explanation, until=until)
        return t("valid until {until}", until=until)
    if status == EnrollmentStatus.EXPIRED:
        return t(
            "expired on {until}; cycle {cycle}: {explanation}",
            until=until,
            cycle=cycle,
            explanation=explanation,
        )
    return explanation


@dataclass(slots=True)
class EnrollmentContext:
    """What derive_view needs for a batch of enrollments, loaded in a fixed number of queries."""

    certifications: dict[int, CertificationRecord]
    links: dict[int, list[CourseLinkRecord]]
    progress: dict[tuple[int, int], ProgressRecord]
    awards: dict[int, list[AwardRecord]]
    evidence: dict[int, list[EvidenceRecord]]
    plugins: PluginHost

    def view(self, enrollment: EnrollmentRecord, now: datetime) -> EnrollmentView:
        cert_id: int = enrollment.certification_id
        learner_id: int = enrollment.learner_id
        links = self.links.get(cert_id, [])
        progress = {
            link.course_id: self.progress[(learner_id, link.course_id)]
            for link in links
            if (learner_id, link.course_id) in self.progress
        }
        return derive_view(
            enrollment,
            self.certifications[cert_id],
            links,
            progress,
            self.awards.get(enrollment.id, []),
            self.evidence.get(enrollment.id, []),
            now,
            self.plugins,
        )


async def course_links(certification_ids: list[int]) -> dict[int, list[CourseLinkRecord]]:
    """Each certification's courses (with the course), in position order; one without courses
    is absent. The process keeps them between requests while they hold (gql.store.course_links)."""
    return await store_course_links.course_links(certification_ids)


async def load_awards(enrollment_ids: list[int]) -> dict[int, list[AwardRecord]]:
    """Each enrollment's awards, by cycle (enrollments without one are absent)."""
    if not enrollment_ids:
        return {}
    return awards_by_enrollment(await reads.awards(enrollment_ids))


async def load_context(
    enrollments: list[EnrollmentRecord], plugins: PluginHost | None = None
) -> EnrollmentContext:
    """What derive_view needs for these enrollments (each carries its certification)."""
    certifications = {e.certification_id: e.certification for e in enrollments}
    cert_ids = sorted(certifications)
    links = await course_links(cert_ids)
    enrollment_ids = [e.id for e in enrollments]
    learner_ids = sorted({e.learner_id for e in enrollments})
    progress = {
        (row.learner_id, row.course_id): row
        # certifications without courses have no progress to read
        for row in await reads.progress_on_certifications(
            learner_ids, [c for c in cert_ids if c in links]
        )
    }
    # An enrollment never awarded has no award rows (last_award_cycle is denormalised from
    # the newest one in the transaction that writes it): only the others are read.
    awards = await load_awards([e.id for e in enrollments if e.last_award_cycle is not None])
    evidence: dict[int, list[EvidenceRecord]] = defaultdict(list)
    for item in await reads.evidence_of(enrollment_ids):
        evidence[item.enrollment_id].append(item)
    return EnrollmentContext(
        certifications, links, progress, awards, dict(evidence), plugins or get_plugin_host()
    )


async def describe_enrollments(
    enrollments: list[EnrollmentRecord], plugins: PluginHost | None = None
) -> dict[int, EnrollmentView]:
    """The read model of each enrollment, in a fixed number of queries for any batch size.
    Read-only: an expiry seen here is noted by the next write or sweep."""
    if not enrollments:
        return {}
    context = await load_context(enrollments, plugins)
    now = clock.now()
    return {e.id: context.view(e, now) for e in enrollments}
