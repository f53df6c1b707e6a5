"""The audit log through the API: `auditEvents`, for admins, newest first.

Rows are written by the domain inside each use case's transaction (gql.domain.unit): admin
actions, reviews, awards, token issues and every refusal (`denied:<action>`). Reading the log
is itself admin-only; a refused read is audited like any other refusal.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gql.api.connections import Connection, connection_field
from gql.api.context import Info
from gql.api.fields import described
from gql.api.ids import NODE_TYPES, decode_any, encode_id, pk_or_unknown
from gql.api.types import User
from gql.domain import audit
from gql.domain.pages import FIRST_PAGE, PageRequest
from gql.domain.records import AuditRecord


@strawberry.type(description="One entry of the append-only audit log.")
class AuditEvent:
    id: strawberry.ID
    at: datetime
    action: str = strawberry.field(
        description="The use case (e.g. createCourse, award) or `denied:<use case>` for a refusal."
    )
    object_type: str
    object_id: str | None = strawberry.field(description="The object's key as the log stores it.")
    object_global_id: strawberry.ID | None = strawberry.field(
        description="The object's global ID, when it is a Node type."
    )
    before: JSON | None
    after: JSON | None
    detail: str | None
    actor_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: AuditRecord) -> AuditEvent:
        global_id = None
        if row.object_type in NODE_TYPES and row.object_id and row.object_id.isdigit():
            global_id = strawberry.ID(encode_id(row.object_type, int(row.object_id)))
        return cls(
            id=strawberry.ID(encode_id("AuditEvent", row.id)),
            at=row.at,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            object_global_id=global_id,
            before=JSON(row.before) if row.before is not None else None,
            after=JSON(row.after) if row.after is not None else None,
            detail=row.detail,
            actor_pk=row.actor_id,
        )

    @described("Who acted; null for the operator at the command line.")
    async def actor(self, info: Info) -> User | None:
        if self.actor_pk is None:
            return None
        row = await info.context.loaders.users.load(self.actor_pk)
        return None if row is None else User.of(row)


def object_key(object_id: str | None) -> tuple[str | None, str | None]:
    """(object type, stored key) for a filter value: a global ID is translated to the key
    the log stores; anything else is matched as given."""
    if not object_id:
        return None, None
    decoded = decode_any(object_id)
    if decoded is None:
        return None, object_id
    type_name, pk = decoded
    return type_name, str(pk)


@strawberry.type
class AuditQuery:
    @connection_field(
        "The audit log, newest first; admins only. `action` matches exactly, or as a prefix "
        "when it ends with `*` (`denied:*` lists every refusal). `objectId` takes a global ID "
        "or the key as stored; `since` is inclusive, `until` exclusive."
    )
    async def audit_events(
        self,
        info: Info,
        action: str | None = None,
        actor_id: strawberry.ID | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        paging: PageRequest = FIRST_PAGE,
    ) -> Connection[AuditEvent]:
        id_type, key = object_key(object_id)
        page = await audit.list_audit_events(
            info.context.viewer,
            action=action,
            actor_id=None if actor_id is None else pk_or_unknown(actor_id, "User"),
            object_type=object_type or id_type,
            object_id=key,
            since=since,
            until=until,
            paging=paging,
        )
        return Connection.of(page, [AuditEvent.of(row) for row in page.items])
