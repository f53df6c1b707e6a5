"""Certifications: definition, courses, publication, the catalog and the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

from gql import clock
from gql.domain.access import (
    Actor,
    catalog_states,
    learner_scope,
    may_see_certification,
    publish_refusal,
    report_team,
    require_admin,
    retire_refusal,
)
from gql.domain.changes import UNCHANGED, Unchanged, given, or_current
from gql.domain.errors import (
    DomainError,
    DomainErrors,
    InvalidInput,
    NotAllowed,
    NotFound,
    PolicyConfigInvalid,
    PolicyUnknown,
    t,
)
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.external_ids import (
    check_free,
    clean_external_id,
    conflicts_named,
    external_id_change,
    external_id_key,
)
from gql.domain.pages import FIRST_PAGE, CertificationSort, Page, PageRequest, check_search
from gql.domain.status import EnrollmentStatus, course_links
from gql.domain.unit import Unit, unit_of_work
from gql.plugins import PluginHost, PolicyConfigError, get_plugin_host
from gql.store import reads, sql
from gql.store.models import Certification, CertificationCourse, Course, Enrollment
from gql.store.records import CertificationRecord, record_of
from gql.vocabulary import CertificationKind, CertificationState, CertificationType

DEFAULT_POLICY = {
    CertificationKind.INTERNAL: "mandatory-subset",
    CertificationKind.EXTERNAL: "external-evidence",
}
DEFAULT_WINDOW_DAYS = 30
# The default of Settings.organisation_name; the API passes the configured one.
DEFAULT_ORGANISATION = "Our organisation"
MAX_VALIDITY_MONTHS = 600
MAX_DAYS = 3650

__all__ = ["course_links"]


@dataclass(slots=True)
class CertificationData:
    name: str
    kind: CertificationKind
    type: CertificationType
    overview: str | None = None
    issuer: str | None = None
    validity_months: int | None = None
    recertification_window_days: int | None = None
    days_to_complete: int | None = None
    policy: str | None = None
    policy_config: dict[str, Any] | None = None
    badge_name: str | None = None
    external_id: str | None = None  # create only (gql.domain.external_ids)


@dataclass(slots=True)
class CourseLink:
    course_id: int
    mandatory: bool
    position: int | None = None


def _validated(
    data: CertificationData, organisation: str, plugins: PluginHost | None
) -> dict[str, Any]:
    def bad(message: str, name: str) -> InvalidInput:
        return InvalidInput(message, field=["input", name])

    name = " ".join(data.name.split())
    if not name or len(name) > 300:
        raise bad("name must be 1 to 300 characters", "name")
    kind, type_ = CertificationKind(data.kind), CertificationType(data.type)
    if type_ == CertificationType.PERPETUAL and data.validity_months is not None:
        raise bad(
            "a PERPETUAL certification never expires: leave validityMonths empty", "validityMonths"
        )
    if type_ == CertificationType.RECURRING:
        if data.validity_months is None:
            raise bad("a RECURRING certification needs validityMonths", "validityMonths")
        if not 1 <= data.validity_months <= MAX_VALIDITY_MONTHS:
            raise bad(
                f"validityMonths must be between 1 and {MAX_VALIDITY_MONTHS}", "validityMonths"
            )
    window = (
        DEFAULT_WINDOW_DAYS
        if data.recertification_window_days is None
        else data.recertification_window_days
    )
    if not 0 <= window <= MAX_DAYS:
        raise bad(
            f"recertificationWindowDays must be between 0 and {MAX_DAYS}",
            "recertificationWindowDays",
        )
    if (
        type_ == CertificationType.RECURRING
        and data.validity_months
        and window >= data.validity_months * 28
    ):
        raise bad(
            "recertificationWindowDays must be shorter than the validity period",
            "recertificationWindowDays",
        )
    if data.days_to_complete is not None and not 1 <= data.days_to_complete <= MAX_DAYS:
        raise bad(f"daysToComplete must be between 1 and {MAX_DAYS}", "daysToComplete")
    issuer = " ".join((data.issuer or "").split())
    if not issuer:
        if kind == CertificationKind.EXTERNAL:
            raise bad("an EXTERNAL certification needs its issuer", "issuer")
        issuer = organisation
    policy = data.policy or DEFAULT_POLICY[kind]
    host = plugins or get_plugin_host()
    try:
        config = host.validate_config(policy, data.policy_config)
    except KeyError:
        known = ", ".join(sorted(host.policies)) or "none"
        raise PolicyUnknown(
            t(
                "no policy named {policy!r} is installed (installed: {known})",
                policy=policy,
                known=known,
            ),
            field=["input", "policy"],
        ) from None
    except PolicyConfigError as exc:
        raise PolicyConfigInvalid(
            t("{policy}: {exc}", policy=policy, exc=exc), field=["input", "policyConfig"]
        ) from None
    return {
        "name": name,
        "overview": data.overview or "",
        "kind": kind,
        "type": type_,
        "issuer": issuer,
        "validity_months": data.validity_months,
        "recertification_window_days": window,
        "days_to_complete": data.days_to_complete,
        "policy_name": policy,
        "policy_config": config,
        "badge_name": data.badge_name or None,
    }


def _snapshot(cert: Certification) -> dict[str, Any]:
    return {
        "name": cert.name,
        "kind": str(cert.kind),
        "type": str(cert.type),
        "validityMonths": cert.validity_months,
        "recertificationWindowDays": cert.recertification_window_days,
        "daysToComplete": cert.days_to_complete,
        "state": str(cert.state),
        "policy": cert.policy_name,
        "policyConfig": cert.policy_config,
    }


async def _reevaluate_all(certification_id: int, unit: Unit) -> None:
    """A change of rules or courses can complete (or reopen) every enrollment of it (not an
    ended one: it is re-evaluated when assigned again)."""
    enrollments = await reads.enrollments(certification_id=certification_id, ended_at=None)
    await lock_learners([e.learner_id for e in enrollments])
    for start in range(0, len(enrollments), 500):
        await evaluate_enrollments(enrollments[start : start + 500], unit)


async def create_certification(
    actor: Actor,
    data: CertificationData,
    *,
    organisation: str = DEFAULT_ORGANISATION,
    plugins: PluginHost | None = None,
) -> CertificationRecord:
    """A DRAFT certification; `organisation` issues an INTERNAL one that names no issuer."""
    await require_admin(actor, "createCertification", "Certification")
    values = _validated(data, organisation, plugins)
    external_id = clean_external_id(data.external_id, ["input", "externalId"])
    keys = external_id_key("Certification", external_id, ["input", "externalId"])
    async with conflicts_named(keys), unit_of_work(actor, plugins) as unit:
        await check_free(keys)
        cert = await Certification.create(
            **values,
            state=CertificationState.DRAFT,
            created_at=unit.now,
            updated_at=unit.now,
            external_id=external_id,
        )
        after = _snapshot(cert)
        if external_id is not None:
            after["externalId"] = external_id
        await unit.audit("createCertification", "Certification", cert.id, after=after)
    return record_of(CertificationRecord, cert)


async def _get_for_update(certification_id: int) -> Certification:
    cert = await Certification.get_or_none(id=certification_id)
    if cert is None:
        raise NotFound(t("no such certification"), field=["id"])
    return cert


@dataclass(slots=True)
class CertificationChanges:
    """What an update names (docs/domain.md, "Partial updates"): an UNCHANGED field stays as it
    is; None clears a nullable one (to its default where it has one: the kind's policy, the
    policy's default config, a 30-day window, the organisation as an INTERNAL issuer)."""

    name: str | Unchanged | None = UNCHANGED
    kind: CertificationKind | Unchanged | None = UNCHANGED
    type: CertificationType | Unchanged | None = UNCHANGED
    overview: str | Unchanged | None = UNCHANGED
    issuer: str | Unchanged | None = UNCHANGED
    validity_months: int | Unchanged | None = UNCHANGED
    recertification_window_days: int | Unchanged | None = UNCHANGED
    days_to_complete: int | Unchanged | None = UNCHANGED
    policy: str | Unchanged | None = UNCHANGED
    policy_config: dict[str, Any] | Unchanged | None = UNCHANGED
    badge_name: str | Unchanged | None = UNCHANGED
    external_id: str | Unchanged | None = UNCHANGED  # gql.domain.external_ids

    @classmethod
    def replacing(cls, data: CertificationData) -> CertificationChanges:
        """Every field named: the definition becomes `data` (None: the default); the
        externalId stays (CertificationData's is for creating)."""
        return cls(
            name=data.name,
            kind=data.kind,
            type=data.type,
            overview=data.overview,
            issuer=data.issuer,
            validity_months=data.validity_months,
            recertification_window_days=data.recertification_window_days,
            days_to_complete=data.days_to_complete,
            policy=data.policy,
            policy_config=data.policy_config,
            badge_name=data.badge_name,
        )


def _merged(cert: Certification, changes: CertificationChanges) -> CertificationData:
    """The definition after the changes, for _validated. The policy changes only when named;
    its config is kept unless named, or unless the policy named is another one."""
    for name in ("name", "kind", "type"):
        if getattr(changes, name) is None:
            raise InvalidInput(
                t("{name} cannot be cleared", name=_camel(name)), field=["input", _camel(name)]
            )
    policy = cert.policy_name if not given(changes.policy) else changes.policy
    kind = CertificationKind(cast(str, or_current(changes.kind, cert.kind)))
    same_policy = (policy or DEFAULT_POLICY[kind]) == cert.policy_name
    if given(changes.policy_config):
        config = changes.policy_config
    else:
        config = cert.policy_config if same_policy else None
    return CertificationData(
        name=cast(str, or_current(changes.name, cert.name)),
        kind=kind,
        type=CertificationType(cast(str, or_current(changes.type, cert.type))),
        overview=or_current(changes.overview, cert.overview),
        issuer=or_current(changes.issuer, cert.issuer),
        validity_months=or_current(changes.validity_months, cert.validity_months),
        recertification_window_days=or_current(
            changes.recertification_window_days, cert.recertification_window_days
        ),
        days_to_complete=or_current(changes.days_to_complete, cert.days_to_complete),
        policy=cast(str | None, policy),
        policy_config=cast(dict[str, Any] | None, config),
        badge_name=or_current(changes.badge_name, cert.badge_name),
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_RULES = (
    "kind",
    "type",
    "validity_months",
    "recertification_window_days",
    "policy_name",
    "policy_config",
)


async def update_certification(
    actor: Actor,
    certification_id: int,
    changes: CertificationChanges | CertificationData,
    *,
    organisation: str = DEFAULT_ORGANISATION,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> CertificationRecord:
    """Change only the fields `changes` names (a CertificationData names every one). A change
    of the rules re-evaluates every enrollment; an update that changes nothing writes
    nothing (no audit row)."""
    await require_admin(actor, "updateCertification", "Certification", certification_id)
    if isinstance(changes, CertificationData):
        changes = CertificationChanges.replacing(changes)
    external_id, keys = changes.external_id, []
    if not isinstance(external_id, Unchanged):
        external_id = clean_external_id(external_id, ["input", "externalId"])
        keys = external_id_key(
            "Certification", external_id, ["input", "externalId"], own_id=certification_id
        )
    async with (
        conflicts_named(keys),
        unit_of_work(actor, plugins, time_zone=time_zone) as unit,
    ):
        cert = await _get_for_update(certification_id)
        values = _validated(_merged(cert, changes), organisation, plugins)
        changed = {key for key, value in values.items() if getattr(cert, key) != value}
        moved = None
        if not isinstance(external_id, Unchanged):
            moved = await external_id_change(
                "Certification", cert.id, cert.external_id, external_id, ["input", "externalId"]
            )
        if not changed and moved is None:
            return record_of(CertificationRecord, cert)
        before = _snapshot(cert)
        cert.update_from_dict({**values, "updated_at": unit.now})
        after = _snapshot(cert)
        if moved is not None:
            cert.external_id = moved[1]
            before["externalId"], after["externalId"] = moved
        await cert.save()
        await unit.audit(
            "updateCertification", "Certification", cert.id, before=before, after=after
        )
        if changed & set(_RULES):
            await _reevaluate_all(cert.id, unit)
    return record_of(CertificationRecord, cert)


async def set_certification_courses(
    actor: Actor,
    certification_id: int,
    links: list[CourseLink],
    *,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> CertificationRecord:
    await require_admin(actor, "setCertificationCourses", "Certification", certification_id)
    seen: set[int] = set()
    for i, link in enumerate(links):
        if link.course_id in seen:
            raise InvalidInput(
                t("a course may be listed once"), field=["courses", str(i), "courseId"]
            )
        seen.add(link.course_id)
        if link.position is not None and not 0 <= link.position <= 10_000:
            raise InvalidInput(
                t("position must be between 0 and 10000"), field=["courses", str(i), "position"]
            )
    async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
        cert = await _get_for_update(certification_id)
        # locked (PostgreSQL), in id order: a course being deleted is then gone or stays
        existing = {
            c.id: c
            for c in await Course.filter(id__in=list(seen))
            .order_by("id")
            .select_for_update(no_key=True)
        }
        linked = await CertificationCourse.filter(certification_id=cert.id).order_by("position")
        had = {c.course_id for c in linked}
        problems: list[DomainError] = []
        for i, link in enumerate(links):
            course = existing.get(link.course_id)
            if course is None:
                problems.append(
                    NotFound(t("no such course"), field=["courses", str(i), "courseId"])
                )
            elif course.retired_at is not None and link.course_id not in had:
                problems.append(
                    NotAllowed(
                        t(
                            "{name!r} is retired: it takes no new certifications (those "
                            "that have it keep it)",
                            name=course.name,
                        ),
                        field=["courses", str(i), "courseId"],
                    )
                )
        if problems:
            raise problems[0] if len(problems) == 1 else DomainErrors(problems)
        before = [
            {"courseId": c.course_id, "mandatory": c.mandatory, "position": c.position}
            for c in linked
        ]
        await CertificationCourse.filter(certification_id=cert.id).delete()
        # positions: as given, else the list order; ties keep the list order
        ordered = sorted(
            enumerate(links),
            key=lambda pair: (
                pair[1].position if pair[1].position is not None else pair[0],
                pair[0],
            ),
        )
        rows = [
            CertificationCourse(
                certification_id=cert.id,
                course_id=link.course_id,
                mandatory=link.mandatory,
                position=index,
            )
            for index, (_, link) in enumerate(ordered)
        ]
        await CertificationCourse.bulk_create(rows)
        cert.updated_at = unit.now
        await cert.save(update_fields=["updated_at"])
        await unit.audit(
            "setCertificationCourses",
            "Certification",
            cert.id,
            before={"courses": before},
            after={
                "courses": [
                    {"courseId": r.course_id, "mandatory": r.mandatory, "position": r.position}
                    for r in rows
                ]
            },
        )
        await _reevaluate_all(cert.id, unit)
    return record_of(CertificationRecord, cert)


async def publish_certification(
    actor: Actor, certification_id: int, *, plugins: PluginHost | None = None
) -> CertificationRecord:
    await require_admin(actor, "publishCertification", "Certification", certification_id)
    async with unit_of_work(actor, plugins) as unit:
        cert = await _get_for_update(certification_id)
        has_courses = await CertificationCourse.filter(certification_id=cert.id).exists()
        refused = publish_refusal(record_of(CertificationRecord, cert), has_courses)
        if refused is not None:
            raise refused
        cert.state, cert.published_at, cert.updated_at = (
            CertificationState.PUBLISHED,
            unit.now,
            unit.now,
        )
        await cert.save(update_fields=["state", "published_at", "updated_at"])
        await unit.audit(
            "publishCertification",
            "Certification",
            cert.id,
            before={"state": "DRAFT"},
            after={"state": "PUBLISHED"},
        )
    return record_of(CertificationRecord, cert)


async def retire_certification(
    actor: Actor, certification_id: int, *, plugins: PluginHost | None = None
) -> CertificationRecord:
    await require_admin(actor, "retireCertification", "Certification", certification_id)
    async with unit_of_work(actor, plugins) as unit:
        cert = await _get_for_update(certification_id)
        refused = retire_refusal(record_of(CertificationRecord, cert))
        if refused is not None:
            raise refused
        cert.state, cert.updated_at = CertificationState.RETIRED, unit.now
        await cert.save(update_fields=["state", "updated_at"])
        await unit.audit(
            "retireCertification",
            "Certification",
            cert.id,
            before={"state": "PUBLISHED"},
            after={"state": "RETIRED"},
        )
    return record_of(CertificationRecord, cert)


async def certifications_by_ids(actor: Actor, ids: list[int]) -> dict[int, CertificationRecord]:
    """Visible certifications; a learner also keeps seeing a RETIRED one they are enrolled in."""
    if not ids:
        return {}
    rows = await reads.certifications(ids)
    hidden = [c.id for c in rows.values() if not may_see_certification(actor, c.state, False)]
    if not hidden:
        return rows
    enrolled = set(
        cast(
            list[int],
            await Enrollment.filter(learner_scope(actor), certification_id__in=hidden).values_list(
                "certification_id", flat=True
            ),
        )
    )
    return {
        cid: c for cid, c in rows.items() if may_see_certification(actor, c.state, cid in enrolled)
    }


async def get_certification(actor: Actor, certification_id: int) -> CertificationRecord | None:
    return (await certifications_by_ids(actor, [certification_id])).get(certification_id)


async def list_certifications(
    actor: Actor,
    *,
    sort: CertificationSort = CertificationSort.RELEVANCE,
    kind: CertificationKind | None = None,
    state: CertificationState | None = None,
    search: str | None = None,
    paging: PageRequest = FIRST_PAGE,
) -> Page[CertificationRecord]:
    """The catalog. Learners see PUBLISHED ones; admins every state (filter with `state`)."""
    sort = CertificationSort(sort)
    keys = sql.catalog_keys(sort)
    window = paging.window(f"catalog:{sort}", [key.type for key in keys])
    search = check_search(search)
    states = catalog_states(actor, state)
    if states == []:
        return window.empty()
    rows, total = await sql.catalog_page(
        viewer_id=actor.user_id,
        keys=window.order(keys),
        states=states,
        kind=kind,
        search=search,
        now=clock.now(),
        after=window.cursor,
        limit=window.limit,
    )
    by_id = await reads.certifications([r["id"] for r in window.rows(rows)])
    return window.page(
        rows, total, item=lambda r: by_id[r["id"]], key=lambda r: sql.key_values(r, keys)
    )


@dataclass(slots=True)
class CertificationReport:
    certification: CertificationRecord
    enrolled: int
    by_status: dict[EnrollmentStatus, int]
    overdue: int
    completion_rate: float
    _viewer: Actor
    _now: datetime

    async def expiring_within(self, days: int) -> int:
        if not 0 <= days <= MAX_DAYS:
            raise InvalidInput(
                t("days must be between 0 and {MAX_DAYS}", MAX_DAYS=MAX_DAYS), field=["days"]
            )
        return await sql.count_expiring(
            self.certification.id,
            report_team(self._viewer),
            self._now,
            self._now + timedelta(days=days),
        )


async def certification_report(actor: Actor, certification_id: int) -> CertificationReport | None:
    """Admins: everyone enrolled; managers: their direct reports (and themselves)."""
    team = report_team(actor)
    cert = await get_certification(actor, certification_id)
    if cert is None:
        return None
    now = clock.now()
    counts, overdue = await sql.status_counts(cert.id, team, now)
    enrolled = sum(counts.values())
    by_status = {status: counts.get(status, 0) for status in EnrollmentStatus}
    completed = by_status[EnrollmentStatus.COMPLETED]
    return CertificationReport(
        certification=cert,
        enrolled=enrolled,
        by_status=by_status,
        overdue=overdue,
        completion_rate=(completed / enrolled) if enrolled else 0.0,
        _viewer=actor,
        _now=now,
    )
