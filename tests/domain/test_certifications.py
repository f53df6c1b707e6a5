"""Certifications: validation, policies and their configs, courses, and the state machine."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import pytest

from gql import clock
from gql.domain import certifications, enrollments
from gql.domain.certifications import CertificationData, CourseLink
from gql.domain.errors import (
    Forbidden,
    InvalidInput,
    NotAllowed,
    NotFound,
    PolicyConfigInvalid,
    PolicyUnknown,
)
from gql.domain.pages import CertificationSort, PageRequest
from gql.domain.status import EnrollmentStatus
from gql.store.models import (
    Award,
    Certification,
    CertificationCourse,
    CertificationKind,
    CertificationState,
    CertificationType,
    Enrollment,
)

from .factories import Factory, field_of

INTERNAL, EXTERNAL = CertificationKind.INTERNAL, CertificationKind.EXTERNAL
PERPETUAL, RECURRING = CertificationType.PERPETUAL, CertificationType.RECURRING


def data(**overrides: Any) -> CertificationData:
    values: dict[str, Any] = {"name": "Forklift operator", "kind": INTERNAL, "type": PERPETUAL}
    values.update(overrides)
    return CertificationData(**values)


async def test_admin_creates_a_draft_with_defaults(make: Factory) -> None:
    admin = await make.admin()

    internal = await certifications.create_certification(admin, data())
    external = await certifications.create_certification(
        admin, data(name="PMP", kind=EXTERNAL, issuer="PMI")
    )

    for cert in (internal, external):
        stored = await Certification.get(id=cert.id)
        assert stored.state == CertificationState.DRAFT
        assert stored.published_at is None
        assert stored.recertification_window_days == 30
    assert (await Certification.get(id=internal.id)).policy_name == "mandatory-subset"
    assert (await Certification.get(id=external.id)).policy_name == "external-evidence"


async def test_recurring_keeps_a_given_window(make: Factory) -> None:
    cert = await certifications.create_certification(
        await make.admin(),
        data(type=RECURRING, validity_months=24, recertification_window_days=60),
    )
    stored = await Certification.get(id=cert.id)
    assert (stored.validity_months, stored.recertification_window_days) == (24, 60)


async def test_only_admins_write_certifications(make: Factory) -> None:
    learner = await make.learner()
    cert = await make.certification(await make.course(), publish=False)

    with pytest.raises(Forbidden):
        await certifications.create_certification(learner, data())
    with pytest.raises(Forbidden):
        await certifications.update_certification(learner, cert.id, data(name="Renamed"))
    with pytest.raises(Forbidden):
        await certifications.set_certification_courses(learner, cert.id, [])
    with pytest.raises(Forbidden):
        await certifications.publish_certification(learner, cert.id)
    with pytest.raises(Forbidden):
        await certifications.retire_certification(learner, cert.id)

    stored = await Certification.get(id=cert.id)
    assert await Certification.all().count() == 1
    assert stored.name == cert.name and stored.state == CertificationState.DRAFT
    assert await CertificationCourse.filter(certification_id=cert.id).count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"type": PERPETUAL, "validity_months": 12}, "validity_months"),
        ({"type": RECURRING, "validity_months": None}, "validity_months"),
        ({"type": RECURRING, "validity_months": 0}, "validity_months"),
        ({"type": RECURRING, "validity_months": -3}, "validity_months"),
        ({"days_to_complete": -1}, "days_to_complete"),
        ({"recertification_window_days": -1}, "recertification_window_days"),
    ],
)
async def test_invalid_definitions_are_refused_and_nothing_is_written(
    make: Factory, overrides: dict[str, Any], field: str
) -> None:
    admin = await make.admin()
    existing = await certifications.create_certification(admin, data(name="Kept"))

    with pytest.raises(InvalidInput) as created:
        await certifications.create_certification(admin, data(**overrides))
    assert field_of(created.value) == field

    with pytest.raises(InvalidInput) as updated:
        await certifications.update_certification(admin, existing.id, data(**overrides))
    assert field_of(updated.value) == field

    assert await Certification.all().count() == 1
    assert (await Certification.get(id=existing.id)).name == "Kept"


async def test_an_unknown_policy_is_refused(make: Factory) -> None:
    admin = await make.admin()

    with pytest.raises(PolicyUnknown) as raised:
        await certifications.create_certification(admin, data(policy="no-such-policy"))

    assert "no-such-policy" in raised.value.message
    assert await Certification.all().count() == 0


@pytest.mark.parametrize(
    ("policy", "config", "model_says"),
    [
        ("mandatory-subset", {"minCourses": 2}, "Extra inputs are not permitted"),
        ("all-required", {"anything": True}, "Extra inputs are not permitted"),
        (
            "external-evidence",
            {"completionDate": "tomorrow"},
            "Input should be 'approval' or 'learner'",
        ),
        ("external-evidence", {"requiresApproval": "perhaps"}, "Input should be a valid boolean"),
    ],
)
async def test_a_config_the_model_rejects_is_refused_with_the_models_message(
    make: Factory, policy: str, config: dict[str, Any], model_says: str
) -> None:
    admin = await make.admin()
    kind = EXTERNAL if policy == "external-evidence" else INTERNAL
    existing = await certifications.create_certification(
        admin, data(name="Kept", kind=kind, issuer="Board", policy=policy)
    )

    with pytest.raises(PolicyConfigInvalid) as created:
        await certifications.create_certification(
            admin, data(kind=kind, issuer="Board", policy=policy, policy_config=config)
        )
    assert model_says in created.value.message

    with pytest.raises(PolicyConfigInvalid):
        await certifications.update_certification(
            admin, existing.id, data(kind=kind, issuer="Board", policy=policy, policy_config=config)
        )

    assert await Certification.all().count() == 1
    stored = await Certification.get(id=existing.id)
    assert (stored.name, stored.policy_config) == ("Kept", existing.policy_config)


async def test_a_valid_config_is_stored(make: Factory) -> None:
    cert = await certifications.create_certification(
        await make.admin(),
        data(kind=EXTERNAL, issuer="Board", policy_config={"requiresApproval": False}),
    )
    stored = await Certification.get(id=cert.id)
    assert stored.policy_name == "external-evidence"
    assert stored.policy_config["requiresApproval"] is False


async def test_set_courses_keeps_order_and_flags(make: Factory) -> None:
    admin = await make.admin()
    a, b, c = await make.course("A"), await make.course("B"), await make.course("C")
    cert = await certifications.create_certification(admin, data())

    await certifications.set_certification_courses(
        admin, cert.id, [CourseLink(c.id, True), CourseLink(a.id, False), CourseLink(b.id, True)]
    )

    links = (await certifications.course_links([cert.id]))[cert.id]
    assert [(link.course.id, link.mandatory) for link in links] == [
        (c.id, True),
        (a.id, False),
        (b.id, True),
    ]
    assert [link.position for link in links] == sorted(link.position for link in links)


async def test_explicit_positions_order_the_courses(make: Factory) -> None:
    admin = await make.admin()
    a, b, c = await make.course("A"), await make.course("B"), await make.course("C")
    cert = await certifications.create_certification(admin, data())

    await certifications.set_certification_courses(
        admin,
        cert.id,
        [
            CourseLink(a.id, True, position=3),
            CourseLink(b.id, True, position=1),
            CourseLink(c.id, False, position=2),
        ],
    )

    links = (await certifications.course_links([cert.id]))[cert.id]
    assert [link.course.id for link in links] == [b.id, c.id, a.id]


async def test_set_courses_replaces_the_previous_list(make: Factory) -> None:
    admin = await make.admin()
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(a, b, publish=False)

    await certifications.set_certification_courses(admin, cert.id, [CourseLink(b.id, False)])

    links = (await certifications.course_links([cert.id]))[cert.id]
    assert [(link.course.id, link.mandatory) for link in links] == [(b.id, False)]


async def test_an_unknown_course_is_refused_and_the_old_list_stays(make: Factory) -> None:
    admin = await make.admin()
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(a, publish=False)

    with pytest.raises((NotFound, InvalidInput)):
        await certifications.set_certification_courses(
            admin, cert.id, [CourseLink(b.id, True), CourseLink(777777, True)]
        )

    links = (await certifications.course_links([cert.id]))[cert.id]
    assert [link.course.id for link in links] == [a.id]


async def test_a_duplicated_course_is_invalid_input(make: Factory) -> None:
    admin = await make.admin()
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(a, publish=False)

    with pytest.raises(InvalidInput):
        await certifications.set_certification_courses(
            admin, cert.id, [CourseLink(b.id, True), CourseLink(b.id, False)]
        )

    links = (await certifications.course_links([cert.id]))[cert.id]
    assert [link.course.id for link in links] == [a.id]


async def test_courses_of_an_unknown_certification_is_not_found(make: Factory) -> None:
    course = await make.course()
    with pytest.raises(NotFound):
        await certifications.set_certification_courses(
            await make.admin(), 4242, [CourseLink(course.id, True)]
        )


async def test_draft_to_published_to_retired(make: Factory, frozen_now: datetime) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course(), publish=False)

    clock.advance(timedelta(hours=1))
    published = await certifications.publish_certification(admin, cert.id)
    assert published.state == CertificationState.PUBLISHED
    assert published.published_at == frozen_now + timedelta(hours=1)

    clock.advance(timedelta(hours=1))
    retired = await certifications.retire_certification(admin, cert.id)
    stored = await Certification.get(id=cert.id)
    assert retired.state == stored.state == CertificationState.RETIRED
    assert stored.published_at == frozen_now + timedelta(hours=1)


async def test_published_at_is_set_once(make: Factory, frozen_now: datetime) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())

    clock.advance(timedelta(days=1))
    # publishing twice may be refused or be a no-op; either way the date must not move
    with contextlib.suppress(NotAllowed):
        await certifications.publish_certification(admin, cert.id)
    clock.advance(timedelta(days=1))
    await certifications.update_certification(admin, cert.id, data(name="Renamed"))

    stored = await Certification.get(id=cert.id)
    assert stored.published_at == frozen_now
    assert stored.state == CertificationState.PUBLISHED


async def test_retiring_a_draft_is_not_allowed(make: Factory) -> None:
    cert = await make.certification(await make.course(), publish=False)

    with pytest.raises(NotAllowed):
        await certifications.retire_certification(await make.admin(), cert.id)

    assert (await Certification.get(id=cert.id)).state == CertificationState.DRAFT


async def test_publishing_a_retired_one_is_not_allowed(make: Factory) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())
    await certifications.retire_certification(admin, cert.id)
    published_at = (await Certification.get(id=cert.id)).published_at

    with pytest.raises(NotAllowed):
        await certifications.publish_certification(admin, cert.id)

    stored = await Certification.get(id=cert.id)
    assert stored.state == CertificationState.RETIRED
    assert stored.published_at == published_at


async def test_publishing_an_unknown_certification_is_not_found(make: Factory) -> None:
    with pytest.raises(NotFound):
        await certifications.publish_certification(await make.admin(), 31337)


async def test_learners_see_only_published_certifications(make: Factory) -> None:
    admin = await make.admin()
    learner = await make.learner()
    draft = await make.certification(await make.course(), publish=False)
    published = await make.certification(await make.course())
    retired = await make.certification(await make.course())
    await certifications.retire_certification(admin, retired.id)

    assert await certifications.get_certification(learner, draft.id) is None
    assert await certifications.get_certification(learner, 999999) is None
    seen = await certifications.get_certification(learner, published.id)
    assert seen is not None and seen.id == published.id
    assert set(await certifications.certifications_by_ids(learner, [draft.id, published.id])) == {
        published.id
    }
    # admins see every state
    assert set(
        await certifications.certifications_by_ids(admin, [draft.id, published.id, retired.id])
    ) == {draft.id, published.id, retired.id}

    catalog = await certifications.list_certifications(
        learner,
        sort=CertificationSort.NAME_ASC,
        kind=None,
        state=None,
        search=None,
        paging=PageRequest(first=20),
    )
    assert [c.id for c in catalog.items] == [published.id]
    assert catalog.total_count == 1
    drafts = await certifications.list_certifications(
        learner,
        sort=CertificationSort.NAME_ASC,
        kind=None,
        state=CertificationState.DRAFT,
        search=None,
        paging=PageRequest(first=20),
    )
    assert drafts.items == []


async def test_admins_filter_the_catalog_by_state_and_kind(make: Factory) -> None:
    admin = await make.admin()
    draft = await make.certification(await make.course(), publish=False)
    internal = await make.certification(await make.course())
    external = await make.certification(kind=EXTERNAL)

    async def listed(**filters: Any) -> set[int]:
        page = await certifications.list_certifications(
            admin,
            sort=CertificationSort.NAME_ASC,
            search=None,
            paging=PageRequest(first=20),
            **{"kind": None, "state": None, **filters},
        )
        return {c.id for c in page.items}

    assert await listed() == {draft.id, internal.id, external.id}
    assert await listed(state=CertificationState.DRAFT) == {draft.id}
    assert await listed(kind=EXTERNAL) == {external.id}


async def test_retired_takes_no_new_enrollments_but_awards_stay_valid(
    make: Factory, frozen_now: datetime
) -> None:
    admin = await make.admin()
    course = await make.course()
    cert = await make.certification(course)
    graduate, newcomer, late = await make.learner(), await make.learner(), await make.learner()
    enrollment = await make.assign(cert, graduate)
    await make.complete(graduate, course)
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED

    await certifications.retire_certification(admin, cert.id)

    with pytest.raises((NotAllowed, NotFound)):
        await enrollments.start_certification(newcomer, cert.id)
    with pytest.raises(NotAllowed):
        await enrollments.assign_certification(admin, cert.id, [late.user_id], None)
    assert await Enrollment.filter(certification_id=cert.id).count() == 1

    clock.advance(timedelta(days=3650))
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1
    # the graduate still sees the retired certification their award is for
    assert await certifications.get_certification(graduate, cert.id) is not None
