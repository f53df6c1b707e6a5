"""Who may see and do what: every role and visibility rule of domain.md lives here.

Use cases call these; resolvers never decide access themselves. An object the viewer may not
see reads exactly like one that does not exist (its denied read is audited in the request's
batch, gql.domain.unit). The `viewerCan` flags (docs/api.md, "Capabilities") call the same
predicates the use cases refuse with, so a flag and a refusal cannot disagree.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tortoise.expressions import Q, Subquery

from gql import clock
from gql.domain.errors import Forbidden, NotAllowed, Unauthenticated, t
from gql.domain.status import EnrollmentStatus, EnrollmentView
from gql.domain.unit import audit_refusal, note_denied_read
from gql.plugins import PluginHost, PolicyUnavailable
from gql.policy import VerdictStatus
from gql.store import reads
from gql.store.models import User
from gql.store.records import CertificationRecord, UserRecord
from gql.store.search import PersonScope
from gql.store.tokens import DeactivatedAccount, ExpiredToken, token_by_hash, touch_token
from gql.vocabulary import CertificationKind, CertificationState, EvidenceStatus, Role

TOKEN_PREFIX = "cg_"
# last_used_at is bookkeeping, not an audit trail: refreshing it at most once a minute keeps
# reads from turning into writes.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# The refusal of a deactivated person's API token or provider token (docs/auth.md).
DEACTIVATED_ACCOUNT = t("this account is deactivated; an admin can reactivate it")


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated viewer. `user_id` None is the operator at the command line."""

    user_id: int | None
    role: Role
    name: str = ""
    email: str = ""
    manager_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role=Role.ADMIN, name="certgraph cli")

    @classmethod
    def of(cls, user: UserRecord) -> Actor:
        return cls(
            user_id=user.id,
            role=Role(user.role),
            name=user.name,
            email=user.email,
            manager_id=user.manager_id,
        )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def authenticate(token: str | None) -> Actor:
    """Resolve a bearer token to its user; UNAUTHENTICATED when missing, unknown or revoked."""
    if not token:
        raise Unauthenticated(t("an Authorization: Bearer <token> header is required"))
    now = clock.now()
    row = await token_by_hash(hash_token(token), now)
    if row is None:
        raise Unauthenticated(t("the token is unknown or revoked"))
    if isinstance(row, DeactivatedAccount):
        raise Unauthenticated(DEACTIVATED_ACCOUNT)
    if isinstance(row, ExpiredToken):
        raise Unauthenticated(t("the token expired at {at}", at=row.expires_at.isoformat()))
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        await touch_token(row.id, now)
    return Actor.of(row.user)


async def require_admin(
    actor: Actor, action: str, object_type: str = "", object_id: object | None = None
) -> None:
    if not actor.is_admin:
        await audit_refusal(actor.user_id, action, object_type, object_id, "admin only")
        raise Forbidden(t("{action} is for admins only", action=action))


async def note_hidden(
    actor: Actor, action: str, object_type: str, object_id: object | None
) -> None:
    """Audit an attempt to reach an object the actor may not see (it reads as not found)."""
    await note_denied_read(
        actor.user_id, action, object_type, object_id, "not visible to the actor"
    )


# -- learners and users ---------------------------------------------------------------------


def learner_scope(actor: Actor, field: str = "learner_id") -> Q:
    """Rows about learners the actor may see: own, a manager's reports too, all for admins."""
    if actor.is_admin:
        return Q()
    if actor.is_manager:
        return _q(**{field: actor.user_id}) | _q(**{f"{field}__in": _reports(actor)})
    return _q(**{field: actor.user_id})


def _q(**lookups: Any) -> Q:
    return Q(**lookups)


def _reports(actor: Actor) -> Subquery:
    return Subquery(User.filter(manager_id=actor.user_id).values("id"))


