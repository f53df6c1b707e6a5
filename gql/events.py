"""The events certgraph emits: one typed class per kind, the catalogue of docs/events.md.

Every event is written to the outbox in the transaction of the change that caused it, and
delivered at least once, in order per learner, to each `certgraph_event` plugin and each
webhook endpoint that asked for its type. IDs are the API's global IDs; people, courses and
certifications travel with their names, so a message can be written without asking back.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

# An instant, written as the API writes its DateTime: ISO 8601 in UTC, "+00:00".
Instant = Annotated[
    datetime,
    PlainSerializer(lambda v: v.astimezone(UTC).isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Shape(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Person(_Shape):
    """A user as the event saw them."""

    id: str = Field(description="The user's global ID (as in the API)")
    name: str
    email: str


class CertificationRef(_Shape):
    id: str = Field(description="The certification's global ID")
    name: str


class CourseRef(_Shape):
    id: str = Field(description="The course's global ID")
    name: str


class EventData(_Shape):
    """What happened: the body of one kind of event. `TYPE` is its `type` on the wire."""

    TYPE: ClassVar[str]
    learner: Person


class EnrollmentEventData(EventData):
    """An event about one learner's enrollment in one certification."""

    enrollment_id: str = Field(description="The enrollment's global ID")
    certification: CertificationRef
    due_at: Instant | None = Field(description="When the enrollment is due; null: no due date")


class Enrolled(EnrollmentEventData):
    """A learner was enrolled: assigned by a manager or admin, or by starting themselves."""

    TYPE = "enrolled"
    origin: Literal["ASSIGNED", "SELF"]
    assigned_by: Person | None = Field(description="Who assigned it; null when self-enrolled")


class Unassigned(EnrollmentEventData):
    """A learner was unassigned: their enrollment ended (its history and awards stay)."""

    TYPE = "unassigned"
    unassigned_by: Person | None = Field(description="Who unassigned it; null for the command line")


class Started(EnrollmentEventData):
    """A learner started an enrollment (pressed Start, recorded progress or submitted proof)."""

    TYPE = "started"


class ProgressRecorded(EventData):
    """A learner's progress on a course was recorded (by them, an admin, or a CSV import)."""

    TYPE = "progress_recorded"
    course: CourseRef
    percent: int
    completed: bool
    completed_at: Instant | None = Field(description="When the course was completed, if it was")


class EvidenceSubmitted(EnrollmentEventData):
    """A learner submitted proof for an EXTERNAL certification; it waits for review."""

    TYPE = "evidence_submitted"
    evidence_id: str = Field(description="The evidence's global ID")
    completed_on: date | None = Field(description="The date the learner says they earned it")


class EvidenceReviewed(EnrollmentEventData):
    """A manager or admin approved or rejected submitted proof."""

    TYPE = "evidence_reviewed"
    evidence_id: str = Field(description="The evidence's global ID")
    decision: Literal["APPROVE", "REJECT"]
    comment: str | None
    reviewer: Person | None = Field(description="Who reviewed; null for the command line")


class CertificationCompleted(EnrollmentEventData):
    """A learner completed a certification (one award per cycle)."""

    TYPE = "certification_completed"
    cycle: int
    awarded_at: Instant
    expires_at: Instant | None = Field(description="When the award lapses; null: never")
    # Calendar days beside the instants (docs/api.md, "Dates and instants"); optional so that
    # events written before they existed are still delivered.
    earned_on: date | None = Field(
        default=None,
        description="The calendar day it was earned (the award's earnedOn; null only in "
        "events written before certgraph had it)",
    )
    expires_on: date | None = Field(
        default=None, description="The calendar day it expires on (expiresOn); null: never"
    )


class CertificationExpired(EnrollmentEventData):
    """A learner's newest award lapsed without recertification."""

    TYPE = "certification_expired"
    cycle: int = Field(description="The cycle whose award expired")
    expired_at: Instant
    expired_on: date | None = Field(
        default=None,
        description="The award's expiresOn, the calendar day it expired on (null only in "
        "events written before certgraph had it)",
    )


class CertificationDueSoon(EnrollmentEventData):
    """An unfinished enrollment is due within the configured number of days."""

    TYPE = "certification_due_soon"
    cycle: int
    days_left: int = Field(description="Whole days from the reminder to the due date")


class CertificationOverdue(EnrollmentEventData):
    """An unfinished enrollment passed its due date."""

    TYPE = "certification_overdue"
    cycle: int


class CertificationExpiring(EnrollmentEventData):
    """A recurring certification's recertification window opened: the award expires soon."""

    TYPE = "certification_expiring"
    cycle: int = Field(description="The cycle the learner now recertifies for")
    expires_at: Instant = Field(description="When the current award lapses")
    expires_on: date | None = Field(
        default=None,
        description="The calendar day it lapses on (the award's expiresOn; null only in "
        "events written before certgraph had it)",
    )
    window_opened_at: Instant


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        Enrolled,
        Unassigned,
        Started,
        ProgressRecorded,
        EvidenceSubmitted,
        EvidenceReviewed,
        CertificationCompleted,
        CertificationExpired,
        CertificationDueSoon,
        CertificationOverdue,
        CertificationExpiring,
    )
}


class Event(_Shape):
    """One event as plugins receive it. `id` is the same on every delivery attempt: a
    receiver that must act once de-duplicates on it (delivery is at least once)."""

    id: UUID
    type: str
    occurred_at: Instant
    actor_id: str | None = Field(description="Who caused it (a user's global ID); null: certgraph")
    data: EventData

    def body(self) -> dict[str, Any]:
        """The JSON a webhook receives (the Standard Webhooks payload shape)."""
        return {
            "id": str(self.id),
            "type": self.type,
            "timestamp": self.occurred_at.astimezone(UTC).isoformat(),
            "actorId": self.actor_id,
            "data": self.data.model_dump(mode="json", by_alias=True),
        }

    def body_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False)


def parse_data(event_type: str, data: dict[str, Any]) -> EventData:
    """The typed body of a stored event; KeyError for a type this version does not know."""
    return EVENT_TYPES[event_type].model_validate(data)


def catalogue() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each kind's `data`, as docs/events.md publishes them."""
    return {
        name: _untitled(cls.model_json_schema(by_alias=True, mode="serialization"))
        for name, cls in EVENT_TYPES.items()
    }


def _untitled(schema: Any) -> Any:
    """The schema without pydantic's generated property titles ("Enrollmentid")."""
    if isinstance(schema, dict):
        return {
            key: (
                {name: _drop_title(_untitled(sub)) for name, sub in value.items()}
                if key == "properties"
                else _untitled(value)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def _drop_title(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: value for key, value in schema.items() if key != "title"}
    return schema
