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
from gql.domain.pages import DEFAULT_MAX_PAGE_SIZE, Page, check_first, decode_cursor, encode_cursor
from gql.store import search as store
from gql.store.records import UserRecord

CURSOR_KIND = "reports"


async def list_reports(
    actor: Actor,
    manager_ids: Sequence[int],
    *,
    active: bool | None = True,
    first: int | None = 20,
    after: str | None = None,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> dict[int, Page[UserRecord]]:
    """Each manager's direct reports the actor may see, by name then id (a page per manager:
    `after` applies to each). Three statements for any number of managers."""
    size = check_first(first, max_page_size)
    cursor = decode_cursor(after, CURSOR_KIND, [key.type for key in store.REPORT_KEYS])
    ids = list(dict.fromkeys(manager_ids))
    rows, totals = await store.report_pages(
        manager_ids=ids, scope=user_scope_sql(actor), active=active, after=cursor, limit=size + 1
    )
    pages: dict[int, Page[UserRecord]] = {}
    for manager_id in ids:
        found = rows.get(manager_id, [])
        shown = found[:size]
        pages[manager_id] = Page(
            [record for record, _ in shown],
            [encode_cursor(CURSOR_KIND, keys) for _, keys in shown],
            len(found) > size,
            cursor is not None,
            totals.get(manager_id, 0),
        )
    return pages


@dataclass(frozen=True, slots=True)
class ReportList:
    """One user's `reports(...)`: the manager and the list's arguments (a DataLoader key)."""

    manager_id: int
    active: bool | None = True
    first: int | None = 20
    after: str | None = None


async def load_report_lists(
    actor: Actor, lists: Sequence[ReportList], max_page_size: int = DEFAULT_MAX_PAGE_SIZE
) -> list[Page[UserRecord] | BaseException]:
    """The pages of these lists, one listing per distinct set of arguments; an error (a bad
    cursor, say) is answered to the lists sharing its arguments only (a DataLoader batch)."""
    groups: dict[tuple[bool | None, int | None, str | None], list[ReportList]] = {}
    for item in lists:
        groups.setdefault((item.active, item.first, item.after), []).append(item)
    found: dict[ReportList, Page[UserRecord] | BaseException] = {}
    for (active, first, after), group in groups.items():
        try:
            pages = await list_reports(
                actor,
                [item.manager_id for item in group],
                active=active,
                first=first,
                after=after,
                max_page_size=max_page_size,
            )
        except Exception as exc:  # raised by each resolver of the group
            found.update((item, exc) for item in group)
        else:
            found.update((item, pages[item.manager_id]) for item in group)
    return [found[item] for item in lists]