class Learner(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def manager_id(self) -> int | None: ...


def may_see_learner(actor: Actor, learner: Learner) -> bool:
    if actor.is_admin or learner.id == actor.user_id:
        return True
    return actor.is_manager and learner.manager_id == actor.user_id


async def visible_learners(actor: Actor, learner_ids: list[int]) -> set[int]:
    """Which of these learners' lists the actor may read: one's own needs no lookup, nor do
    an admin's (a missing learner simply has no enrollments)."""
    if actor.is_admin:
        return set(learner_ids)
    others = [i for i in learner_ids if i != actor.user_id]
    visible = {i for i in learner_ids if i == actor.user_id}
    if others:
        for learner in await reads.learners(others):
            if may_see_learner(actor, learner):
                visible.add(learner.id)
    return visible


def may_manage(role: Role) -> bool:
    """Who may be someone's manager: a manager or an admin."""
    return role in (Role.MANAGER, Role.ADMIN)


def user_scope(actor: Actor) -> Q:
    """Users: yourself, your manager, your direct reports; admins everyone."""
    scope = learner_scope(actor, "id")
    if actor.is_admin or actor.manager_id is None:
        return scope
    return scope | Q(id=actor.manager_id)


def learner_scope_sql(actor: Actor) -> PersonScope | None:
    """learner_scope for hand-written SQL (gql.store.search): None for everyone."""
    if actor.is_admin:
        return None
    own = () if actor.user_id is None else (actor.user_id,)
    return PersonScope(own, actor.user_id if actor.is_manager else None)


def user_scope_sql(actor: Actor) -> PersonScope | None:
    """user_scope for hand-written SQL (gql.store.search): None for everyone."""
    scope = learner_scope_sql(actor)
    if scope is None or actor.manager_id is None:
        return scope
    return PersonScope((*scope.ids, actor.manager_id), scope.team_of)


async def check_progress_recorder(
    actor: Actor, learner_id: int | None, course_id: int, completed_at: datetime | None
) -> None:
    """Learners and managers record only their own progress, and only admins back-date a
    completion (each refusal audited)."""
    if actor.is_admin:
        return
    if learner_id is not None and not may_record_progress(actor, learner_id):
        await note_hidden(actor, "recordCourseProgress", "User", learner_id)
        raise Forbidden(t("you may record only your own progress"))
    if completed_at is not None:
        await note_hidden(actor, "recordCourseProgress.completedAt", "Course", course_id)
        raise Forbidden(t("only admins may back-date a completion"))


# -- certifications -------------------------------------------------------------------------


def catalog_states(
    actor: Actor, requested: CertificationState | None
) -> list[CertificationState] | None:
    """The states the actor's catalog lists: None for every state (admins, unfiltered), [] for
    none. Learners and managers see PUBLISHED ones only."""
    if actor.is_admin:
        return [requested] if requested else None
    if requested is not None and requested != CertificationState.PUBLISHED:
        return []
    return [CertificationState.PUBLISHED]


def may_see_certification(actor: Actor, state: str, enrolled: bool) -> bool:
    """Admins see every state; others PUBLISHED ones, and a RETIRED one they (or, for a
    manager, a report) are enrolled in."""
    if actor.is_admin or state == CertificationState.PUBLISHED:
        return True
    return state == CertificationState.RETIRED and enrolled


def open_to_learner(state: str, enrolled: bool) -> bool:
    """Whether a learner may start (or submit proof for) a certification: one they are
    enrolled in whatever its state, else a PUBLISHED one. DRAFT and RETIRED ones are
    invisible to a learner not enrolled in them."""
    return enrolled or state == CertificationState.PUBLISHED


def report_team(actor: Actor) -> int | None:
    """Whose enrollments a certification report counts: everyone's for admins (None), a
    manager's own and their direct reports'; FORBIDDEN for learners."""
    if not may_view_reports(actor):
        raise Forbidden(t("reports are for managers and admins"))
    return None if actor.is_admin else actor.user_id


# -- evidence -------------------------------------------------------------------------------


def review_scope(actor: Actor) -> Q | None:
    """Evidence the actor may review: never their own; a manager's reports', anyone's for
    admins; None when the actor reviews nothing."""
    if actor.is_admin:
        return ~Q(enrollment__learner_id=actor.user_id) if actor.user_id is not None else Q()
    if actor.is_manager:
        return Q(enrollment__learner_id__in=_reports(actor))
    return None


def may_review(actor: Actor, learner: Learner) -> bool:
    """Whether the actor may review this learner's evidence (never one's own: see review)."""
    if learner.id == actor.user_id:
        return False
    if actor.is_admin:
        return True
    return actor.is_manager and learner.manager_id == actor.user_id


# -- what the viewer may do now (the viewerCan flags) ---------------------------------------
# Each predicate is what its use case refuses with; the flag is "it would be taken now",
# given valid input (a file of an accepted type, a completedOn when one is required).


class Ended(Protocol):
    """An enrollment as the start rule reads it."""

    @property
    def ended_at(self) -> datetime | None: ...


def may_enrol(state: str, enrollment: Ended | None) -> bool:
    """Whether a learner's own start is taken (startCertification, or the enrolment a
    submission of proof makes): an enrollment that has not ended starts whatever the state;
    a new or reopened (ended) one only in a PUBLISHED certification."""
    if enrollment is not None and enrollment.ended_at is None:
        return True
    return state == CertificationState.PUBLISHED


def enrol_refusal(cert: CertificationRecord, enrollment: Ended | None) -> NotAllowed | None:
    """may_enrol, said: why the learner's start is refused, or None."""
    if may_enrol(cert.state, enrollment):
        return None
    if enrollment is not None:
        return NotAllowed(
            t(
                "your enrollment in {name!r} was ended, and a {state} "
                "certification takes no new enrollments",
                name=cert.name,
                state=cert.state,
            ),
            field=["certificationId"],
        )
    return NotAllowed(
        t("a {state} certification takes no new enrollments", state=cert.state),
        field=["certificationId"],
    )


def may_start(actor: Actor, state: str, enrollment: Ended | None) -> bool:
    """startCertification for the actor themself (`enrollment`: theirs in it, or None)."""
    return actor.user_id is not None and may_enrol(state, enrollment)


def may_record_progress(actor: Actor, learner_id: int) -> bool:
    """recordCourseProgress for this learner: one's own, anyone's for admins (a manager's
    reports record their own)."""
    return actor.is_admin or learner_id == actor.user_id


def takes_evidence(cert: CertificationRecord) -> bool:
    """Whether a certification takes proof at all: EXTERNAL ones do."""
    return cert.kind == CertificationKind.EXTERNAL


def completion_date_required(cert: CertificationRecord) -> bool:
    """Whether submitEvidence needs `completedOn`: the policy config's `completionDate:
    "learner"` (the award is dated by the learner's day; external-evidence's config)."""
    return cert.policy_config.get("completionDate") == "learner"


def evidence_refusal(cert: CertificationRecord) -> NotAllowed | None:
    """takes_evidence, said: why no proof is taken for this certification, or None."""
    if takes_evidence(cert):
        return None
    return NotAllowed(
        t(
            "proof is submitted for EXTERNAL certifications only; this "
            "one is earned by completing its courses"
        ),
        field=["certificationId"],
    )


# Statuses in which new proof is taken (COMPLETED too, while its recertification window is open).
SUBMITTABLE = frozenset(
    {
        EnrollmentStatus.ENROLLED,
        EnrollmentStatus.STARTED,
        EnrollmentStatus.REJECTED,
        EnrollmentStatus.EXPIRED,
    }
)


def submission_refusal(
    cert: CertificationRecord,
    enrollment: Ended | None,
    view: EnrollmentView,
    plugins: PluginHost,
) -> NotAllowed | None:
    """Why the learner's new proof is refused now, or None when it is taken. `view` is their
    enrollment as the rules see it now (for one not yet enrolled, as it would be)."""
    refused = evidence_refusal(cert) or enrol_refusal(cert, enrollment)
    if refused is not None:
        return refused
    waiting = view.verdict is not None and view.verdict.status == VerdictStatus.PENDING_APPROVAL
    if view.status == EnrollmentStatus.PENDING_APPROVAL or waiting:
        return NotAllowed(t("your proof is waiting for review: wait for the decision"))
    reopened = view.status == EnrollmentStatus.COMPLETED and view.window_open
    if view.status not in SUBMITTABLE and not reopened:
        return NotAllowed(
            f"this certification is {view.status.value}: new proof is taken only once its "
            "recertification window opens"
            if view.status == EnrollmentStatus.COMPLETED
            else f"no proof is taken while the enrollment is {view.status.value}"
        )
    try:
        reason = plugins.check_submission(cert.policy_name, view.facts, cert.policy_config)
    except PolicyUnavailable as exc:
        return NotAllowed(t("proof cannot be taken now: {exc}", exc=exc))
    return None if reason is None else NotAllowed(reason)


def may_submit_evidence(
    actor: Actor,
    learner_id: int,
    cert: CertificationRecord,
    enrollment: Ended | None,
    view: EnrollmentView,
    plugins: PluginHost,
) -> bool:
    """submitEvidence: only for oneself, when submission_refusal has nothing to say."""
    if actor.user_id is None or learner_id != actor.user_id:
        return False
    return submission_refusal(cert, enrollment, view, plugins) is None


def reviewable(status: str) -> bool:
    """Evidence is reviewed once: while PENDING."""
    return status == EvidenceStatus.PENDING


def may_review_evidence(actor: Actor, learner: Learner, status: str) -> bool:
    """reviewEvidence: someone else's evidence the actor reviews (may_review), still PENDING."""
    return may_review(actor, learner) and reviewable(status)


def may_download_evidence(actor: Actor, learner: Learner) -> bool:
    """Whoever sees the evidence gets its signed download URL."""
    return may_see_learner(actor, learner)


def may_manage_certifications(actor: Actor) -> bool:
    """updateCertification, setCertificationCourses, uploadCertificationBadge (any state),
    unassignCertification: admins (require_admin)."""
    return actor.is_admin


def publish_refusal(cert: CertificationRecord, has_courses: bool) -> NotAllowed | None:
    """Why publishCertification refuses this certification (for an admin), or None."""
    if cert.state != CertificationState.DRAFT:
        return NotAllowed(
            t("only a DRAFT certification can be published; this one is {state}", state=cert.state)
        )
    if cert.kind == CertificationKind.INTERNAL and not has_courses:
        return NotAllowed(t("an INTERNAL certification needs courses before it is published"))
    return None


def may_publish(actor: Actor, cert: CertificationRecord, has_courses: bool) -> bool:
    return actor.is_admin and publish_refusal(cert, has_courses) is None


def retire_refusal(cert: CertificationRecord) -> NotAllowed | None:
    """Why retireCertification refuses this certification (for an admin), or None."""
    if cert.state != CertificationState.PUBLISHED:
        return NotAllowed(
            t(
                "only a PUBLISHED certification can be retired; this one is {state}",
                state=cert.state,
            )
        )
    return None


def may_retire(actor: Actor, cert: CertificationRecord) -> bool:
    return actor.is_admin and retire_refusal(cert) is None


def assign_refusal(cert: CertificationRecord) -> NotAllowed | None:
    """Why assignCertification refuses this certification (for an admin), or None; each
    learner named may still be refused (unknown, deactivated)."""
    if cert.state != CertificationState.PUBLISHED:
        return NotAllowed(
            t(
                "only a PUBLISHED certification can be assigned; this one is {state}",
                state=cert.state,
            )
        )
    return None


def may_assign(actor: Actor, cert: CertificationRecord) -> bool:
    return actor.is_admin and assign_refusal(cert) is None


def may_view_reports(actor: Actor) -> bool:
    """certificationReport: managers (their team) and admins."""
    return actor.is_admin or actor.is_manager
