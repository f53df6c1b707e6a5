"""The product's vocabulary: the enums domain.md names, declared once. The store keeps them in
columns, the domain decides with them, the API shows them (through gql.domain.enums); this
module imports nothing of certgraph."""

from __future__ import annotations

import base64
from enum import StrEnum


class Role(StrEnum):
    LEARNER = "LEARNER"
    MANAGER = "MANAGER"
    ADMIN = "ADMIN"


class CertificationKind(StrEnum):
    INTERNAL = "INTERNAL"
    EXTERNAL = "EXTERNAL"


class CertificationType(StrEnum):
    PERPETUAL = "PERPETUAL"
    RECURRING = "RECURRING"


class CertificationState(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    RETIRED = "RETIRED"


class EnrollmentOrigin(StrEnum):
    ASSIGNED = "ASSIGNED"
    SELF = "SELF"


class ProgressStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class EvidenceStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class DeliveryState(StrEnum):
    """Where one event stands with one destination (a plugin or a webhook endpoint)."""

    PENDING = "PENDING"  # not yet delivered: due now, leased by a dispatcher, or backing off
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # every attempt failed; only redeliverEvent sends it again


def encode_id(type_name: str, pk: int) -> str:
    """A Relay global object ID: base64 of "Type:pk" (gql.api.ids decodes clients' IDs)."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def pk_of(global_id: object, type_name: str) -> int | None:
    """The pk of an ID certgraph wrote itself with `encode_id` (an event's data), None when it
    is not one of `type_name`."""
    if not isinstance(global_id, str):
        return None
    try:
        kind, _, pk = base64.b64decode(global_id, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(pk) if kind == type_name and pk.isascii() and pk.isdigit() else None
