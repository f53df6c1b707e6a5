"""Who, not just how many: the enrollments an actor may see that a filter selects
(Query.enrollments, one keyset page; the enrollment export, every row in keyset batches),
and whether an enrollment was completed after its due date.

Scope: learners see their own enrollments, managers their own and their direct reports',
admins everyone's (gql.domain.access.learner_scope). A filter naming a learner or manager
outside it selects nothing, exactly as one naming nobody does.

Defaults: ended (unassigned) enrollments are left out unless `include_ended`; enrollments
of deactivated learners are left out unless `learner_active` is False (only theirs) or None
(everyone's). Statuses and overdue are computed in SQL as the certification report counts
them (docs/domain.md, "Enrollment status").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from gql import clock
from gql.domain.access import Actor, learner_scope_sql
from gql.domain.errors import InvalidInput, t
from gql.domain.pages import FIRST_PAGE, Page, PageRequest
from gql.domain.status import EnrollmentStatus, EnrollmentView
from gql.store import search as store
from gql.store.records import EnrollmentRecord

CURSOR_KIND = "enrollment-search"
# What an export reads per statement (iter_enrollments).
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 5000


@dataclass(frozen=True, slots=True)
class EnrollmentFilter:
    """Query.enrollments' filter; every condition given must hold (None: no condition).

    `due_before` is exclusive and `due_after` inclusive, so consecutive ranges tile; either
    one leaves out enrollments without a due date.
    """

    certification_id: int | None = None
    learner_id: int | None = None
    manager_id: int | None = None  # the learner's manager: that manager's direct reports
    status: tuple[EnrollmentStatus, ...] | None = None  # any of these
    overdue: bool | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    include_ended: bool = False
    learner_active: bool | None = True


def check_filter(filter: EnrollmentFilter, field: Sequence[str] = ("filter",)) -> None:
    """InvalidInput naming the offending field (under `field`) for a filter that cannot mean
    what was asked: an empty status list, a naive datetime, dueAfter after dueBefore."""
    path = list(field)
    if filter.status is not None and not filter.status:
        raise InvalidInput(
            t("status must name at least one EnrollmentStatus (leave it out for any status)"),
            field=[*path, "status"],
        )
    for name, value in (("dueBefore", filter.due_before), ("dueAfter", filter.due_after)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(t("{name} needs a UTC offset", name=name), field=[*path, name])
    if (
        filter.due_before is not None
        and filter.due_after is not None
        and filter.due_after > filter.due_before
    ):
        raise InvalidInput(
            t("dueAfter must not be after dueBefore (dueAfter <= dueAt < dueBefore)"),
            field=[*path, "dueAfter"],
        )


def _search(actor: Actor, filter: EnrollmentFilter) -> store.EnrollmentSearch:
    return store.EnrollmentSearch(
        scope=learner_scope_sql(actor),
        certification_id=filter.certification_id,
        learner_id=filter.learner_id,
        manager_id=filter.manager_id,
        statuses=None if filter.status is None else tuple(str(s) for s in filter.status),
        overdue=filter.overdue,
        due_before=filter.due_before,
        due_after=filter.due_after,
        include_ended=filter.include_ended,
        learner_active=filter.learner_active,
    )


async def search_enrollments(
    actor: Actor,
    filter: EnrollmentFilter | None = None,
    *,
    paging: PageRequest = FIRST_PAGE,
) -> Page[EnrollmentRecord]:
    """One keyset page (enrollment id order, oldest first) of the enrollments the actor may
    see that `filter` selects, each with its certification. Two statements (the count and
    the page) whatever the page size."""
    filter = filter or EnrollmentFilter()
    check_filter(filter)
    window = paging.window(CURSOR_KIND, [key.type for key in store.SEARCH_KEYS])
    search = _search(actor, filter)
    now = clock.now()
    total = await store.count_enrollments(search, now)
    keys = window.order(store.SEARCH_KEYS)
    rows = await store.enrollments(search, now, window.cursor, window.limit, keys)
    return window.page(rows, total, item=lambda row: row, key=lambda row: [row.id])


async def iter_enrollments(
    actor: Actor,
    filter: EnrollmentFilter | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> AsyncIterator[list[EnrollmentRecord]]:
    """Every enrollment search_enrollments would list, in batches of up to `batch_size` in id
    order: one statement per batch, nothing held between batches but the last id, so each
    enrollment comes at most once however the table changes meanwhile. Statuses are computed
    against one `now`, taken when the first batch is read."""
    filter = filter or EnrollmentFilter()
    check_filter(filter)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(
            t("batch_size must be between 1 and {MAX_BATCH_SIZE}", MAX_BATCH_SIZE=MAX_BATCH_SIZE)
        )
    search = _search(actor, filter)
    now = clock.now()
    cursor: list[int] | None = None
    while True:
        rows = await store.enrollments(search, now, cursor, batch_size)
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        cursor = [rows[-1].id]


def completed_late(view: EnrollmentView) -> bool | None:
    """Whether the award in force was earned after its deadline; None when there is no award
    in force (not COMPLETED). The deadline of a first award is the enrollment's `due_at`
    (none: never late); a renewal's is the previous award's expiry, or `due_at` when an
    admin set a later one (docs/recurrence.md, "Due dates and overdue")."""
    if view.status != EnrollmentStatus.COMPLETED or not view.awards:
        return None
    awards = sorted(view.awards, key=lambda a: a.cycle)
    award = awards[-1]
    due = view.enrollment.due_at
    if len(awards) == 1:
        return due is not None and award.awarded_at > due
    previous = awards[-2].expires_at
    deadlines = [d for d in (previous, due) if d is not None]
    return bool(deadlines) and award.awarded_at > max(deadlines)
