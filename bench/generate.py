"""A deterministic benchmark dataset, written with bulk inserts.

    python -m bench.generate --scale 1 --db sqlite://./var/bench.sqlite3
    python -m bench.generate --scale 0.1 --db postgres://postgres@127.0.0.1:5432/certgraph_bench

Scale 1 is 10k learners, 500 certifications, 5k courses, about 20 enrollments per learner and
about 1M course progress rows (1% of learners are heavy users with about 1,000 rows each).
2% of the (other) learners have been deactivated and 2% of the enrollments ended
(unassigned) after their history, so that the lists' defaults, which leave both out, select.

The rows are what certgraph would have written, not just plausible-looking: every
enrollment's stored verdict, cycle and award columns come from the rules as the floor writes
them out (bench.floor: view_of, award_expiry, window_opens, stored_status), evaluated over the
generated progress, evidence and awards as an evaluation after each write would;
`python -m bench.verify` checks them against certgraph's own answers.

The schema comes from the project's migrations (`certgraph migrate`). The database is
recreated: an existing one is overwritten only when it is empty or was made by this
generator (it holds the bench_meta table), so a mistyped URL can't wipe real data.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import heapq
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from bench import floor as rules

DEFAULT_SEED = 20261101
TOKENS_PATH = Path(__file__).parent / "results" / "tokens.json"

# Workload sizes written to bench_meta for bench.run (tokens are derived from the seed).
SAMPLE_LEARNERS = 50
REPORT_CERTIFICATIONS = 10
# The lifecycle (deactivateUser, unassignCertification) after the history: shares of the
# learners (heavy ones excepted) deactivated and of the enrollments ended.
DEACTIVATED_SHARE = 0.02
ENDED_SHARE = 0.02

_WORDS = [
    "Applied",
    "Advanced",
    "Agile",
    "Cloud",
    "Data",
    "Secure",
    "Modern",
    "Practical",
    "Lean",
    "Global",
    "Digital",
    "Core",
    "Foundations",
    "Essentials",
    "Leadership",
    "Compliance",
    "Safety",
    "Analytics",
    "Design",
    "Operations",
    "Quality",
    "Network",
    "Finance",
    "Privacy",
    "Ethics",
    "Testing",
    "Platform",
    "Service",
    "Customer",
    "Project",
    "Risk",
]
_TOPICS = [
    "Kubernetes",
    "Python",
    "SQL",
    "Governance",
    "Onboarding",
    "Negotiation",
    "Accounting",
    "GDPR",
    "Firewalls",
    "Scrum",
    "Forklift",
    "Hygiene",
    "Welding",
    "Pricing",
    "Sales",
    "Support",
    "Writing",
    "Statistics",
    "Linux",
    "Azure",
]
_ISSUERS = ("ISC2", "CompTIA", "PMI", "AWS", "Cisco", "Linux Foundation", "Google", "Microsoft")


# --- rows ------------------------------------------------------------------------------------
# Plain slotted records carrying the attribute names of the Tortoise models, so the domain's
# read-model functions can evaluate them without a database round trip.


@dataclass(slots=True)
class CourseRef:
    id: int


@dataclass(slots=True)
class LinkRow:
    id: int
    certification_id: int
    course_id: int
    mandatory: bool
    position: int
    course: CourseRef


@dataclass(slots=True)
class CertRow:
    id: int
    name: str
    overview: str
    kind: str
    type: str
    issuer: str
    validity_months: int | None
    recertification_window_days: int
    days_to_complete: int | None
    state: str
    published_at: datetime | None
    policy_name: str
    policy_config: dict[str, Any]
    badge_name: str | None
    created_at: datetime
    updated_at: datetime
    links: list[LinkRow] = field(default_factory=list)


@dataclass(slots=True)
class ProgressRecord:
    course_id: int
    percent: int
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    attempt_started_at: datetime | None
    updated_at: datetime


@dataclass(slots=True)
class AwardRow:
    id: int
    enrollment_id: int
    cycle: int
    awarded_at: datetime
    expires_at: datetime | None
    created_at: datetime
    expiry_noted_at: datetime | None = None


@dataclass(slots=True)
class EvidenceRow:
    id: int
    enrollment_id: int
    sha256: str
    status: str
    submitted_at: datetime
    completed_on: date | None
    reviewed_by_id: int | None
    reviewed_at: datetime | None
    review_comment: str | None


@dataclass(slots=True)
class EnrollmentRow:
    id: int
    learner_id: int
    certification_id: int
    origin: str
    assigned_by_id: int | None
    enrolled_at: datetime
    started_at: datetime | None
    due_at: datetime | None
    verdict_status: str = "ENROLLED"
    verdict_progress: float = 0.0
    verdict_explanation: str = ""
    evaluated_cycle: int = 1
    last_awarded_at: datetime | None = None
    last_expires_at: datetime | None = None
    last_award_cycle: int | None = None
    window_opens_at: datetime | None = None
    updated_at: datetime | None = None


# --- columns of each table, in the order rows are built ----------------------------------

COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("id", "name", "email", "role", "manager_id", "created_at", "deactivated_at"),
    "api_token": (
        "id", "user_id", "token_hash", "name", "created_at", "expires_at", "revoked_at",
        "last_used_at",
    ),
    "course": ("id", "name", "description", "duration_minutes", "published_at", "updated_at"),
    "certification": (
        "id", "name", "overview", "kind", "type", "issuer", "validity_months",
        "recertification_window_days", "days_to_complete", "state", "published_at",
        "policy_name", "policy_config", "badge_name", "badge_sha256", "badge_content_type",
        "created_at", "updated_at",
    ),
    "certification_course": ("id", "certification_id", "course_id", "mandatory", "position"),
    "enrollment": (
        "id", "learner_id", "certification_id", "origin", "assigned_by_id", "enrolled_at",
        "started_at", "due_at", "verdict_status", "verdict_progress", "verdict_explanation",
        "evaluated_cycle", "last_awarded_at", "last_expires_at", "last_award_cycle",
        "window_opens_at", "updated_at", "ended_at",
    ),
    "course_progress": (
        "id", "learner_id", "course_id", "percent", "status", "started_at", "completed_at",
        "attempt_started_at", "updated_at",
    ),
    "evidence": (
        "id", "enrollment_id", "sha256", "filename", "content_type", "size_bytes", "status",
        "submitted_at", "completed_on", "note", "reviewed_by_id", "reviewed_at", "review_comment",
    ),
    "award": (
        "id", "enrollment_id", "cycle", "awarded_at", "expires_at", "created_at",
        "expiry_noted_at",
    ),
    "audit_event": (
        "id", "at", "actor_id", "action", "object_type", "object_id", "before", "after", "detail",
    ),
}  # fmt: skip
# Parents before children, so foreign keys hold at every insert.
TABLE_ORDER = tuple(COLUMNS)
JSON_COLUMNS = {
    ("certification", "policy_config"),
    ("audit_event", "before"),
    ("audit_event", "after"),
}


# certgraph's defaults: the issuer of INTERNAL certifications, and each policy's config.
ORGANISATION = "Our organisation"
POLICY_CONFIG: dict[str, dict[str, Any]] = {
    "mandatory-subset": {},
    "external-evidence": {
        "requiresApproval": True,
        "completionDate": "approval",
        "requireMandatoryCourses": False,
    },
}


def between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A whole second in [start, end) drawn from `rng` (start when the range is empty)."""
    if end <= start:
        return start
    seconds = (end - start).total_seconds()
    return (start + timedelta(seconds=int(rng.random() * seconds))).replace(microsecond=0)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def rules_cert(cert: CertRow) -> rules.Cert:
    return rules.Cert(
        cert.id, cert.name, cert.kind, cert.type, cert.validity_months,
        cert.recertification_window_days, cert.policy_name, cert.policy_config,
    )  # fmt: skip


