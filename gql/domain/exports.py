"""Enrollment exports (docs/admin.md, "Exports"): a CSV of the enrollments an
`EnrollmentFilter` selects, with the scope and filter semantics of `Query.enrollments`.

The CSV is generated while it is sent: keyset batches of `EXPORT_BATCH_SIZE` enrollments, each
read in a fixed number of statements (the page, the read model's facts, the people), written
and handed on before the next is read, so memory and each statement stay small whatever the
size of the organisation, and no transaction stays open between batches.

Cells are UTF-8, quoted as RFC 4180 says (the csv module), and any cell that starts with `=`,
`+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet shows it as text
instead of running it as a formula (OWASP, "CSV Injection").

Who may export: managers (their own enrollments and their direct reports') and admins
(everyone's); each export is audited (`exportEnrollments`). A download URL carries an
`ExportRequest`, the requester and their role at the time it was made with the filter; a
download runs as that requester, and is refused once they are gone, deactivated or hold
another role.
"""

from __future__ import annotations

import csv
import io
import json
from collections import abc
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import Enum
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from gql.domain.access import Actor
from gql.domain.enrollment_search import (
    EnrollmentFilter,
    check_filter,
    completed_late,
    iter_enrollments,
)
from gql.domain.errors import Forbidden, t
from gql.domain.status import EnrollmentView, describe_enrollments
from gql.domain.unit import audit_refusal, unit_of_work
from gql.plugins import PluginHost
from gql.store import exports as store
from gql.vocabulary import Role, encode_id

# Enrollments read and written per batch (one page of the search, and its facts).
EXPORT_BATCH_SIZE = 500
EXPORT_ACTION = "exportEnrollments"

COLUMNS = (
    "enrollment_id",
    "learner_id",
    "learner_name",
    "learner_email",
    "learner_external_id",
    "manager_email",
    "certification_id",
    "certification_name",
    "status",
    "progress_percent",
    "origin",
    "enrolled_at",
    "due_at",
    "completed_at",
    "expires_at",
    "completed_late",
    "overdue",
)

# OWASP CSV injection: a cell a spreadsheet would read as a formula (or a DDE call).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """The cell as text a spreadsheet will not evaluate: a leading `'` before a formula."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _flag(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"


def export_row(view: EnrollmentView, person: store.ExportPerson | None) -> list[str]:
    """One enrollment as the cells of COLUMNS (before neutralising).

    `completed_at` and `expires_at` are those of the latest completion, also when it has
    expired (`status` says whether it is in force).
    """
    enrollment = view.enrollment
    latest = view.awards[-1] if view.awards else None
    return [
        encode_id("Enrollment", enrollment.id),
        encode_id("User", enrollment.learner_id),
        person.name if person else "",
        person.email if person else "",
        (person.external_id or "") if person else "",
        (person.manager_email or "") if person else "",
        encode_id("Certification", enrollment.certification_id),
        view.certification.name,
        str(view.status),
        str(view.progress_percent),
        str(enrollment.origin),
        _when(enrollment.enrolled_at),
        _when(enrollment.due_at),
        _when(latest.awarded_at if latest else None),
        _when(latest.expires_at if latest else None),
        _flag(completed_late(view)),
        _flag(view.overdue),
    ]


