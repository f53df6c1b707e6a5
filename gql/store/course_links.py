"""Each certification's course links, kept by the process while their version holds.

Every enrollment list derives its statuses from the links of its certifications, so each
request read them again: for a learner's 20 certifications about 145 rows with their courses,
the largest share of its reading. They change only when an admin edits a certification's
courses or one of those courses. The database's triggers (migration 0007) then give the
certification a new version in the same transaction: a random number, not a counter, so a
version does not come back after a rollback or a restored backup (docs/performance.md,
"Known limits", gives the odds). A read asks first for the versions of
the certifications it wants (one small statement) when the process keeps links for all of
them; if every version matches, the kept links answer. Otherwise one statement reads the links
with their versions, and the process keeps what it read.

Whoever writes the links (this process, another worker or instance, an older release, an
admin's SQL), the triggers give the version. A schema without them (made by
`generate_schemas` rather than the migrations) has no versions, and nothing is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from tortoise.queryset import ValuesListQuery

from gql.store.models import Certification, CourseLinksVersion
from gql.store.prepared import prepared_values
from gql.store.records import CourseLinkRecord, CourseRecord

__all__ = ["KeptLinks", "course_links", "kept_links"]

# Certifications whose links a process keeps (the least recently read go first): at a few
# courses each, a few MB at most.
MAX_KEPT = 4096

Links = tuple[CourseLinkRecord, ...]


class KeptLinks:
    """Links by certification, each with the version it was read at; bounded, least recently
    read dropped first."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self._kept: OrderedDict[int, tuple[int, Links]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def holds_all(self, certification_ids: list[int]) -> bool:
        kept = self._kept
        return all(cid in kept for cid in certification_ids)

    def get(self, certification_id: int, version: int | None) -> Links | None:
        """The links kept at `version`, else None."""
        found = self._kept.get(certification_id)
        if found is None or version is None or found[0] != version:
            return None
        self._kept.move_to_end(certification_id)
        return found[1]

    def keep(self, certification_id: int, version: int, links: Links) -> None:
        self._kept[certification_id] = (version, links)
        self._kept.move_to_end(certification_id)
        while len(self._kept) > self.max_kept:
            self._kept.popitem(last=False)

    def clear(self) -> None:
        self._kept.clear()


# The process's: the store's database is the process's too (Tortoise's connections); emptied
# when a database is opened or closed (gql.store.db).
kept_links = KeptLinks()


def _version_row(certification_id: int, version: int) -> tuple[int, int]:
    return certification_id, version


@prepared_values(_version_row)
def _versions(certification_ids: list[int]) -> ValuesListQuery[Any]:
    return CourseLinksVersion.filter(certification_id__in=certification_ids).values_list(
        "certification_id", "version"
    )


def _link_row(
    certification_id: int, version: int | None, *link: Any
) -> tuple[int, int | None, CourseLinkRecord | None]:
    if link[0] is None:  # a certification without links: its one row, the link's columns null
        return certification_id, version, None
    return (
        certification_id,
        version,
        CourseLinkRecord(
            link[0], certification_id, link[1], link[2], link[3], CourseRecord(*link[4:10])
        ),
    )


@prepared_values(_link_row)
def _links_with_versions(certification_ids: list[int]) -> ValuesListQuery[Any]:
    # from the certification side, so that one without links still says its version
    return (
        Certification.filter(id__in=certification_ids)
        .order_by("id", "course_links__position", "course_links__id")
        .values_list(
            "id",
            "links_version__version",
            "course_links__id",
            "course_links__course_id",
            "course_links__mandatory",
            "course_links__position",
            "course_links__course__id",
            "course_links__course__name",
            "course_links__course__description",
            "course_links__course__duration_minutes",
            "course_links__course__published_at",
            "course_links__course__retired_at",
        )
    )


async def course_links(
    certification_ids: list[int], kept: KeptLinks = kept_links
) -> dict[int, list[CourseLinkRecord]]:
    """The links of these certifications with their courses, in position order (then id), by
    certification; one without links is absent. One statement: the versions when all are
    kept, else the links (both when a kept one has changed)."""
    ids = sorted(set(certification_ids))
    if not ids:
        return {}
    if kept.holds_all(ids):
        versions = dict(await _versions(ids))
        found: dict[int, list[CourseLinkRecord]] = {}
        for cid in ids:
            links = kept.get(cid, versions.get(cid))
            if links is None:
                break
            if links:
                found[cid] = list(links)  # the caller's own list: the kept one is shared
        else:
            return found
    read: dict[int, list[CourseLinkRecord]] = {}
    versions_read: dict[int, int | None] = {}
    for cid, version, link in await _links_with_versions(ids):
        versions_read[cid] = version
        if link is not None:
            read.setdefault(cid, []).append(link)
    for cid, version in versions_read.items():
        if version is not None:
            kept.keep(cid, version, tuple(read.get(cid, ())))
    return read
