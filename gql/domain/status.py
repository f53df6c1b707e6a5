"""The enrollment read model: the facts a policy sees, the verdict and the derived status,
all computed from `now` when read (a read never writes; noting an expiry is left to writes
and `certgraph sweep`, docs/recurrence.md)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gql import clock
from gql.domain.rules import (
    CourseProgressView,
    Cycle,
    awards_by_enrollment,
    counts_in,
    course_view,
    current_cycle,
    player_queue,
    window_opens_at,
)
from gql.plugins import PluginHost, PolicyUnavailable, get_plugin_host
from gql.policy import CourseFacts, EvidenceFacts, PolicyFacts, Verdict, VerdictStatus
from gql.store import reads
from gql.store.models import Certification, Enrollment, ProgressStatus
from gql.store.records import AwardRecord, CourseLinkRecord, EvidenceRecord, ProgressRecord

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
    enrollment: Enrollment
    certification: Certification
    status: EnrollmentStatus
    progress_percent: int
    explanation: str
    cycle: int
    cycle_started_at: datetime | None
    overdue: bool
    completed_at: datetime | None
    expires_at: datetime | None
    window_open: bool
    verdict: Verdict | None  # None when the policy could not give one
    facts: PolicyFacts
    courses: list[CourseProgressView] = field(default_factory=list)
    pending_courses: list[CourseProgressView] = field(default_factory=list)
    awards: list[AwardRecord] = field(default_factory=list)
    evidence: list[EvidenceRecord] = field(default_factory=list)
    links: list[CourseLinkRecord] = field(default_factory=list)


def build_facts(
    certification: Certification,
    courses: list[CourseProgressView],
    evidence: list[EvidenceRecord],
    cycle: Cycle,
    now: datetime,
) -> PolicyFacts:
    in_cycle = [e for e in evidence if counts_in(cycle, e.submitted_at)]
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


def stored_status(verdict: Verdict, enrollment: Enrollment, facts: PolicyFacts) -> str:
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


def evaluate(certification: Certification, facts: PolicyFacts, plugins: PluginHost) -> Verdict:
    """Ask the certification's policy; PolicyUnavailable when there is no verdict to be had."""
    return plugins.evaluate(certification.policy_name, facts, certification.policy_config)


def derive_view(
    enrollment: Enrollment,
    certification: Certification,
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
        explanation = f"{enrollment.verdict_explanation} (last known state: {exc})".strip()
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
    return EnrollmentView(
        enrollment=enrollment,
        certification=certification,
        status=status,
        progress_percent=max(0, min(100, round(progress_value * 100))),
        explanation=explanation,
        cycle=cycle.number,
        cycle_started_at=cycle.started_at,
        overdue=(
            enrollment.due_at is not None
            and now > enrollment.due_at
            and status != EnrollmentStatus.COMPLETED
        ),
        completed_at=latest.awarded_at if in_force and latest else None,
        expires_at=latest.expires_at if in_force and latest else None,
        window_open=opens is not None and now >= opens,
        verdict=verdict,
        facts=facts,
        courses=courses,
        pending_courses=player_queue(courses),
        awards=awards,
        evidence=sorted(evidence, key=lambda e: (e.submitted_at, e.id)),
        links=links,
    )


@dataclass(slots=True)
class EnrollmentContext:
    """What derive_view needs for a batch of enrollments, loaded in a fixed number of queries."""

    certifications: dict[int, Certification]
    links: dict[int, list[CourseLinkRecord]]
    progress: dict[tuple[int, int], ProgressRecord]
    awards: dict[int, list[AwardRecord]]
    evidence: dict[int, list[EvidenceRecord]]
    plugins: PluginHost

    def view(self, enrollment: Enrollment, now: datetime) -> EnrollmentView:
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
    """Each certification's courses (with the course), in position order."""
    grouped: dict[int, list[CourseLinkRecord]] = defaultdict(list)
    for row in await reads.course_links(sorted(set(certification_ids))):
        grouped[row.certification_id].append(row)
    return dict(grouped)


async def load_awards(enrollment_ids: list[int]) -> dict[int, list[AwardRecord]]:
    """Each enrollment's awards, by cycle (enrollments without one are absent)."""
    if not enrollment_ids:
        return {}
    return awards_by_enrollment(await reads.awards(enrollment_ids))


def joined_certifications(enrollments: list[Enrollment]) -> dict[int, Certification]:
    """The certifications these enrollments were read with (select_related), by id."""
    joined: dict[int, Certification] = {}
    for e in enrollments:
        certification = e.certification  # an unread relation is a query, never sent here
        if isinstance(certification, Certification):
            joined[certification.id] = certification
    return joined


async def load_context(
    enrollments: list[Enrollment],
    plugins: PluginHost | None = None,
    certifications: dict[int, Certification] | None = None,
) -> EnrollmentContext:
    """What derive_view needs for these enrollments; `certifications`: those already read
    (by default the ones the enrollments were read with), the rest are read here."""
    cert_ids = sorted({e.certification_id for e in enrollments})
    certifications = dict(
        joined_certifications(enrollments) if certifications is None else certifications
    )
    missing = [c for c in cert_ids if c not in certifications]
    if missing:
        certifications.update({c.id: c for c in await Certification.filter(id__in=missing)})
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
    awards = await load_awards(enrollment_ids)
    evidence: dict[int, list[EvidenceRecord]] = defaultdict(list)
    for item in await reads.evidence_of(enrollment_ids):
        evidence[item.enrollment_id].append(item)
    return EnrollmentContext(
        certifications, links, progress, awards, dict(evidence), plugins or get_plugin_host()
    )


async def describe_enrollments(
    enrollments: list[Enrollment],
    plugins: PluginHost | None = None,
    certifications: dict[int, Certification] | None = None,
) -> dict[int, EnrollmentView]:
    """The read model of each enrollment, in a fixed number of queries for any batch size.
    Read-only: an expiry seen here is noted by the next write or sweep."""
    if not enrollments:
        return {}
    context = await load_context(enrollments, plugins, certifications)
    now = clock.now()
    return {e.id: context.view(e, now) for e in enrollments}
