"""The audit log: every admin action and refusal, in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from gql.domain import certifications, courses, enrollments, unit, users
from gql.domain.access import Actor
from gql.domain.certifications import CertificationData, CourseLink
from gql.domain.errors import DomainError, Forbidden
from gql.store.models import (
    AuditEvent,
    CertificationKind,
    CertificationType,
    Course,
    Role,
)

from .factories import Factory


async def _new_rows(action: Callable[[], Awaitable[Any]]) -> tuple[Any, list[AuditEvent]]:
    last = await AuditEvent.all().order_by("-id").first()
    result = await action()
    rows = await AuditEvent.filter(id__gt=last.id if last else 0).order_by("id")
    return result, list(rows)


def _names(rows: list[AuditEvent], object_id: object) -> list[AuditEvent]:
    return [r for r in rows if r.object_id == str(object_id)]


async def test_each_admin_action_writes_an_audit_row_naming_actor_and_object(
    make: Factory, frozen_now: datetime
) -> None:
    admin = await make.admin()
    learner = await make.learner()
    assert learner.user_id is not None
    data = CertificationData(
        name="Audited", kind=CertificationKind.INTERNAL, type=CertificationType.PERPETUAL
    )

    user, rows = await _new_rows(
        lambda: users.create_user(admin, name="N", email="n@example.com", role=Role.LEARNER)
    )
    assert _names(rows, user.id)
    _, rows = await _new_rows(lambda: users.create_api_token(admin, learner.user_id))  # type: ignore[arg-type]
    assert rows, "issuing a token is audited"
    course, rows = await _new_rows(lambda: courses.create_course(admin, name="C"))
    assert _names(rows, course.id)
    _, rows = await _new_rows(lambda: courses.update_course(admin, course.id, name="C2"))
    [update] = _names(rows, course.id)
    assert (update.before or {}).get("name") == "C" and (update.after or {}).get("name") == "C2"
    cert, rows = await _new_rows(lambda: certifications.create_certification(admin, data))
    assert _names(rows, cert.id)
    _, rows = await _new_rows(
        lambda: certifications.set_certification_courses(
            admin, cert.id, [CourseLink(course.id, True)]
        )
    )
    assert _names(rows, cert.id)
    _, rows = await _new_rows(lambda: certifications.publish_certification(admin, cert.id))
    assert _names(rows, cert.id)
    assigned, rows = await _new_rows(
        lambda: enrollments.assign_certification(admin, cert.id, [learner.user_id], None)  # type: ignore[list-item]
    )
    assert _names(rows, assigned[0].id)
    _, rows = await _new_rows(
        lambda: enrollments.record_course_progress(
            admin,
            course_id=course.id,
            learner_id=learner.user_id,
            completed=True,
            completed_at=frozen_now - timedelta(days=1),
        )
    )
    assert rows, "an admin recording someone's progress is audited"
    assert any(r.object_id == str(assigned[0].id) for r in rows), "the award is audited"
    _, rows = await _new_rows(lambda: certifications.retire_certification(admin, cert.id))
    assert _names(rows, cert.id)

    everything = await AuditEvent.all()
    assert everything
    for row in everything:
        assert not row.action.startswith("denied:")
        assert row.actor_id in (admin.user_id, None)
        assert row.at is not None


async def _failing_admin_actions(make: Factory) -> list[Callable[[], Awaitable[Any]]]:
    admin = await make.admin()
    learner = await make.learner()
    draft = await make.certification(await make.course(), publish=False)
    retired = await make.certification(await make.course())
    await certifications.retire_certification(admin, retired.id)
    bad = CertificationData(
        name="X",
        kind=CertificationKind.INTERNAL,
        type=CertificationType.PERPETUAL,
        policy="no-such-policy",
    )
    return [
        lambda: courses.create_course(admin, name=""),
        lambda: users.create_user(admin, name="A", email="bad", role=Role.LEARNER),
        lambda: users.create_user(admin, name="A", email=learner.email, role=Role.LEARNER),
        lambda: certifications.create_certification(admin, bad),
        lambda: certifications.publish_certification(admin, retired.id),
        lambda: certifications.retire_certification(admin, draft.id),
        lambda: certifications.set_certification_courses(
            admin, draft.id, [CourseLink(99999, True)]
        ),
        lambda: enrollments.assign_certification(admin, draft.id, [learner.user_id], None),  # type: ignore[list-item]
    ]


async def test_a_failed_admin_action_writes_no_audit_row(make: Factory) -> None:
    for action in await _failing_admin_actions(make):
        before = await AuditEvent.all().count()
        with pytest.raises(DomainError):
            await action()
        assert await AuditEvent.all().count() == before


async def test_a_refused_non_admin_writes_exactly_one_denied_row(make: Factory) -> None:
    learner = await make.learner()
    cert = await make.certification(await make.course())
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: courses.create_course(learner, name="Mine"),
        lambda: users.create_user(learner, name="A", email="a@example.com", role=Role.ADMIN),
        lambda: certifications.publish_certification(learner, cert.id),
        lambda: enrollments.assign_certification(learner, cert.id, [learner.user_id], None),  # type: ignore[list-item]
    ]
    for attempt in attempts:
        courses_before = await Course.all().count()
        audit_before = await AuditEvent.all().count()
        with pytest.raises(Forbidden):
            await attempt()
        [row] = await AuditEvent.all().order_by("id").offset(audit_before)
        assert row.action.startswith("denied:") and row.actor_id == learner.user_id
        assert await Course.all().count() == courses_before
    denied = await AuditEvent.filter(actor_id=learner.user_id)
    assert len(denied) == len(attempts)
    assert all(r.action.startswith("denied:") for r in denied)


async def test_reaching_for_someone_elses_data_is_audited(make: Factory) -> None:
    owner, snoop = await make.learner(), await make.learner()
    course = await make.course()
    cert = await make.certification(course)
    enrollment = await make.assign(cert, owner)
    before = await AuditEvent.all().count()

    assert await enrollments.get_enrollment(snoop, enrollment.id) is None
    with pytest.raises(Forbidden):
        await enrollments.record_course_progress(
            snoop, course_id=course.id, learner_id=owner.user_id, percent=10
        )

    rows = await AuditEvent.all().order_by("id").offset(before)
    assert [r.actor_id for r in rows] == [snoop.user_id, snoop.user_id]
    assert all(r.action.startswith("denied:") for r in rows)


async def test_the_audit_row_shares_the_changes_transaction(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make.admin()
    original = unit.Unit.audit

    async def audit_then_fail(self: unit.Unit, *args: Any, **kwargs: Any) -> None:
        await original(self, *args, **kwargs)
        raise RuntimeError("the transaction fails after the audit row is written")

    monkeypatch.setattr(unit.Unit, "audit", audit_then_fail)
    before = await AuditEvent.all().count()

    with pytest.raises(RuntimeError):
        await courses.create_course(admin, name="Never")

    assert await Course.filter(name="Never").count() == 0
    assert await AuditEvent.all().count() == before


async def test_the_command_line_operator_is_audited_without_a_user(db: None) -> None:
    operator = Actor.system()
    user = await users.create_user(operator, name="Root", email="root@example.com", role=Role.ADMIN)

    [row] = await AuditEvent.filter(object_id=str(user.id))
    assert row.actor_id is None