def rules_award(award: AwardRow) -> rules.Award:
    return rules.Award(award.cycle, award.awarded_at, award.expires_at)


def plain_token(seed: int, user_id: int) -> str:
    """A user's bench API token: derived from the seed, so every run of one seed agrees."""
    digest = hashlib.sha256(f"certgraph-bench:{seed}:{user_id}".encode()).digest()
    return "cg_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Sizes:
    learners: int
    managers: int
    courses: int
    certifications: int
    heavy_share: float = 0.01
    enrollments_per_learner: tuple[int, int] = (16, 24)
    heavy_enrollment_factor: int = 5
    progress_per_learner: tuple[int, int] = (80, 110)
    heavy_progress: int = 1000

    @classmethod
    def at(cls, scale: float) -> Sizes:
        if not 0 < scale <= 10:
            raise ValueError("scale must be in (0, 10]")
        learners = max(50, round(10_000 * scale))
        return cls(
            learners=learners,
            managers=max(2, learners // 25),
            courses=max(100, round(5_000 * scale)),
            certifications=max(20, round(500 * scale)),
        )


class Dataset:
    """Builds every row in memory, learner by learner, from one seeded random generator."""

    def __init__(self, scale: float, seed: int, now: datetime) -> None:
        self.scale = scale
        self.seed = seed
        self.now = now
        self.sizes = Sizes.at(scale)
        self.rng = random.Random(seed)
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLE_ORDER}
        self.next_id: dict[str, int] = {t: 1 for t in TABLE_ORDER}
        self.certs: list[CertRow] = []
        self.eligible: list[CertRow] = []
        self.cert_weights: list[float] = []
        self.learner_ids: list[int] = []
        self.heavy: set[int] = set()
        self.manager_of: dict[int, int] = {}
        self.enrollment_count: dict[int, int] = {}
        self.m1_pool: list[dict[str, int]] = []
        self.status_tally: dict[str, int] = {}
        self.deactivated: set[int] = set()
        self.ended: set[tuple[int, int]] = set()  # (learner, certification) of ended enrollments

    # -- helpers ---------------------------------------------------------------------------

    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def _between(self, start: datetime, end: datetime) -> datetime:
        return between(self.rng, start, end)

    def _weighted_sample(self, items: Sequence[Any], weights: Sequence[float], k: int) -> list[Any]:
        """k distinct items, each drawn in proportion to its weight (Efraimidis-Spirakis)."""
        rng = self.rng.random
        keyed = ((rng() ** (1.0 / w), i) for i, w in enumerate(weights))
        return [items[i] for _, i in heapq.nlargest(min(k, len(items)), keyed)]

    def _audit(
        self, at: datetime, actor_id: int | None, action: str, object_type: str, object_id: int,
        after: dict[str, Any],
    ) -> None:  # fmt: skip
        self.rows["audit_event"].append(
            (self._id("audit_event"), at, actor_id, action, object_type, str(object_id), None,
             after, None)
        )  # fmt: skip

    # -- the catalogue ---------------------------------------------------------------------

    def build_people(self) -> None:
        sizes, now = self.sizes, self.now
        start = now - timedelta(days=4 * 365)
        admin_id = self._id("user")
        self.rows["user"].append(
            (admin_id, "Bench Admin", "admin@bench.example", "ADMIN", None, start)
        )
        managers = []
        for n in range(sizes.managers):
            uid = self._id("user")
            managers.append(uid)
            self.rows["user"].append(
                (uid, f"Manager {n:05d}", f"manager{n:05d}@bench.example", "MANAGER", admin_id,
                 self._between(start, start + timedelta(days=60)))
            )  # fmt: skip
        for n in range(sizes.learners):
            uid = self._id("user")
            manager = managers[n % len(managers)]
            self.learner_ids.append(uid)
            self.manager_of[uid] = manager
            first = self.rng.choice(_WORDS)
            self.rows["user"].append(
                (uid, f"{first} Learner {n:05d}", f"learner{n:05d}@bench.example", "LEARNER",
                 manager, self._between(start, start + timedelta(days=180)))
            )  # fmt: skip
        heavy_count = max(1, round(sizes.learners * sizes.heavy_share))
        self.heavy = set(self.rng.sample(self.learner_ids, heavy_count))
        for uid, *_rest in self.rows["user"]:
            # a token without expiry, as `certgraph token` makes by default
            self.rows["api_token"].append(
                (self._id("api_token"), uid, hash_token(plain_token(self.seed, uid)), "bench",
                 start, None, None, now)
            )  # fmt: skip

    def build_catalogue(self) -> None:
        sizes, now, rng = self.sizes, self.now, self.rng
        course_ids: list[int] = []
        for n in range(sizes.courses):
            cid = self._id("course")
            course_ids.append(cid)
            published = self._between(now - timedelta(days=4 * 365), now - timedelta(days=400))
            name = f"{rng.choice(_WORDS)} {rng.choice(_TOPICS)} {n:05d}"
            self.rows["course"].append(
                (cid, name, f"About {name.lower()}.", rng.choice((15, 30, 45, 60, 90, 120, None)),
                 published, self._between(published, now))
            )  # fmt: skip
        # Popular courses appear in many certifications; the long tail in few or none.
        course_weights = [1.0 / (rank + 10) ** 0.7 for rank in range(len(course_ids))]
        organisation = ORGANISATION
        for n in range(sizes.certifications):
            cert_id = self._id("certification")
            kind = "INTERNAL" if rng.random() < 0.8 else "EXTERNAL"
            recurring = rng.random() < 0.4
            state = "PUBLISHED"
            roll = rng.random()
            if roll < 0.05:
                state = "DRAFT"
            elif roll < 0.10:
                state = "RETIRED"
            created = self._between(now - timedelta(days=3 * 365), now - timedelta(days=200))
            published = (
                None if state == "DRAFT" else self._between(created, now - timedelta(days=120))
            )
            policy = "mandatory-subset" if kind == "INTERNAL" else "external-evidence"
            name = f"{rng.choice(_WORDS)} {rng.choice(_TOPICS)} Certificate {n:04d}"
            cert = CertRow(
                id=cert_id,
                name=name,
                overview=f"Shows competence in {name.lower()}.",
                kind=kind,
                type="RECURRING" if recurring else "PERPETUAL",
                issuer=organisation if kind == "INTERNAL" else rng.choice(_ISSUERS),
                validity_months=rng.choice((12, 24, 36)) if recurring else None,
                recertification_window_days=rng.choice((30, 30, 60)),
                days_to_complete=rng.choice((None, None, 30, 60, 90, 180)),
                state=state,
                published_at=published,
                policy_name=policy,
                policy_config=dict(POLICY_CONFIG[policy]),
                badge_name=f"{name} badge" if rng.random() < 0.3 else None,
                created_at=created,
                updated_at=published or created,
            )
            if kind == "INTERNAL":
                picked = self._weighted_sample(course_ids, course_weights, rng.randint(6, 14))
                flags = [rng.random() < 0.7 for _ in picked]
            else:
                picked = self._weighted_sample(course_ids, course_weights, rng.randint(0, 3))
                flags = [False for _ in picked]
            for position, (course_id, mandatory) in enumerate(zip(picked, flags, strict=True)):
                link = LinkRow(
                    self._id("certification_course"), cert_id, course_id, mandatory, position,
                    CourseRef(course_id),
                )  # fmt: skip
                cert.links.append(link)
                self.rows["certification_course"].append(
                    (link.id, cert_id, course_id, mandatory, position)
                )
            self.certs.append(cert)
            self.rows["certification"].append(
                (cert.id, cert.name, cert.overview, cert.kind, cert.type, cert.issuer,
                 cert.validity_months, cert.recertification_window_days, cert.days_to_complete,
                 cert.state, cert.published_at, cert.policy_name, cert.policy_config,
                 cert.badge_name, None, None, cert.created_at, cert.updated_at)
            )  # fmt: skip
        self.eligible = [c for c in self.certs if c.state != "DRAFT"]
        self.cert_weights = [1.0 / (rank + 3) ** 0.6 for rank in range(len(self.eligible))]
        self.course_ids = course_ids

    # -- one learner's history -------------------------------------------------------------

    def build_learners(self) -> None:
        for learner_id in self.learner_ids:
            self._learner(learner_id)

    def _learner(self, learner_id: int) -> None:
        rng, now, sizes = self.rng, self.now, self.sizes
        heavy = learner_id in self.heavy
        low, high = sizes.enrollments_per_learner
        count = rng.randint(low, high)
        if heavy:
            count *= sizes.heavy_enrollment_factor
        certs = self._weighted_sample(self.eligible, self.cert_weights, count)
        certs.sort(key=lambda c: cast(datetime, c.published_at))
        progress: dict[int, ProgressRecord] = {}
        enrollments: list[tuple[EnrollmentRow, CertRow, str, int | None]] = []
        awards: dict[int, list[AwardRow]] = {}
        evidence: dict[int, list[EvidenceRow]] = {}
        for cert in certs:
            published = cast(datetime, cert.published_at)
            enrolled = self._between(published, now - timedelta(days=1))
            assigned = rng.random() < 0.5
            enrollment = EnrollmentRow(
                id=self._id("enrollment"),
                learner_id=learner_id,
                certification_id=cert.id,
                origin="ASSIGNED" if assigned else "SELF",
                assigned_by_id=1 if assigned else None,
                enrolled_at=enrolled,
                # Self-enrolment is Start: it sets startedAt at once.
                started_at=None if assigned else enrolled,
                due_at=(
                    enrolled + timedelta(days=cert.days_to_complete)
                    if cert.days_to_complete
                    else None
                ),
            )
            if assigned:
                self._audit(
                    enrolled, 1, "assignCertification", "Enrollment", enrollment.id,
                    {"learnerId": learner_id, "certificationId": cert.id,
                     "dueAt": _iso(enrollment.due_at)},
                )  # fmt: skip
            missing: int | None = None
            if cert.kind == "INTERNAL":
                state, missing = self._course_history(enrollment, cert, progress, awards)
            else:
                state = self._evidence_history(enrollment, cert, evidence)
            if assigned and state != "fresh":
                enrollment.started_at = self._between(enrolled, enrolled + timedelta(days=3))
            enrollments.append((enrollment, cert, state, missing))
        self._noise(learner_id, progress, heavy)
        for enrollment, cert, state, missing in enrollments:
            self._evaluate(enrollment, cert, progress, awards, evidence)
            if missing is not None and state == "one_short" and missing not in progress:
                self._m1_candidate(enrollment, cert, progress, awards, missing)
        self.enrollment_count[learner_id] = len(enrollments)
        self._emit_learner(learner_id, progress, enrollments, awards, evidence)

    def _complete(self, progress: dict[int, ProgressRecord], course_id: int, at: datetime) -> None:
        """What recording a completion at `at` leaves in the row (latest completion wins)."""
        started = at - timedelta(hours=self.rng.randint(1, 24 * 20))
        row = progress.get(course_id)
        if row is None:
            progress[course_id] = ProgressRecord(
                course_id, 100, "COMPLETED", started, at, started, at
            )
            return
        row.completed_at = max(row.completed_at, at) if row.completed_at else at
        if row.started_at is None or started < row.started_at:
            row.started_at = started
        row.attempt_started_at = row.attempt_started_at or row.started_at
        row.percent, row.status = 100, "COMPLETED"
        row.updated_at = max(row.updated_at, at)

    def _touch(self, progress: dict[int, ProgressRecord], course_id: int, at: datetime) -> None:
        """An unfinished attempt; a later, lower report on a finished course is ignored."""
        row = progress.get(course_id)
        percent = self.rng.randint(5, 95)
        if row is None:
            started = at - timedelta(hours=self.rng.randint(1, 24 * 10))
            progress[course_id] = ProgressRecord(
                course_id, percent, "IN_PROGRESS", started, None, started, at
            )
        elif row.status != "COMPLETED":
            row.percent = max(row.percent, percent)
            row.updated_at = max(row.updated_at, at)

    def _course_history(
        self,
        enrollment: EnrollmentRow,
        cert: CertRow,
        progress: dict[int, ProgressRecord],
        awards: dict[int, list[AwardRow]],
    ) -> tuple[str, int | None]:
        rng, now = self.rng, self.now
        mandatory = [link for link in cert.links if link.mandatory]
        required = mandatory or list(cert.links)
        optional = [link for link in cert.links if link not in required]
        roll = rng.random()
        enrolled = enrollment.enrolled_at
        if roll < 0.30:
            finished = self._between(enrolled, now)
            self._finish_all(required, optional, progress, finished)
            if cert.type == "RECURRING" and cert.validity_months:
                self._maybe_recertify(enrollment, cert, required, progress, awards, finished)
            return "done", None
        if roll < 0.62:
            order = list(required)
            rng.shuffle(order)
            one_short = rng.random() < 0.5 and len(order) > 1
            done_count = len(order) - 1 if one_short else rng.randint(0, len(order) - 1)
            for link in order[:done_count]:
                self._complete(progress, link.course_id, self._between(enrolled, now))
            rest = order[done_count:]
            if one_short:
                return "one_short", rest[0].course_id
            self._touch(progress, rest[0].course_id, self._between(enrolled, now))
            return "progress", None
        return "fresh", None

    def _finish_all(
        self,
        required: list[LinkRow],
        optional: list[LinkRow],
        progress: dict[int, ProgressRecord],
        finished: datetime,
    ) -> None:
        """Every required course completed, the last one exactly at `finished`."""
        for i, link in enumerate(required):
            at = (
                finished
                if i == len(required) - 1
                else finished - timedelta(seconds=self.rng.randint(3600, 60 * 86400))
            )
            self._complete(progress, link.course_id, at)
        for link in optional:
            if self.rng.random() < 0.5:
                self._complete(progress, link.course_id, finished - timedelta(days=1))

    def _maybe_recertify(
        self,
        enrollment: EnrollmentRow,
        cert: CertRow,
        required: list[LinkRow],
        progress: dict[int, ProgressRecord],
        awards: dict[int, list[AwardRow]],
        first_finish: datetime,
    ) -> None:
        """Half of those whose first award's window has opened earned it again in cycle 2."""
        first_expiry = rules.award_expiry(rules_cert(cert), first_finish, None)
        assert first_expiry is not None
        opens = first_expiry - timedelta(days=cert.recertification_window_days)
        if opens >= self.now or self.rng.random() < 0.5:
            return
        first = AwardRow(
            self._id("award"), enrollment.id, 1, first_finish, first_expiry,
            max(first_finish, enrollment.enrolled_at),
        )  # fmt: skip
        awards[enrollment.id] = [first]
        latest = min(self.now, first_expiry + timedelta(days=90))
        second_finish = self._between(opens, latest)
        for i, link in enumerate(required):
            at = second_finish if i == len(required) - 1 else self._between(opens, second_finish)
            self._complete(progress, link.course_id, at)

    def _evidence_history(
        self, enrollment: EnrollmentRow, cert: CertRow, evidence: dict[int, list[EvidenceRow]]
    ) -> str:
        rng, now = self.rng, self.now
        roll = rng.random()
        if roll < 0.35:
            return "fresh"
        reviewer = self.manager_of[enrollment.learner_id]
        submitted = self._between(enrollment.enrolled_at, now - timedelta(hours=1))
        items = evidence.setdefault(enrollment.id, [])

        def submit(at: datetime, status: str) -> EvidenceRow:
            reviewed = None
            if status != "PENDING":
                reviewed = min(now, at + timedelta(hours=rng.randint(1, 240)))
            item = EvidenceRow(
                id=self._id("evidence"),
                enrollment_id=enrollment.id,
                sha256=hashlib.sha256(
                    f"{self.seed}:evidence:{enrollment.id}:{at}".encode()
                ).hexdigest(),
                status=status,
                submitted_at=at,
                completed_on=(at - timedelta(days=rng.randint(0, 30))).date(),
                reviewed_by_id=reviewer if reviewed else None,
                reviewed_at=reviewed,
                review_comment="unreadable scan" if status == "REJECTED" else None,
            )
            items.append(item)
            return item

        if roll < 0.50:
            submit(submitted, "PENDING")
            return "pending"
        if roll < 0.85:
            submit(submitted, "APPROVED")
            return "approved"
        rejected = submit(submitted, "REJECTED")
        if roll < 0.95:
            return "rejected"
        again = self._between(cast(datetime, rejected.reviewed_at), now)
        if again > cast(datetime, rejected.reviewed_at):
            submit(again, "PENDING")
        return "resubmitted"

    def _noise(self, learner_id: int, progress: dict[int, ProgressRecord], heavy: bool) -> None:
        """Activity on courses outside the learner's certifications, up to the row target."""
        rng, now = self.rng, self.now
        low, high = self.sizes.progress_per_learner
        target = self.sizes.heavy_progress if heavy else rng.randint(low, high)
        target = min(target, int(len(self.course_ids) * 0.9))
        attempts = 0
        while len(progress) < target and attempts < target * 4:
            attempts += 1
            course_id = rng.choice(self.course_ids)
            if course_id in progress:
                continue
            at = self._between(now - timedelta(days=3 * 365), now - timedelta(hours=1))
            if rng.random() < 0.6:
                self._complete(progress, course_id, at)
            else:
                self._touch(progress, course_id, at)

    # -- evaluation, exactly as evaluate_enrollments stores it ----------------------------

    def _view(
        self,
        enrollment: EnrollmentRow,
        cert: CertRow,
        progress: dict[int, ProgressRecord],
        awards: list[AwardRow],
        evidence: list[EvidenceRow],
        at: datetime,
    ) -> rules.View:
        mine = {
            link.course_id: rules.Progress(
                0, row.percent, row.status, row.started_at, row.completed_at,
                row.attempt_started_at, row.updated_at,
            )
            for link in cert.links
            if (row := progress.get(link.course_id)) is not None
        }  # fmt: skip
        ordered = sorted(evidence, key=lambda item: (item.submitted_at, item.id))
        subject = rules.Enrollment(
            enrollment.id, enrollment.learner_id, rules_cert(cert), enrollment.started_at,
            enrollment.due_at, enrollment.verdict_status, enrollment.verdict_progress,
            enrollment.verdict_explanation,
            [rules_award(a) for a in sorted(awards, key=lambda a: a.cycle)],
            [rules.Evidence(e.status, e.submitted_at, e.reviewed_at, e.completed_on)
             for e in ordered],
        )  # fmt: skip
        links = [
            rules.Link(link.course_id, "", link.mandatory, link.position)
            for link in sorted(cert.links, key=lambda link: (link.position, link.id))
        ]
        return rules.view_of(subject, links, mine, at)

    def _evaluate(
        self,
        enrollment: EnrollmentRow,
        cert: CertRow,
        progress: dict[int, ProgressRecord],
        awards_by: dict[int, list[AwardRow]],
        evidence_by: dict[int, list[EvidenceRow]],
    ) -> None:
        """The state the last write about this enrollment left behind.

        Every write on one of the certification's courses (and every submission or review)
        re-evaluates the enrollment, so its stored columns are those of an evaluation at its
        latest activity; an award is written by the first evaluation whose verdict completes.
        """
        awards = awards_by.setdefault(enrollment.id, [])
        evidence = evidence_by.get(enrollment.id, [])
        activity = [enrollment.enrolled_at]
        if enrollment.started_at:
            activity.append(enrollment.started_at)
        for link in cert.links:
            row = progress.get(link.course_id)
            if row is not None and row.updated_at > enrollment.enrolled_at:
                activity.append(row.updated_at)
        for item in evidence:
            activity.append(item.reviewed_at or item.submitted_at)
        last_write = max(activity)
        for _ in range(4):
            view = self._view(enrollment, cert, progress, awards, evidence, last_write)
            verdict = view.verdict
            if verdict.status == "COMPLETE" and not any(a.cycle == view.cycle for a in awards):
                completed_at = cast(datetime, verdict.completed_at)
                previous = awards[-1] if awards else None
                award = AwardRow(
                    self._id("award"), enrollment.id, view.cycle, completed_at,
                    rules.award_expiry(
                        rules_cert(cert), completed_at, rules_award(previous) if previous else None
                    ),
                    max(completed_at, enrollment.enrolled_at),
                )  # fmt: skip
                awards.append(award)
                view = self._view(enrollment, cert, progress, awards, evidence, last_write)
                if award.created_at < last_write:
                    continue  # a later write re-evaluated it with the award in place
            enrollment.verdict_status = rules.stored_status(
                verdict, cast(Any, enrollment), view.courses
            )
            enrollment.verdict_progress = verdict.progress
            enrollment.verdict_explanation = verdict.explanation
            enrollment.evaluated_cycle = view.cycle
            break
        enrollment.updated_at = last_write
        if awards:
            latest = awards[-1]
            enrollment.last_awarded_at = latest.awarded_at
            enrollment.last_expires_at = latest.expires_at
            enrollment.last_award_cycle = latest.cycle
            enrollment.window_opens_at = rules.window_opens(rules_cert(cert), rules_award(latest))
        final = self._view(enrollment, cert, progress, awards, evidence, self.now)
        self.status_tally[final.status] = self.status_tally.get(final.status, 0) + 1

    def _m1_candidate(
        self,
        enrollment: EnrollmentRow,
        cert: CertRow,
        progress: dict[int, ProgressRecord],
        awards: dict[int, list[AwardRow]],
        course_id: int,
    ) -> None:
        """Keep (learner, course) when recording that course now completes the certification."""
        trial = dict(progress)
        trial[course_id] = ProgressRecord(
            course_id, 100, "COMPLETED", self.now, self.now, self.now, self.now
        )
        view = self._view(enrollment, cert, trial, awards.get(enrollment.id, []), [], self.now)
        if view.verdict.status == "COMPLETE":
            self.m1_pool.append(
                {"learner_id": enrollment.learner_id, "course_id": course_id,
                 "certification_id": cert.id}
            )  # fmt: skip

    def _emit_learner(
        self,
        learner_id: int,
        progress: dict[int, ProgressRecord],
        enrollments: list[tuple[EnrollmentRow, CertRow, str, int | None]],
        awards: dict[int, list[AwardRow]],
        evidence: dict[int, list[EvidenceRow]],
    ) -> None:
        for course_id in sorted(progress):
            row = progress[course_id]
            self.rows["course_progress"].append(
                (self._id("course_progress"), learner_id, course_id, row.percent, row.status,
                 row.started_at, row.completed_at, row.attempt_started_at, row.updated_at)
            )  # fmt: skip
        for enrollment, cert, _state, _missing in enrollments:
            e = enrollment
            self.rows["enrollment"].append(
                (e.id, e.learner_id, e.certification_id, e.origin, e.assigned_by_id,
                 e.enrolled_at, e.started_at, e.due_at, e.verdict_status, e.verdict_progress,
                 e.verdict_explanation, e.evaluated_cycle, e.last_awarded_at, e.last_expires_at,
                 e.last_award_cycle, e.window_opens_at, e.updated_at)
            )  # fmt: skip
            for item in evidence.get(e.id, []):
                self.rows["evidence"].append(
                    (item.id, e.id, item.sha256, "certificate.pdf", "application/pdf",
                     40_000 + item.id % 900_000, item.status, item.submitted_at,
                     item.completed_on, None, item.reviewed_by_id, item.reviewed_at,
                     item.review_comment)
                )  # fmt: skip
            cert_awards = awards.get(e.id, [])
            for i, award in enumerate(cert_awards):
                newer = cert_awards[i + 1] if i + 1 < len(cert_awards) else None
                # The newest award, once expired, was noted by a sweep; an older one only when
                # it expired before the next award replaced it.
                seen_expired = award.expires_at is not None and (
                    award.expires_at <= self.now
                    if newer is None
                    else award.expires_at < newer.created_at
                )
                noted = (
                    min(self.now, cast(datetime, award.expires_at) + timedelta(minutes=10))
                    if seen_expired
                    else None
                )
                self.rows["award"].append(
                    (award.id, e.id, award.cycle, award.awarded_at, award.expires_at,
                     award.created_at, noted)
                )  # fmt: skip
                actor = learner_id
                approvals = [x for x in evidence.get(e.id, []) if x.status == "APPROVED"]
                if approvals:
                    actor = cast(int, approvals[0].reviewed_by_id)
                self._audit(
                    award.created_at, actor, "award", "Enrollment", e.id,
                    {"cycle": award.cycle, "awardedAt": _iso(award.awarded_at),
                     "expiresAt": _iso(award.expires_at)},
                )  # fmt: skip
            del cert

    # -- the lifecycle: deactivated learners, ended enrollments -------------------------------

    def build_lifecycle(self) -> None:
        """Deactivate some learners (deactivateUser) and end some enrollments
        (unassignCertification), each after its last activity, with the audit rows those
        mutations write (actor: the admin). Drawn from a generator of its own, after the
        history: every other row is as it would be without them. Heavy learners stay active.

        An ended enrollment keeps its columns, awards and evidence (only `ended_at` and
        `updated_at` change, as unassigning does); a deactivated learner keeps every row and
        token (certgraph refuses the token, not the row)."""
        rng, now = random.Random(self.seed + 3), self.now
        candidates = [uid for uid in self.learner_ids if uid not in self.heavy]
        self.deactivated = set(rng.sample(candidates, round(len(candidates) * DEACTIVATED_SHARE)))
        last: dict[int, datetime] = {}
        for table, learner_at, updated_at in (("enrollment", 1, 16), ("course_progress", 1, 8)):
            for row in self.rows[table]:
                if row[learner_at] in self.deactivated:
                    last[row[learner_at]] = max(last.get(row[learner_at], row[updated_at]),
                                                row[updated_at])  # fmt: skip
        users = []
        for row in self.rows["user"]:
            at = None
            if row[0] in self.deactivated:
                at = between(rng, max(row[5], last.get(row[0], row[5])), now)
                self.rows["audit_event"].append(
                    (self._id("audit_event"), at, 1, "deactivateUser", "User", str(row[0]),
                     {"deactivatedAt": None}, {"deactivatedAt": _iso(at)}, None)
                )  # fmt: skip
            users.append((*row, at))
        self.rows["user"] = users
        enrollments = []
        for row in self.rows["enrollment"]:
            if rng.random() >= ENDED_SHARE:
                enrollments.append((*row, None))
                continue
            ended = between(rng, row[16], now)
            self.ended.add((row[1], row[2]))
            self.rows["audit_event"].append(
                (self._id("audit_event"), ended, 1, "unassignCertification", "Enrollment",
                 str(row[0]), {"endedAt": None, "origin": row[3], "dueAt": _iso(row[7])},
                 {"endedAt": _iso(ended)}, None)
            )  # fmt: skip
            enrollments.append((*row[:16], ended, ended))
        self.rows["enrollment"] = enrollments

    # -- what bench.run needs ----------------------------------------------------------------

    def workload(self) -> dict[str, Any]:
        rng = random.Random(self.seed + 1)
        typical = [
            uid
            for uid in self.learner_ids
            if uid not in self.heavy
            and uid not in self.deactivated
            and self.enrollment_count[uid] >= 20
        ]
        learners = sorted(rng.sample(typical, min(SAMPLE_LEARNERS, len(typical))))
        heavy = sorted(self.heavy)
        by_cert: dict[int, int] = {}
        for row in self.rows["enrollment"]:
            by_cert[row[2]] = by_cert.get(row[2], 0) + 1
        popular = sorted(by_cert, key=lambda c: (-by_cert[c], c))[:REPORT_CERTIFICATIONS]
        seen: set[tuple[int, int]] = set()
        pool = []
        for item in self.m1_pool:
            key = (item["learner_id"], item["course_id"])
            if (
                item["learner_id"] in self.deactivated
                or (item["learner_id"], item["certification_id"]) in self.ended
            ):
                continue  # a refused token; an enrollment no write evaluates
            if key not in seen:
                seen.add(key)
                pool.append(item)
        rng.shuffle(pool)
        manager = self.manager_of[learners[0]] if learners else None

        def person(uid: int) -> dict[str, Any]:
            return {"id": uid, "token": plain_token(self.seed, uid)}

        return {
            "admin": person(1),
            "manager": person(manager) if manager else None,
            "learners": [person(uid) for uid in learners],
            "heavy_learners": [person(uid) for uid in heavy],
            "report_certifications": popular,
            "m1_pool": [
                {**item, "token": plain_token(self.seed, item["learner_id"])} for item in pool
            ],
        }

    def lifecycle(self) -> dict[str, int]:
        return {"deactivated_learners": len(self.deactivated), "ended_enrollments": len(self.ended)}

    def build(self) -> None:
        self.build_people()
        self.build_catalogue()
        self.build_learners()
        self.build_lifecycle()


