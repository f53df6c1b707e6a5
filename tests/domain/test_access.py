"""The role and visibility rules of gql/domain/access.py, each as a table over the roles."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gql.domain import access
from gql.domain.access import Actor
from gql.domain.errors import Forbidden
from gql.store.models import CertificationState, Role

from .factories import Factory


@dataclass(frozen=True)
class Learner:
    id: int
    manager_id: int | None


ADMIN = Actor(user_id=1, role=Role.ADMIN)
MANAGER = Actor(user_id=2, role=Role.MANAGER)
LEARNER = Actor(user_id=3, role=Role.LEARNER, manager_id=2)
REPORT = Learner(id=3, manager_id=2)  # LEARNER, who reports to MANAGER
STRANGER = Learner(id=4, manager_id=None)


@pytest.mark.parametrize(
    ("actor", "learner", "sees", "reviews"),
    [
        (ADMIN, REPORT, True, True),
        (ADMIN, Learner(id=1, manager_id=None), True, False),  # never one's own proof
        (MANAGER, REPORT, True, True),
        (MANAGER, STRANGER, False, False),
        (LEARNER, REPORT, True, False),  # oneself
        (LEARNER, STRANGER, False, False),
    ],
)
def test_who_sees_and_reviews_whom(
    actor: Actor, learner: Learner, sees: bool, reviews: bool
) -> None:
    assert access.may_see_learner(actor, learner) is sees
    assert access.may_review(actor, learner) is reviews


@pytest.mark.parametrize(
    ("role", "may"), [(Role.ADMIN, True), (Role.MANAGER, True), (Role.LEARNER, False)]
)
def test_who_may_be_a_manager(role: Role, may: bool) -> None:
    assert access.may_manage(role) is may


@pytest.mark.parametrize(
    ("actor", "state", "enrolled", "sees", "opens"),
    [
        (ADMIN, CertificationState.DRAFT, False, True, False),
        (LEARNER, CertificationState.DRAFT, False, False, False),
        (LEARNER, CertificationState.PUBLISHED, False, True, True),
        (LEARNER, CertificationState.RETIRED, False, False, False),
        (LEARNER, CertificationState.RETIRED, True, True, True),
    ],
)
def test_who_sees_and_may_start_a_certification(
    actor: Actor, state: CertificationState, enrolled: bool, sees: bool, opens: bool
) -> None:
    assert access.may_see_certification(actor, state, enrolled) is sees
    assert access.open_to_learner(state, enrolled) is opens


def test_reports_are_for_managers_and_admins() -> None:
    assert access.report_team(ADMIN) is None
    assert access.report_team(MANAGER) == MANAGER.user_id
    with pytest.raises(Forbidden):
        access.report_team(LEARNER)


def test_catalog_states_by_role() -> None:
    assert access.catalog_states(ADMIN, None) is None
    assert access.catalog_states(ADMIN, CertificationState.DRAFT) == [CertificationState.DRAFT]
    assert access.catalog_states(LEARNER, CertificationState.DRAFT) == []
    assert access.catalog_states(LEARNER, None) == [CertificationState.PUBLISHED]


async def test_visible_learners_follow_the_roles(make: Factory) -> None:
    admin = await make.admin()
    manager = await make.user(Role.MANAGER)
    report = await make.learner(manager=manager)
    stranger = await make.learner()
    everyone = [report.user_id, stranger.user_id, 999_999]
    assert all(i is not None for i in everyone)
    ids = [i for i in everyone if i is not None]
    assert await access.visible_learners(admin, ids) == set(ids)  # a missing one included
    assert await access.visible_learners(manager, ids) == {report.user_id}
    assert await access.visible_learners(report, ids) == {report.user_id}
