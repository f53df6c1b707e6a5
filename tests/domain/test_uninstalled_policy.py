"""A policy removed after certifications use it: enrollments keep their last state and say why."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain import certifications, enrollments
from gql.domain.certifications import CertificationData
from gql.domain.errors import PolicyUnknown
from gql.domain.pages import CertificationSort, PageRequest
from gql.domain.status import EnrollmentStatus
from gql.plugins import PluginHost, set_plugin_host
from gql.store.models import Award, CertificationKind, CertificationType, Enrollment

from .factories import Factory


def install_only(*module_names: str) -> PluginHost:
    """A plugin host with only some of the built-in policy modules, installed for the test."""
    host = PluginHost()
    for name in module_names:
        assert host.register(importlib.import_module(name), name)
    host.collect_policies()
    set_plugin_host(host)
    return host


def uninstall_all_required() -> None:
    host = install_only("plugins.mandatory_subset", "plugins.external_evidence")
    assert "all-required" not in host.policies


async def test_enrollments_keep_their_last_state_and_explain_why(
    make: Factory, frozen_now: datetime
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b, policy="all-required")
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    before = await make.view(enrollment)
    assert (before.status, before.progress_percent) == (EnrollmentStatus.STARTED, 50)

    uninstall_all_required()

    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 50)
    assert "all-required" in view.explanation
    assert "not installed" in view.explanation

    # recording more progress neither crashes nor decides anything without the policy
    clock.advance(timedelta(hours=1))
    recorded = await make.complete(learner, b)
    assert [e.id for e in recorded.enrollments] == [enrollment.id]
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.STARTED
    assert "all-required" in view.explanation
    assert await Award.filter(enrollment_id=enrollment.id).count() == 0

    page = await enrollments.list_learner_enrollments(
        learner,
        learner.user_id,  # type: ignore[arg-type]
        sort=CertificationSort.RELEVANCE,
        pending=True,
        kind=None,
        paging=PageRequest(first=20),
    )
    assert [e.id for e in page.items] == [enrollment.id]


async def test_a_completed_enrollment_stays_completed(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    cert = await make.certification(course, policy="all-required")
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)

    uninstall_all_required()

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert view.completed_at == frozen_now
    assert "all-required" in view.explanation


async def test_the_policy_coming_back_resumes_deciding(make: Factory, frozen_now: datetime) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b, policy="all-required")
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    uninstall_all_required()
    await make.complete(learner, b)

    install_only("plugins.mandatory_subset", "plugins.all_required", "plugins.external_evidence")
    await make.progress(learner, a, 100)  # any write about the course re-evaluates

    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1


async def test_new_uses_of_a_missing_policy_are_refused_old_ones_keep_working(
    make: Factory,
) -> None:
    course = await make.course()
    cert = await make.certification(course, policy="all-required")
    uninstall_all_required()
    admin = await make.admin()

    with pytest.raises(PolicyUnknown):
        await certifications.create_certification(
            admin,
            CertificationData(
                name="New",
                kind=CertificationKind.INTERNAL,
                type=CertificationType.PERPETUAL,
                policy="all-required",
            ),
        )

    # starting and assigning still work: the enrollment simply waits for its policy
    learner = await make.learner()
    started = await enrollments.start_certification(learner, cert.id)
    view = await make.view(started)
    assert view.status == EnrollmentStatus.STARTED
    assert "all-required" in view.explanation
    assert await Enrollment.filter(certification_id=cert.id).count() == 1