# --- writing ---------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    """Tortoise's SQLite form: datetimes as str(datetime) text, JSON as compact text."""
    if isinstance(value, datetime):
        return str(value.astimezone(UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_rows(table: str, rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
    json_at = [i for i, c in enumerate(COLUMNS[table]) if (table, c) in JSON_COLUMNS]
    for row in rows:
        values = [_sqlite_value(v) for v in row]
        for i in json_at:
            if values[i] is not None:
                values[i] = _json(values[i])
        yield tuple(values)


def sqlite_path(url: str) -> Path:
    path = url[len("sqlite://") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise SystemExit(
            "--db: the SQLite benchmark needs a file, e.g. sqlite://./var/bench.sqlite3"
        )
    return Path(path)


class RefusedDatabase(SystemExit):
    pass


def _prepare_sqlite(url: str) -> None:
    path = sqlite_path(url)
    if path.exists():
        with sqlite3.connect(path) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        conn.close()
        if tables and "bench_meta" not in tables:
            raise RefusedDatabase(
                f"{path} holds tables but no bench_meta: not a benchmark database, left untouched"
            )
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def _write_sqlite(url: str, data: Dataset, meta: dict[str, Any]) -> None:
    path = sqlite_path(url)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-200000")
        conn.execute("BEGIN")
        for table in TABLE_ORDER:
            columns = COLUMNS[table]
            sql = (
                f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)})'
                f" VALUES ({', '.join('?' * len(columns))})"
            )
            conn.executemany(sql, _sqlite_rows(table, data.rows[table]))
        _write_meta_sqlite(conn, meta)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


_BASELINE_COLUMNS = (
    "verdict_status", "verdict_progress", "verdict_explanation", "evaluated_cycle",
    "last_awarded_at", "last_expires_at", "last_award_cycle", "window_opens_at", "updated_at",
)  # fmt: skip
BASELINE_TABLE = "bench_enrollment_baseline"


def baseline_sql() -> str:
    """A copy of the columns a progress write changes, so bench.run can undo M1's writes."""
    cols = ", ".join(_BASELINE_COLUMNS)
    return f"CREATE TABLE {BASELINE_TABLE} AS SELECT id, {cols} FROM enrollment"


# Tables the generator leaves empty and runs fill: emptied by restore_sql (children first).
RUN_ONLY_TABLES = ("event_delivery", "outbox_event", "webhook", "enrollment_notice")


def restore_sql(max_ids: dict[str, int]) -> list[str]:
    """Statements that put the database back to the generated state after write runs.

    Rows added after generation have ids above the recorded maxima; enrollments a write
    re-evaluated get their generated columns back. The tables the generator leaves empty
    are emptied: the writes' events (outbox_event), their deliveries (event_delivery), the
    webhook endpoints bench.run configures (webhook) and reminders a sweep noted
    (enrollment_notice); children first, as SQLite runs these without foreign keys. Valid on
    SQLite (3.33+) and PostgreSQL.
    """
    sets = ", ".join(f"{c} = b.{c}" for c in _BASELINE_COLUMNS)
    statements = [f'DELETE FROM "{table}"' for table in RUN_ONLY_TABLES]
    statements += [
        f'DELETE FROM "{table}" WHERE id > {int(max_ids[table])}'
        for table in ("award", "audit_event", "course_progress", "evidence", "enrollment")
    ]
    statements.append(
        f"UPDATE enrollment AS e SET {sets} FROM {BASELINE_TABLE} AS b"
        " WHERE b.id = e.id AND e.updated_at <> b.updated_at"
    )
    return statements


def _write_meta_sqlite(conn: sqlite3.Connection, meta: dict[str, Any]) -> None:
    conn.execute("CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany(
        "INSERT INTO bench_meta (key, value) VALUES (?, ?)",
        [(key, _json(value)) for key, value in meta.items()],
    )
    conn.execute(baseline_sql())


def _pg_value(table: str, column: str, value: Any) -> Any:
    if value is not None and (table, column) in JSON_COLUMNS:
        return _json(value)
    return value


async def _prepare_postgres(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"--db: give a plain PostgreSQL database name, not {name!r}")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            conn = await asyncpg.connect(url)
            try:
                tables = {
                    r["tablename"]
                    for r in await conn.fetch(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                }
            finally:
                await conn.close()
            if tables and "bench_meta" not in tables:
                raise RefusedDatabase(
                    f"database {name} holds tables but no bench_meta: not a benchmark database,"
                    " left untouched"
                )
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _write_postgres(url: str, data: Dataset, meta: dict[str, Any]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for table in TABLE_ORDER:
                columns = COLUMNS[table]
                json_at = [i for i, c in enumerate(columns) if (table, c) in JSON_COLUMNS]
                records = data.rows[table]
                if json_at:
                    records = [
                        tuple(_pg_value(table, columns[i], v) for i, v in enumerate(row))
                        for row in records
                    ]
                await conn.copy_records_to_table(table, records=records, columns=list(columns))
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                    f' (SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"), false)'
                )
            await conn.execute(
                "CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            await conn.executemany(
                "INSERT INTO bench_meta (key, value) VALUES ($1, $2)",
                [(key, _json(value)) for key, value in meta.items()],
            )
            await conn.execute(baseline_sql())
            await conn.execute(f"ALTER TABLE {BASELINE_TABLE} ADD PRIMARY KEY (id)")
        # The planner needs statistics after a bulk load; autovacuum would gather them later.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def dialect_of(url: str) -> str:
    if url.startswith("sqlite://"):
        return "sqlite"
    if url.startswith(("postgres://", "postgresql://")):
        return "postgres"
    raise SystemExit("--db must be sqlite://PATH or postgres://USER@HOST:PORT/NAME")


def write_tokens(path: Path, url: str, workload: dict[str, Any]) -> None:
    """A few plain tokens for trying the API by hand (the file is git-ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "db": url,
        "admin": workload["admin"],
        "manager": workload["manager"],
        "learners": workload["learners"][:5],
        "heavy_learners": workload["heavy_learners"][:3],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


async def generate(
    url: str, scale: float, seed: int, now: datetime, tokens_path: Path
) -> dict[str, Any]:
    dialect = dialect_of(url)
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://") :]
    started = time.perf_counter()
    data = Dataset(scale, seed, now)
    data.build()
    built = time.perf_counter()
    if dialect == "sqlite":
        _prepare_sqlite(url)
    else:
        await _prepare_postgres(url)
    migrate(url)
    workload = data.workload()
    counts = {table: len(rows) for table, rows in data.rows.items()}
    meta = {
        "scale": scale,
        "seed": seed,
        "now": now.isoformat(),
        "counts": counts,
        # rows with larger ids were written by benchmark runs (see restore_sql)
        "max_ids": {table: data.next_id[table] - 1 for table in TABLE_ORDER},
        "status_tally": data.status_tally,
        "lifecycle": data.lifecycle(),
        "workload": workload,
    }
    if dialect == "sqlite":
        _write_sqlite(url, data, meta)
    else:
        await _write_postgres(url, data, meta)
    written = time.perf_counter()
    write_tokens(tokens_path, url, workload)
    summary = {
        "db": dialect,
        "scale": scale,
        "seed": seed,
        "counts": counts,
        "m1_pool": len(workload["m1_pool"]),
        "status_tally": data.status_tally,
        "lifecycle": data.lifecycle(),
        "build_seconds": round(built - started, 1),
        "write_seconds": round(written - built, 1),
    }
    return summary


def migrate(url: str) -> None:
    """The project's migrations, through its CLI."""
    certgraph = Path(sys.executable).parent / "certgraph"
    env = dict(os.environ, CERTGRAPH_DATABASE_URL=url)
    subprocess.run([str(certgraph), "migrate"], env=env, check=True, capture_output=True)


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise SystemExit("--now needs a UTC offset, e.g. 2026-11-01T12:00:00+00:00")
    return parsed.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 10k learners (default)")
    parser.add_argument("--db", required=True, help="sqlite://PATH or postgres://USER@HOST/NAME")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--now", help="the moment the history ends (ISO 8601 with offset); default: this minute"
    )
    parser.add_argument("--tokens", type=Path, default=TOKENS_PATH, help="where plain tokens go")
    args = parser.parse_args(argv)
    try:
        Sizes.at(args.scale)
    except ValueError as exc:
        parser.error(str(exc))
    summary = asyncio.run(
        generate(args.db, args.scale, args.seed, parse_now(args.now), args.tokens)
    )
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
