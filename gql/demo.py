"""Demo data for a first look, made through the domain's use cases as an admin and learners
would make it (so it obeys every rule); loading is idempotent, and the demo people's tokens
are kept in `<data dir>/demo-tokens.json` (0600) and shown again instead of piling up."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from gql import clock
from gql.domain import certifications, courses, enrollments, evidence, users
from gql.domain.access import Actor, authenticate
from gql.domain.calendar import add_months
from gql.domain.certifications import CertificationData, CourseLink
from gql.domain.errors import Unauthenticated
from gql.domain.pages import PageRequest
from gql.domain.records import UserRecord
from gql.files import BlobStore
from gql.vocabulary import CertificationKind, CertificationType, Role

SYSTEM = Actor.system()

ADMIN_EMAIL = "admin@demo.certgraph.test"
MANAGER_EMAIL = "maya.manager@demo.certgraph.test"
LEARNER_EMAILS = ("leo.learner@demo.certgraph.test", "lena.learner@demo.certgraph.test")


@dataclass(frozen=True, slots=True)
class DemoPerson:
    name: str
    email: str
    role: Role


PEOPLE = (
    DemoPerson("Ada Admin", ADMIN_EMAIL, Role.ADMIN),
    DemoPerson("Maya Manager", MANAGER_EMAIL, Role.MANAGER),
    DemoPerson("Leo Learner", LEARNER_EMAILS[0], Role.LEARNER),
    DemoPerson("Lena Learner", LEARNER_EMAILS[1], Role.LEARNER),
)

# (name, description, minutes)
COURSES = (
    ("Secure Coding Basics", "Input validation, output encoding, secrets handling.", 90),
    ("Threat Modelling", "STRIDE on a real service, from data-flow diagram to mitigations.", 120),
    ("Incident Response", "Detect, contain, recover, and write the post-mortem.", 60),
    ("Privacy by Design", "Data minimisation and retention in everyday features.", 45),
    ("Cloud Fundamentals", "Regions, identity, networking and cost basics.", 80),
    ("Infrastructure as Code", "Reviewable, repeatable environments.", 100),
    ("Observability", "Logs, metrics and traces that answer questions.", 70),
)


# A one-page PDF: the certificate Maya uploads as proof.
CERTIFICATE_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


# The proofs' file names: the tour finds Leo's in Maya's review queue by its name.
LEO_CERTIFICATE = "cca-certificate-leo.pdf"
LENA_UPLOAD = "cca-exam-booking-lena.pdf"
MAYA_CERTIFICATE = "cca-certificate-maya.pdf"
CERTIFIED = "Certificate from the Example Certification Board."
REJECTION_COMMENT = "This is the exam booking, not the certificate: please upload the certificate."


class _InMemoryUpload:
    """The demo's proof file, read the way an upload is read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    async def read(self, size: int, /) -> bytes:
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk


@dataclass(frozen=True, slots=True)
class DemoToken:
    name: str
    email: str
    role: Role
    token: str

    @property
    def label(self) -> str:
        return f"{self.role.value:<7} {self.name} <{self.email}>"


@dataclass(slots=True)
class DemoResult:
    created: bool  # False when the demo was already there (or the database was not empty)
    summary: str
    tokens: list[DemoToken] = field(default_factory=list)


async def _user_by_email(email: str) -> UserRecord | None:
    page = await users.list_users(SYSTEM, search=email, paging=PageRequest(first=10))
    return next((user for user in page.items if user.email == email), None)


async def _has_users() -> bool:
    page = await users.list_users(SYSTEM, paging=PageRequest(first=1))
    return bool(page.items)


TOKENS_FILE = "demo-tokens.json"


