"""Tortoise models of the tables, with an index for every lookup the domain makes (the
comments say which); hand-written SQL against them lives only in gql/store/sql.py."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from gql.vocabulary import (
    CertificationKind,
    CertificationState,
    CertificationType,
    DeliveryState,
    EnrollmentOrigin,
    EvidenceStatus,
    ProgressStatus,
    Role,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Award",
    "Certification",
    "CertificationCourse",
    "CertificationKind",
    "CertificationState",
    "CertificationType",
    "Course",
    "CourseLinksVersion",
    "CourseProgress",
    "DeliveryState",
    "Enrollment",
    "EnrollmentNotice",
    "EnrollmentOrigin",
    "EventDelivery",
    "Evidence",
    "EvidenceStatus",
    "OutboxEvent",
    "ProgressStatus",
    "Role",
    "User",
    "UserIdentity",
    "Webhook",
]


class User(Model):
    # foreign-key columns, declared for the type checker
    manager_id: int | None
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=320, unique=True)  # login lookup, unique
    role = fields.CharEnumField(Role, max_length=16, db_index=True)  # users(role:)
    manager: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reports", null=True, on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField()
    # The HR system's key, so a sync script finds what it made before (unique when set).
    external_id = fields.CharField(max_length=200, null=True, unique=True)
    # Deactivated people keep their history; their credentials are refused.
    deactivated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "user"
        indexes = (("manager_id",),)  # a manager's direct reports


class ApiToken(Model):
    # foreign-key columns, declared for the type checker
    user_id: int
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    # SHA-256 of the token; the token itself is shown once and never stored.
    token_hash = fields.CharField(max_length=64, unique=True)
    # What its owner calls it ("CI script"); empty for tokens made before names existed.
    name = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)  # None: until revoked

    class Meta:
        table = "api_token"
        indexes = (("user_id",),)  # revoking a user's tokens


class UserIdentity(Model):
    """A person as an OpenID provider knows them: issuer + subject, linked to one user."""

    # foreign-key columns, declared for the type checker
    user_id: int
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="identities", on_delete=fields.CASCADE
    )
    issuer = fields.CharField(max_length=500)
    subject = fields.CharField(max_length=255)
    created_at = fields.DatetimeField()

    class Meta:
        table = "user_identity"
        unique_together = (("issuer", "subject"),)  # the sign-in lookup
        indexes = (("user_id",),)


class Course(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=300)
    description = fields.TextField()
    duration_minutes = fields.IntField(null=True)
    published_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    external_id = fields.CharField(max_length=200, null=True, unique=True)
    # A retired course takes no new links; certifications that have it keep it.
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "course"
        indexes = (("name", "id"), ("published_at", "id"))  # the course sorts, keyset


class Certification(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=300)
    overview = fields.TextField()
    kind = fields.CharEnumField(CertificationKind, max_length=16)
    type = fields.CharEnumField(CertificationType, max_length=16)
    issuer = fields.CharField(max_length=300)
    validity_months = fields.IntField(null=True)
    recertification_window_days = fields.IntField()
    days_to_complete = fields.IntField(null=True)
    state = fields.CharEnumField(CertificationState, max_length=16)
    published_at = fields.DatetimeField(null=True)
    policy_name = fields.CharField(max_length=100)
    policy_config: fields.Field[dict[str, Any]] = fields.JSONField()
    badge_name = fields.CharField(max_length=300, null=True)
    badge_sha256 = fields.CharField(max_length=64, null=True, db_index=True)  # blob gc
    badge_content_type = fields.CharField(max_length=100, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    external_id = fields.CharField(max_length=200, null=True, unique=True)

    class Meta:
        table = "certification"
        # catalog sorts (by publication date, by name), each ending in id for keyset cursors
        indexes = (("state", "published_at", "id"), ("name", "id"))


class CertificationCourse(Model):
    # foreign-key columns, declared for the type checker
    certification_id: int
    course_id: int
    id = fields.IntField(primary_key=True)
    certification: fields.ForeignKeyRelation[Certification] = fields.ForeignKeyField(
        "models.Certification", related_name="course_links", on_delete=fields.CASCADE
    )
    course: fields.ForeignKeyRelation[Course] = fields.ForeignKeyField(
        "models.Course", related_name="certification_links", on_delete=fields.RESTRICT
    )
    mandatory = fields.BooleanField()
    position = fields.IntField()

    class Meta:
        table = "certification_course"
        unique_together = (("certification", "course"),)
        indexes = (("course_id",),)  # which certifications include a course


class CourseLinksVersion(Model):
    """The version of a certification's course links, new whenever they change.

    Written only by the database's triggers (migration 0007), whenever the certification's
    links or one of their courses change, so every writer keeps it, whatever its release. A
    process keeps the links it read while their version holds (gql.store.course_links).
    """

    certification: fields.OneToOneRelation[Certification] = fields.OneToOneField(
        "models.Certification",
        related_name="links_version",
        primary_key=True,
        # no constraint: a certification's deletion removes its links, whose trigger then
        # writes this row; a row left for a deleted certification is never read
        db_constraint=False,
        on_delete=fields.NO_ACTION,
    )
    version = fields.BigIntField()

    class Meta:
        table = "course_links_version"


class Enrollment(Model):
    # foreign-key columns, declared for the type checker
    learner_id: int
    certification_id: int
    assigned_by_id: int | None
    id = fields.IntField(primary_key=True)
    learner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="enrollments", on_delete=fields.CASCADE
    )
    certification: fields.ForeignKeyRelation[Certification] = fields.ForeignKeyField(
        "models.Certification", related_name="enrollments", on_delete=fields.RESTRICT
    )  # a certification's report: the (certification_id, due_at) index
    origin = fields.CharEnumField(EnrollmentOrigin, max_length=16)
    assigned_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="assigned_enrollments", null=True, on_delete=fields.SET_NULL
    )
    enrolled_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    due_at = fields.DatetimeField(null=True)
    # The last verdict of the policy, kept so lists sort in SQL and so an enrollment whose
    # policy was uninstalled still shows its last state. Status values: ENROLLED, STARTED,
    # PENDING_APPROVAL, REJECTED, COMPLETE (the verdict said complete for evaluated_cycle).
    verdict_status = fields.CharField(max_length=20)
    verdict_progress = fields.FloatField()
    verdict_explanation = fields.TextField()
    evaluated_cycle = fields.IntField()
    # Denormalised from the newest award, so RELEVANCE can bucket COMPLETED/EXPIRED in SQL.
    last_awarded_at = fields.DatetimeField(null=True)
    last_expires_at = fields.DatetimeField(null=True, db_index=True)  # the expiry sweep
    last_award_cycle = fields.IntField(null=True)
    # When the newest award's recertification window opens (expires_at - window days): from
    # then on the enrollment is pending again and the next cycle counts.
    window_opens_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()
    # Unassigned: the enrollment ended (its history and awards stay); assigning again
    # reopens it.
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "enrollment"
        unique_together = (("learner", "certification"),)  # one enrollment per learner
        indexes = (
            ("certification_id", "due_at"),  # the report's overdue count
            ("due_at", "id"),  # the sweep's due-soon and overdue reminders, keyset
            ("last_award_cycle", "due_at", "id"),  # overdue after an expired award
        )


class CourseProgress(Model):
    # foreign-key columns, declared for the type checker
    learner_id: int
    course_id: int
    id = fields.IntField(primary_key=True)
    learner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="progress", on_delete=fields.CASCADE
    )
    course: fields.ForeignKeyRelation[Course] = fields.ForeignKeyField(
        "models.Course", related_name="progress", on_delete=fields.RESTRICT
    )
    percent = fields.IntField()
    status = fields.CharEnumField(ProgressStatus, max_length=16)
    started_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)  # the latest completion
    # When the current attempt began: a report in a new recertification cycle on a course
    # completed before that cycle starts a new attempt.
    attempt_started_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "course_progress"
        unique_together = (("learner", "course"),)  # (learner, course IN ...) lookups


class Evidence(Model):
    # foreign-key columns, declared for the type checker
    enrollment_id: int
    reviewed_by_id: int | None
    id = fields.IntField(primary_key=True)
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "models.Enrollment", related_name="evidence", on_delete=fields.CASCADE
    )
    sha256 = fields.CharField(max_length=64, db_index=True)  # blob gc: is a blob referenced?
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=100)
    size_bytes = fields.BigIntField()
    status = fields.CharEnumField(EvidenceStatus, max_length=16)
    submitted_at = fields.DatetimeField()
    completed_on = fields.DateField(null=True)
    note = fields.TextField(null=True)
    reviewed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reviewed_evidence", null=True, on_delete=fields.SET_NULL
    )
    reviewed_at = fields.DatetimeField(null=True)
    review_comment = fields.TextField(null=True)

    class Meta:
        table = "evidence"
        # an enrollment's submissions in order; the review queue (PENDING, oldest first)
        indexes = (("enrollment_id", "submitted_at"), ("status", "submitted_at", "id"))


class Award(Model):
    # foreign-key columns, declared for the type checker
    enrollment_id: int
    id = fields.IntField(primary_key=True)
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "models.Enrollment", related_name="awards", on_delete=fields.CASCADE
    )
    cycle = fields.IntField()
    awarded_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True, db_index=True)  # expiringWithin, sweeps
    # The calendar days of the award (docs/domain.md, "Dates and instants"), written with it:
    # the learner's stated day, or awarded_at's day in the organisation's time zone; and
    # that day + validityMonths (null: never expires).
    # Null only on rows an older release wrote during a rolling upgrade (records.award_record).
    earned_on = fields.DateField(null=True)
    expires_on = fields.DateField(null=True)
    created_at = fields.DatetimeField()
    # Set once by whoever first sees this award expire, so certification_expired is
    # emitted exactly once however many readers and sweepers race.
    expiry_noted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "award"
        # exactly once: a second award for the same cycle is an IntegrityError
        unique_together = (("enrollment", "cycle"),)


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    # Plain columns, not foreign keys: the log is append-only and outlives what it names.
    actor_id = fields.IntField(null=True, db_index=True)
    action = fields.CharField(max_length=100, db_index=True)
    object_type = fields.CharField(max_length=50)
    object_id = fields.CharField(max_length=100, null=True)
    before: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    after: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    detail = fields.TextField(null=True)

    class Meta:
        table = "audit_event"
        indexes = (("object_type", "object_id"),)


class OutboxEvent(Model):
    """An event, written in the transaction of the change that caused it (docs/events.md)."""

    seq = fields.BigIntField(primary_key=True)  # the order events were written in
    event_id = fields.UUIDField(unique=True)  # the same on every delivery attempt
    type = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    actor_id = fields.IntField(null=True)
    # Events with the same key reach each destination in the order they were written:
    # "learner:<pk>", since every event concerns one learner.
    ordering_key = fields.CharField(max_length=64)
    data: fields.Field[dict[str, Any]] = fields.JSONField()
    # Set when a dispatcher has written this event's deliveries (one per destination).
    fanned_out_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_event"
        indexes = (("fanned_out_at", "seq"), ("occurred_at",))  # fan-out, pruning


class Webhook(Model):
    id = fields.IntField(primary_key=True)
    url = fields.CharField(max_length=2000)
    # The event types sent there; empty: every type.
    event_types: fields.Field[list[str]] = fields.JSONField()
    description = fields.TextField()
    # Standard Webhooks signing secret ("whsec_" + base64); shown once, never logged.
    secret = fields.CharField(max_length=100)
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook"


class EventDelivery(Model):
    """One event on its way to one destination: a plugin ("plugin:<label>") or a webhook."""

    # foreign-key columns, declared for the type checker
    event_id: int
    webhook_id: int | None
    id = fields.BigIntField(primary_key=True)
    event: fields.ForeignKeyRelation[OutboxEvent] = fields.ForeignKeyField(
        "models.OutboxEvent", related_name="deliveries", on_delete=fields.CASCADE
    )
    target = fields.CharField(max_length=200)
    webhook: fields.ForeignKeyNullableRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    ordering_key = fields.CharField(max_length=64)  # the event's, for the order check
    state = fields.CharEnumField(DeliveryState, max_length=16)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)  # a dispatcher's lease while it sends
    last_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "event_delivery"
        unique_together = (("event", "target"),)
        indexes = (
            ("state", "next_attempt_at"),  # what is due
            ("target", "ordering_key", "state"),  # is an earlier one still pending?
            ("webhook_id", "id"),  # an endpoint's recent deliveries
        )


class EnrollmentNotice(Model):
    """A reminder already emitted (due soon, overdue, expiring): once per enrollment and cycle."""

    # foreign-key columns, declared for the type checker
    enrollment_id: int
    id = fields.IntField(primary_key=True)
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "models.Enrollment", related_name="notices", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    cycle = fields.IntField()
    noted_at = fields.DatetimeField()

    class Meta:
        table = "enrollment_notice"
        unique_together = (("enrollment", "kind", "cycle"),)
