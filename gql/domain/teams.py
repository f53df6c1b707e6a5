"""A manager's team: the direct reports of many managers, one keyset page each, in a fixed
number of statements (User.reports under a list of users costs what it does under one).

What a viewer sees of someone's reports is what they may see of users at all
(gql.domain.access.user_scope): admins everyone, a manager their own direct reports, and
anyone themselves and their own manager. Deactivated people are left out unless asked
(`active`: True, the default, only active people; False only deactivated ones; None both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gql.domain.access import Actor, user_scope_sql
from gql.domain.pages import FIRST_PAGE, Page, PageRequest
from gql.store import search as store
from gql.store.records import UserRecord

CURSOR_KIND = "reports"


async def list_reports(
    actor: Actor,
    manager_ids: Sequence[int],
    *,
    active: bool | None = True,
    paging: PageRequest = FIRST_PAGE,
) -> dict[int, Page[UserRecord]]:
    """Each manager's direct reports the actor may see, by name then id (a page per manager:
    the cursor applies to each). Three statements for any number of managers."""
    window = paging.window(CURSOR_KIND, [key.type for key in store.REPORT_KEYS])
    ids = list(dict.fromkeys(manager_ids))
    rows, totals = await store.report_pages(
        manager_ids=ids,
        scope=user_scope_sql(actor),
        active=active,
        after=window.cursor,
        limit=window.limit,
        keys=window.order(store.REPORT_KEYS),
    )
    return {
        manager_id: window.page(
            rows.get(manager_id, []),
            totals.get(manager_id, 0),
            item=lambda row: row[0],
            key=lambda row: row[1],
        )
        for manager_id in ids
    }


@dataclass(frozen=True, slots=True)
class ReportList:
    """One user's `reports(...)`: the manager and the list's arguments (a DataLoader key)."""

    manager_id: int
    active: bool | None = True
    paging: PageRequest = FIRST_PAGE


async def load_report_lists(
    actor: Actor, lists: Sequence[ReportList]
) -> list[Page[UserRecord] | BaseException]:
    """The pages of these lists, one listing per distinct set of arguments; an error (a bad
    cursor, say) is answered to the lists sharing its arguments only (a DataLoader batch)."""
    groups: dict[tuple[bool | None, PageRequest], list[ReportList]] = {}
    for item in lists:
        groups.setdefault((item.active, item.paging), []).append(item)
    found: dict[ReportList, Page[UserRecord] | BaseException] = {}
    for (active, paging), group in groups.items():
        try:
            pages = await list_reports(
                actor, [item.manager_id for item in group], active=active, paging=paging
            )
        except Exception as exc:  # raised by each resolver of the group
            found.update((item, exc) for item in group)
        else:
            found.update((item, pages[item.manager_id]) for item in group)
    return [found[item] for item in lists]