def _read_kept_tokens(path: Path) -> list[DemoToken]:
    """The kept tokens; none when the file is missing, malformed or readable by others."""
    try:
        if path.stat().st_mode & 0o077:
            return []
        records = json.loads(path.read_text(encoding="utf-8"))
        return [DemoToken(r["name"], r["email"], Role(r["role"]), r["token"]) for r in records]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _write_kept_tokens(path: Path, tokens: list[DemoToken]) -> None:
    """Replace the file atomically; created 0600 (tokens are credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    records = [
        {"name": t.name, "email": t.email, "role": t.role.value, "token": t.token} for t in tokens
    ]
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(records, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


async def _still_valid(tokens: list[DemoToken]) -> bool:
    """Whether there is one token per demo person and each still authenticates as them."""
    if sorted(t.email for t in tokens) != sorted(p.email for p in PEOPLE):
        return False
    for token in tokens:
        try:
            actor = await authenticate(token.token)
        except Unauthenticated:
            return False
        if actor.email != token.email:
            return False
    return True


async def _reissued_tokens() -> list[DemoToken]:
    """One new token per demo person, every older one revoked."""
    tokens = []
    for person in PEOPLE:
        await users.revoke_tokens_for_email(SYSTEM, person.email)
        user, token = await users.create_token_for_email(SYSTEM, person.email)
        tokens.append(DemoToken(user.name, user.email, Role(user.role), token))
    return tokens


async def demo_tokens(data_dir: Path | None) -> list[DemoToken]:
    """The kept tokens if they still work, else re-issued ones (kept for next time)."""
    if data_dir is None:
        return await _reissued_tokens()
    path = data_dir / TOKENS_FILE
    kept = _read_kept_tokens(path)
    if kept and await _still_valid(kept):
        return kept
    tokens = await _reissued_tokens()
    _write_kept_tokens(path, tokens)
    return tokens


async def load_demo(
    blobs: BlobStore, *, only_if_empty: bool = False, data_dir: Path | None = None
) -> DemoResult:
    """Load the demo once; later calls create nothing and show the demo tokens again.

    With `only_if_empty`, a database holding users but not the demo is left alone (no data,
    no tokens): `make run` uses this so it never adds demo people to real data. The tokens
    are kept in `data_dir` (see `demo_tokens`); without one, each call re-issues them.
    """
    if await _user_by_email(ADMIN_EMAIL) is not None:
        return DemoResult(
            created=False,
            summary="The demo data is already loaded; nothing was created.",
            tokens=await demo_tokens(data_dir),
        )
    if only_if_empty and await _has_users():
        return DemoResult(
            created=False,
            summary="The database already has users (not the demo's); demo data not loaded.",
        )
    certification_count, enrollment_count = await _create_demo(blobs)
    return DemoResult(
        created=True,
        summary=(
            f"Demo data loaded: {len(PEOPLE)} people, {len(COURSES)} courses, "
            f"{certification_count} certifications, {enrollment_count} enrollments."
        ),
        tokens=await demo_tokens(data_dir),
    )


async def _create_demo(blobs: BlobStore) -> tuple[int, int]:
    """Create the demo, with every state README's tour shows (tests/test_tour.py runs it);
    return how many certifications and enrollments it made."""
    # The admin first: its email is the marker that the demo is loaded.
    people: dict[str, UserRecord] = {}
    for person in PEOPLE:
        manager = people.get(MANAGER_EMAIL) if person.role == Role.LEARNER else None
        people[person.email] = await users.create_user(
            SYSTEM,
            name=person.name,
            email=person.email,
            role=person.role,
            manager_id=None if manager is None else manager.id,
        )
    admin = Actor.of(people[ADMIN_EMAIL])
    leo = Actor.of(people[LEARNER_EMAILS[0]])
    lena = Actor.of(people[LEARNER_EMAILS[1]])
    assert leo.user_id is not None and lena.user_id is not None

    course_ids = []
    for name, description, minutes in COURSES:
        course = await courses.create_course(
            admin, name=name, description=description, duration_minutes=minutes
        )
        course_ids.append(course.id)
    secure, threat, incident, privacy, cloud, iac, observability = course_ids

    async def certification(data: CertificationData, links: list[CourseLink]) -> int:
        cert = await certifications.create_certification(admin, data)
        if links:
            await certifications.set_certification_courses(admin, cert.id, links)
        await certifications.publish_certification(admin, cert.id)
        return cert.id

    # INTERNAL, mandatory-subset: 4 courses, 2 of them mandatory; renewed every year.
    champion = await certification(
        CertificationData(
            name="Security Champion",
            kind=CertificationKind.INTERNAL,
            type=CertificationType.RECURRING,
            overview="The security basics every engineer on a product team is expected to know.",
            validity_months=12,
            recertification_window_days=30,
            days_to_complete=60,
            badge_name="Security Champion",
        ),
        [
            CourseLink(secure, mandatory=True),
            CourseLink(threat, mandatory=True),
            CourseLink(incident, mandatory=False),
            CourseLink(privacy, mandatory=False),
        ],
    )
    # INTERNAL, all-required: every course counts, flags ignored; never expires.
    cloud_practitioner = await certification(
        CertificationData(
            name="Cloud Practitioner",
            kind=CertificationKind.INTERNAL,
            type=CertificationType.PERPETUAL,
            overview="Run a service in the cloud from first deploy to first alert.",
            days_to_complete=90,
            policy="all-required",
        ),
        [
            CourseLink(cloud, mandatory=True),
            CourseLink(iac, mandatory=False),
            CourseLink(observability, mandatory=False),
        ],
    )
    # EXTERNAL: proof uploaded by the learner, approved by their manager or an admin.
    architect = await certification(
        CertificationData(
            name="Certified Cloud Architect",
            kind=CertificationKind.EXTERNAL,
            type=CertificationType.RECURRING,
            overview="An industry certification earned outside; upload the certificate as proof.",
            issuer="Example Certification Board",
            validity_months=24,
            policy="external-evidence",
            policy_config={"requiresApproval": True, "completionDate": "learner"},
        ),
        [CourseLink(cloud, mandatory=True)],
    )

    now = clock.now()
    enrolled: set[int] = set()

    async def assign(learner: Actor, certification_id: int, due_in_days: int) -> None:
        assert learner.user_id is not None
        rows = await enrollments.assign_certification(
            admin, certification_id, [learner.user_id], now + timedelta(days=due_in_days)
        )
        enrolled.update(row.id for row in rows)

    async def start(learner: Actor, certification_id: int) -> None:
        enrolled.add((await enrollments.start_certification(learner, certification_id)).id)

    async def progress(learner: Actor, course_id: int, percent: int | None = None) -> None:
        """Record `percent`, or a completion now when no percent is given."""
        await enrollments.record_course_progress(
            learner,
            course_id=course_id,
            percent=percent,
            completed=True if percent is None else None,
        )

    async def completed_back_then(learner: Actor, course_id: int, at: datetime) -> None:
        """An admin records a completion from the past (history, e.g. from a former system)."""
        await enrollments.record_course_progress(
            admin, course_id=course_id, learner_id=learner.user_id, completed=True, completed_at=at
        )

    async def proof(
        learner: Actor, certification_id: int, earned_on: date, name: str, note: str
    ) -> int:
        """The learner uploads proof (enrolled if need be); returns the evidence's id."""
        submitted = await evidence.submit_evidence(
            learner,
            certification_id,
            _InMemoryUpload(CERTIFICATE_PDF),
            blobs=blobs,
            filename=name,
            completed_on=earned_on,
            note=note,
            declared_type="application/pdf",
        )
        enrolled.add(submitted.enrollment_id)
        return submitted.id

    async def review(reviewer: Actor, evidence_id: int, approve: bool, comment: str) -> None:
        decision = evidence.ReviewDecision.APPROVE if approve else evidence.ReviewDecision.REJECT
        await evidence.review_evidence(reviewer, evidence_id, decision, comment)

    # Leo: assigned with a due date, some progress on a mandatory course.
    await assign(leo, champion, due_in_days=21)
    await progress(leo, secure, percent=40)
    # Leo: assigned the external one; he uploaded his certificate, earned two weeks ago: it
    # waits in Maya's evidenceReviewQueue (PENDING_APPROVAL).
    await assign(leo, architect, due_in_days=120)
    await proof(leo, architect, (now - timedelta(days=14)).date(), LEO_CERTIFICATE, CERTIFIED)
    # Lena: self-started, one course done and one half-way.
    await start(lena, cloud_practitioner)
    await progress(lena, cloud)
    await progress(lena, iac, percent=50)
    # Lena: earned Security Champion last year (an admin recorded her completions of both
    # mandatory courses as history). It expires in ten days, so its recertification window
    # is open: still COMPLETED, yet pending again, in cycle 2 with both courses to redo.
    await start(lena, champion)
    earned_last_year = add_months(now + timedelta(days=10), -12)
    await completed_back_then(lena, secure, earned_last_year)
    await completed_back_then(lena, threat, earned_last_year)
    maya = Actor.of(people[MANAGER_EMAIL])
    # Lena: uploaded the wrong file for Cloud Architect; Maya rejected it (REJECTED: Lena may
    # upload again).
    rejected = await proof(
        lena, architect, (now - timedelta(days=30)).date(), LENA_UPLOAD, "My exam."
    )
    await review(maya, rejected, approve=False, comment=REJECTION_COMMENT)
    # Maya, the manager, learns too: she uploaded her Cloud Architect certificate, earned a
    # little over two years ago; Ada approved it, and as it is valid for 24 months it has
    # already EXPIRED: she needs to upload proof of a renewal.
    await start(maya, architect)
    earned_on = add_months(now - timedelta(days=45), -24).date()
    approved = await proof(maya, architect, earned_on, MAYA_CERTIFICATE, CERTIFIED)
    await review(admin, approved, approve=True, comment="Certificate checked.")
    return len((champion, cloud_practitioner, architect)), len(enrolled)
