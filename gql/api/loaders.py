"""Per-request DataLoaders, one batched domain call per relation however long the page: made
anew for every request and before every mutation; an object the viewer may not see loads as
None (the domain applies the access rules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from gql.domain import courses, enrollments, status, teams, users
from gql.domain.access import Actor
from gql.domain.enums import CertificationKind
from gql.domain.external_ids import Kind, external_ids_for
from gql.domain.pages import FIRST_PAGE, CertificationSort, Page, PageRequest
from gql.domain.records import (
    CourseLinkRecord,
    CourseRecord,
    EnrollmentRecord,
    ProgressRecord,
    UserRecord,
)
from gql.domain.status import EnrollmentStatus, EnrollmentView
from gql.plugins import PluginHost

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _by_key(
    fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
) -> Callable[[list[K]], Awaitable[list[V | None]]]:
    """Adapt a domain `*_by_ids` call (a dict of what is visible) to a loader batch function."""

    async def load(keys: list[K]) -> list[V | None]:
        found = await fetch(list(keys))
        return [found.get(key) for key in keys]

    return load


@dataclass(frozen=True, slots=True)
class EnrollmentList:
    """One user's `certifications(...)`: the learner and the list's arguments."""

    learner_id: int
    sort: CertificationSort = CertificationSort.RELEVANCE
    pending: bool = False
    kind: CertificationKind | None = None
    paging: PageRequest = FIRST_PAGE
    status: tuple[EnrollmentStatus, ...] | None = None
    overdue: bool | None = None

    def arguments(self) -> tuple[object, ...]:
        return (
            self.sort,
            self.pending,
            self.kind,
            self.paging,
            self.status,
            self.overdue,
        )


async def _released(keys: list[Any]) -> list[Any]:
    raise RuntimeError("a DataLoader was used after its request ended")


class Loaders:
    def __init__(
        self,
        actor: Actor,
        *,
        plugins: PluginHost | None = None,
    ) -> None:
        self.actor = actor
        self.plugins = plugins
        self.users: DataLoader[int, UserRecord | None] = DataLoader(
            _by_key(lambda ids: users.users_by_ids(actor, ids))
        )
        self.courses: DataLoader[int, CourseRecord | None] = DataLoader(
            _by_key(lambda ids: courses.courses_by_ids(actor, ids))
        )
        # (type name, pk) of an object already shown -> its externalId (docs/api.md)
        self.external_ids: DataLoader[tuple[Kind, int], str | None] = DataLoader(external_ids_for)
        self.enrollments: DataLoader[int, EnrollmentRecord | None] = DataLoader(
            _by_key(lambda ids: enrollments.enrollments_by_ids(actor, ids))
        )
        self.course_links: DataLoader[int, list[CourseLinkRecord]] = DataLoader(self._course_links)
        self.viewer_enrollments: DataLoader[int, EnrollmentRecord | None] = DataLoader(
            _by_key(lambda ids: enrollments.viewer_enrollments(actor, ids))
        )
        self.viewer_progress: DataLoader[int, ProgressRecord | None] = DataLoader(
            self._viewer_progress
        )
        # the viewer's own, ended ones too (Certification.viewerCan: gql.api.capabilities)
        self.viewer_any_enrollments: DataLoader[int, EnrollmentRecord | None] = DataLoader(
            _by_key(lambda ids: enrollments.viewer_enrollments(actor, ids, include_ended=True))
        )
        # keyed by enrollment id; the records to describe wait in `_to_describe`
        self._to_describe: dict[int, EnrollmentRecord] = {}
        self.enrollment_views: DataLoader[int, EnrollmentView] = DataLoader(self._enrollment_views)
        self.learner_enrollments: DataLoader[EnrollmentList, Page[EnrollmentRecord]] = DataLoader(
            self._learner_enrollments
        )
        self.reports: DataLoader[teams.ReportList, Page[UserRecord]] = DataLoader(
            lambda lists: teams.load_report_lists(actor, lists)
        )

    async def _course_links(self, certification_ids: list[int]) -> list[list[CourseLinkRecord]]:
        found = await status.course_links(list(certification_ids))
        return [found.get(cid, []) for cid in certification_ids]

    async def _viewer_progress(self, course_ids: list[int]) -> list[ProgressRecord | None]:
        if self.actor.user_id is None:
            return [None] * len(course_ids)
        found = await courses.progress_for(self.actor.user_id, list(course_ids))
        return [found.get(cid) for cid in course_ids]

    async def _enrollment_views(self, ids: list[int]) -> list[EnrollmentView]:
        rows = [self._to_describe.pop(i) for i in ids]
        views = await status.describe_enrollments(rows, self.plugins)
        self.prime_views(views.values())
        return [views[i] for i in ids]

    async def _learner_enrollments(
        self, lists: list[EnrollmentList]
    ) -> list[Page[EnrollmentRecord] | BaseException]:
        """One listing per distinct set of arguments, for all the learners asking with it; an
        error (a bad cursor, say) fails only the lists that share its arguments."""
        groups: dict[tuple[object, ...], list[EnrollmentList]] = {}
        for item in lists:
            groups.setdefault(item.arguments(), []).append(item)
        found: dict[EnrollmentList, Page[EnrollmentRecord] | BaseException] = {}
        for group in groups.values():
            sample = group[0]
            try:
                pages = await enrollments.list_learners_enrollments(
                    self.actor,
                    [item.learner_id for item in group],
                    sort=sample.sort,
                    pending=sample.pending,
                    kind=sample.kind,
                    status=sample.status,
                    overdue=sample.overdue,
                    paging=sample.paging,
                )
            except Exception as exc:  # handed to each resolver of the group, which raises it
                found.update((item, exc) for item in group)
            else:
                found.update((item, pages[item.learner_id]) for item in group)
        return [found[item] for item in lists]

    def release(self, *, end: bool = False) -> None:
        """Drop everything loaded: the loaders' functions refer back to this object, so what
        they cached would otherwise wait for the cyclic garbage collector (docs/performance.md,
        "The tail"). At the request's `end` the functions go too, which breaks that cycle;
        a load after that fails."""
        for loader in vars(self).values():
            if isinstance(loader, DataLoader):
                loader.clear_all()
                loader.batch = None  # its tasks hold the last batch's results
                if end:
                    loader.load_fn = _released
        self._to_describe.clear()

    def prime_views(self, views: Iterable[EnrollmentView]) -> None:
        """Remember read models built elsewhere (a write's own evaluation, say)."""
        for view in views:
            self.enrollment_views.prime(view.enrollment.id, view)
            # The read model already holds each certification's course links: later
            # `Certification.courses` of these certifications cost no query.
            self.course_links.prime(view.certification.id, view.links)

    async def view_of(self, row: EnrollmentRecord) -> EnrollmentView:
        self._to_describe.setdefault(row.id, row)
        return await self.enrollment_views.load(row.id)

    async def views_of(self, rows: Sequence[EnrollmentRecord]) -> list[EnrollmentView]:
        for row in rows:
            self._to_describe.setdefault(row.id, row)
        return await self.enrollment_views.load_many([row.id for row in rows])