def _csv_text(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quotes what needs it, doubles quotes, CRLF
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def header() -> bytes:
    return _csv_text([COLUMNS])


# -- the CSV, batch by batch -----------------------------------------------------------------


async def enrollment_csv(
    actor: Actor,
    filter: EnrollmentFilter,
    *,
    batch_size: int = EXPORT_BATCH_SIZE,
    plugins: PluginHost | None = None,
) -> AsyncGenerator[bytes, None]:
    """The export as UTF-8 CSV chunks: the header row, then one chunk per batch.

    The batches are gql.domain.enrollment_search's (the rows Query.enrollments would list,
    in its order, each at most once however the table changes meanwhile), each described as
    the API describes an enrollment: a fixed number of statements per batch, and nothing
    held from one batch to the next but the cursor.
    """
    check_filter(filter)
    yield header()
    async for records in iter_enrollments(actor, filter, batch_size=batch_size):
        views = await describe_enrollments(records, plugins)
        people = await store.people([record.learner_id for record in records])
        yield _csv_text([export_row(views[r.id], people.get(r.learner_id)) for r in records])


# -- who may export, and the request a download URL carries --------------------------------


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """An authorised export: who asked (and as what), and what they asked for."""

    requester_id: int | None  # None: the operator at the command line
    role: Role
    filter: EnrollmentFilter

    @property
    def actor(self) -> Actor:
        if self.requester_id is None:
            return Actor.system()
        return Actor(user_id=self.requester_id, role=self.role)


def may_export(actor: Actor) -> bool:
    return actor.is_admin or actor.is_manager


async def request_export(actor: Actor, filter: EnrollmentFilter) -> ExportRequest:
    """Authorise an export of what `filter` selects, check the filter as the search does, and
    audit it (`exportEnrollments`, the filter in `after`); FORBIDDEN for learners."""
    if not may_export(actor):
        await audit_refusal(
            actor.user_id, EXPORT_ACTION, "Enrollment", None, "managers and admins only"
        )
        raise Forbidden(t("exports are for managers and admins"))
    check_filter(filter)
    request = ExportRequest(actor.user_id, actor.role, filter)
    async with unit_of_work(actor) as unit:
        await unit.audit(EXPORT_ACTION, "Enrollment", None, after={"filter": filter_json(filter)})
    return request


async def download_actor(request: ExportRequest) -> Actor:
    """Who a download runs as: the requester, while they exist, are active and hold the role
    they had when they asked; FORBIDDEN otherwise (the URL is refused)."""
    if request.requester_id is None:
        return Actor.system()
    found = await store.requester(request.requester_id)
    if found is None or found.deactivated_at is not None or found.role != request.role:
        raise Forbidden(t("this export's requester may no longer export"))
    return request.actor


# -- the request as bytes (signed into the URL by the API) ----------------------------------

_VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.astimezone(UTC).isoformat()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple | frozenset | set):
        return [_encode(item) for item in value]
    return value


def filter_json(filter: EnrollmentFilter) -> dict[str, Any]:
    """Every field of the filter as a JSON value (the audit row's and the URL's)."""
    return {f.name: _encode(getattr(filter, f.name)) for f in fields(filter)}


def _decode(hint: Any, value: Any) -> Any:
    """`value` (from _encode) as the type `hint` names: X | None, sequences, enums, datetimes."""
    if value is None:
        return None
    origin = get_origin(hint)
    args = [a for a in get_args(hint) if a is not type(None) and a is not Ellipsis]
    if origin in (Union, UnionType):
        return _decode(args[0], value)
    if origin in (list, tuple, frozenset, set, abc.Sequence):
        if not isinstance(value, list):
            raise TypeError("a list was expected")
        items = [_decode(args[0], item) for item in value]
        if origin is list:
            return items
        return frozenset(items) if origin in (frozenset, set) else tuple(items)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is datetime:
        return datetime.fromisoformat(value["t"])
    return value


def encode_request(request: ExportRequest) -> bytes:
    """The canonical bytes of a request (what the URL carries and its signature covers)."""
    document = {
        "v": _VERSION,
        "u": request.requester_id,
        "r": str(request.role),
        "f": filter_json(request.filter),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def decode_request(data: bytes) -> ExportRequest | None:
    """The request of `encode_request`'s bytes; None for anything else."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("v") != _VERSION:
            return None
        hints = get_type_hints(EnrollmentFilter)
        given = document["f"]
        values = {name: _decode(hints[name], value) for name, value in given.items()}
        requester = document["u"]
        if requester is not None and type(requester) is not int:
            return None
        return ExportRequest(requester, Role(document["r"]), EnrollmentFilter(**values))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
