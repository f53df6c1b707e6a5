"""Reading the audit log (admins). Rows are written by gql.domain.unit in each use case."""

from __future__ import annotations

from datetime import datetime

from gql.domain.access import Actor, require_admin
from gql.domain.errors import InvalidInput, t
from gql.domain.pages import FIRST_PAGE, OrmKey, Page, PageRequest, orm_page
from gql.store.models import AuditEvent
from gql.store.records import AUDIT_COLUMNS, AuditRecord


async def list_audit_events(
    actor: Actor,
    *,
    action: str | None = None,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    paging: PageRequest = FIRST_PAGE,
) -> Page[AuditRecord]:
    """Newest first. `action` matches exactly, or as a prefix when it ends with '*'
    (``denied:*`` lists every refusal)."""
    await require_admin(actor, "auditEvents", "AuditEvent")
    if since is not None and until is not None and since > until:
        raise InvalidInput(t("since must not be after until"), field=["since"])
    queryset = AuditEvent.all()
    if action:
        queryset = (
            queryset.filter(action__startswith=action[:-1])
            if action.endswith("*")
            else queryset.filter(action=action)
        )
    if actor_id is not None:
        queryset = queryset.filter(actor_id=actor_id)
    if object_type:
        queryset = queryset.filter(object_type=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if since is not None:
        queryset = queryset.filter(at__gte=since)
    if until is not None:
        queryset = queryset.filter(at__lt=until)
    return await orm_page(
        queryset,
        [OrmKey("at", True, "datetime"), OrmKey("id", True, "bigint")],
        record=AuditRecord,
        columns=AUDIT_COLUMNS,
        kind="audit",
        paging=paging,
    )
