"""The certification report: counts by derived status, overdue, expiring, scoped by role."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain.certifications import certification_report
from gql.domain.errors import Forbidden
from gql.domain.status import EnrollmentStatus
from gql.store.models import CertificationKind, CertificationType, EvidenceStatus, Role

from .factories import Factory


async def test_report_counts_derived_statuses(make: Factory, frozen_now: datetime) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b, type=CertificationType.RECURRING, validity_months=12)
    manager = await make.user(Role.MANAGER)
    enrolled, started, done, expired = [await make.learner(manager=manager) for _ in range(4)]
    outsider = await make.learner()
    await make.assign(cert, enrolled, frozen_now + timedelta(days=1))
    await make.assign(cert, started)
    await make.progress(started, a, 10)
    await make.assign(cert, done, frozen_now + timedelta(days=1))
    await make.complete(done, a)
    await make.complete(done, b)
    await make.assign(cert, expired)
    await make.complete(expired, a, at=frozen_now - timedelta(days=400))
    await make.complete(expired, b, at=frozen_now - timedelta(days=390))
    await make.assign(cert, outsider)
    clock.advance(timedelta(days=2))  # `enrolled` is now overdue; `done` completed in time

    report = await certification_report(await make.admin(), cert.id)

    assert report is not None
    assert report.enrolled == 5
    assert report.by_status[EnrollmentStatus.ENROLLED] == 2
    assert report.by_status[EnrollmentStatus.STARTED] == 1
    assert report.by_status[EnrollmentStatus.COMPLETED] == 1
    assert report.by_status[EnrollmentStatus.EXPIRED] == 1
    assert report.by_status[EnrollmentStatus.PENDING_APPROVAL] == 0
    assert report.overdue == 1
    assert report.completion_rate == pytest.approx(1 / 5)
    assert await report.expiring_within(400) == 1  # done's award, in force, expires in a year
    assert await report.expiring_within(30) == 0

    scoped = await certification_report(manager, cert.id)
    assert scoped is not None
    assert scoped.enrolled == 4  # the manager's direct reports only


async def test_report_counts_evidence_statuses(make: Factory, frozen_now: datetime) -> None:
    cert = await make.certification(kind=CertificationKind.EXTERNAL)
    waiting, rejected = await make.learner(), await make.learner()
    await make.evidence(await make.assign(cert, waiting), EvidenceStatus.PENDING)
    await make.evidence(
        await make.assign(cert, rejected), EvidenceStatus.REJECTED, reviewed_at=frozen_now
    )

    report = await certification_report(await make.admin(), cert.id)

    assert report is not None
    assert report.by_status[EnrollmentStatus.PENDING_APPROVAL] == 1
    assert report.by_status[EnrollmentStatus.REJECTED] == 1
    assert report.completion_rate == 0.0


async def test_learners_get_no_reports(make: Factory) -> None:
    cert = await make.certification(await make.course())
    with pytest.raises(Forbidden):
        await certification_report(await make.learner(), cert.id)


async def test_an_empty_report_has_rate_zero(make: Factory) -> None:
    cert = await make.certification(await make.course())
    report = await certification_report(await make.admin(), cert.id)
    assert report is not None
    assert (report.enrolled, report.completion_rate, report.overdue) == (0, 0.0, 0)
