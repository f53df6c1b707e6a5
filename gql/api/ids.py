"""Relay global object IDs: base64 of "Type:pk", opaque to clients.

A malformed ID, or one of another type, decodes to None: for queries it reads as "not found"
(null), for mutations the domain's NOT_FOUND, said with what an ID looks like and where it
comes from (`explain_undecoded`, a Message told in the request's language); never as an
internal error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from gql.domain.errors import DomainError, DomainErrors, NotFound, t
from gql.policy import Message
from gql.vocabulary import encode_id as encode_id  # re-exported: the API names it here

# The type names IDs may carry; anything else is not one of ours.
NODE_TYPES = frozenset(
    {"User", "Certification", "Course", "Enrollment", "Evidence", "Webhook", "ApiToken"}
)
# The ID columns are 32-bit: a larger pk can name no row, and PostgreSQL would refuse to
# compare it with one, so it reads as not found.
MAX_PK = 2**31 - 1
# What an undecodable ID becomes when it is handed to the domain: no row has pk 0, so the
# domain answers after its access checks exactly as for a deleted object (NOT_FOUND / null).
UNKNOWN_PK = 0


def decode_any(global_id: str) -> tuple[str, int] | None:
    """(type name, pk) of a well-formed ID of one of our types; None otherwise."""
    if not global_id or len(global_id) > 200:
        return None
    try:
        raw = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, pk_text = raw.partition(":")
    if not sep or type_name not in NODE_TYPES or not pk_text.isdigit() or not pk_text.isascii():
        return None
    pk = int(pk_text)
    if not 0 < pk <= MAX_PK:
        return None
    return type_name, pk


def decode_id(global_id: str, type_name: str) -> int | None:
    """The pk of an ID of `type_name`; None when malformed or of another type."""
    decoded = decode_any(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]


def pk_or_unknown(global_id: str, type_name: str, field: Sequence[str] | None = None) -> int:
    """The pk of an ID of `type_name`, or UNKNOWN_PK; an ID that does not decode is noted for
    `explain_undecoded` when a mutation is running (`noting_undecoded_ids`).

    `field`: the argument's path as the domain's errors name it (`["input", "courseId"]`).
    """
    pk = decode_id(global_id, type_name)
    if pk is not None:
        return pk
    noted = _undecoded.get()
    if noted is not None:
        noted.append(UndecodedId(global_id, type_name, tuple(field) if field else None))
    return UNKNOWN_PK


# Where a client finds an ID of each type: the hint of a NOT_FOUND for an undecodable one.
ID_SOURCES = {
    "User": "{ users { edges { node { id name } } } }",
    "Certification": "{ certifications { edges { node { id name } } } }",
    "Course": "{ courses { edges { node { id name } } } }",
    "Enrollment": "{ viewer { certifications { edges { node { id } } } } }",
    "Evidence": "{ evidenceReviewQueue { edges { node { id } } } }",
    "Webhook": "{ webhooks { edges { node { id url } } } }",
    "ApiToken": "{ viewer { apiTokens { edges { node { id name } } } } }",
}
SHOWN_CHARS = 60


@dataclass(frozen=True, slots=True)
class UndecodedId:
    """An ID argument, as sent, that is not an ID of the type the argument takes."""

    value: str
    type_name: str
    field: tuple[str, ...] | None

    def message(self) -> Message:
        shown = self.value if len(self.value) <= SHOWN_CHARS else self.value[:SHOWN_CHARS] + "…"
        decoded = decode_any(self.value)
        return t(
            "{no_such}: {value} {what} (IDs are opaque strings from an object's `id` field, "
            "e.g. `{example}`)",
            no_such=_NO_SUCH[self.type_name],
            value=json.dumps(shown, ensure_ascii=False),
            what=_what(None if decoded is None else decoded[0], self.type_name),
            example=ID_SOURCES[self.type_name],
        )


# The domain's NOT_FOUND of each type (the same msgids), which the hint completes.
_NO_SUCH = {
    "User": t("no such user"),
    "Certification": t("no such certification"),
    "Course": t("no such course"),
    "Enrollment": t("no such enrollment"),
    "Evidence": t("no such evidence"),
    "Webhook": t("no such webhook"),
    "ApiToken": t("no such API token"),
}


def _an(type_name: str) -> bool:
    return type_name in ("Enrollment", "Evidence", "ApiToken")


def _what(found: str | None, wanted: str) -> Message:
    """What the value is, with English's articles: a sentence per pair of them, so a
    translation need not have articles (or the same ones)."""
    if found is None:
        if _an(wanted):
            return t("is not an {wanted} ID", wanted=wanted)
        return t("is not a {wanted} ID", wanted=wanted)
    if _an(found) and _an(wanted):
        return t("is an {found} ID, not an {wanted} ID", found=found, wanted=wanted)
    if _an(found):
        return t("is an {found} ID, not a {wanted} ID", found=found, wanted=wanted)
    if _an(wanted):
        return t("is a {found} ID, not an {wanted} ID", found=found, wanted=wanted)
    return t("is a {found} ID, not a {wanted} ID", found=found, wanted=wanted)


_undecoded: ContextVar[list[UndecodedId] | None] = ContextVar("undecoded_ids", default=None)


@contextmanager
def noting_undecoded_ids() -> Iterator[list[UndecodedId]]:
    """Collect the IDs `pk_or_unknown` could not decode while the block runs (one mutation)."""
    noted: list[UndecodedId] = []
    token = _undecoded.set(noted)
    try:
        yield noted
    finally:
        _undecoded.reset(token)


def explain_undecoded(error: DomainError, noted: Sequence[UndecodedId]) -> DomainError:
    """The domain's refusal, or NOT_FOUND with a hint when it is due to an undecodable ID.

    The domain got UNKNOWN_PK for such an ID, so it answered after its access checks exactly
    as for a missing object. The hint replaces an error naming that argument, or any
    NOT_FOUND (the first undecodable ID is named). It depends only on what the client sent
    and on the error's code, which is the same for a hidden object as for a missing one: a
    well-formed ID is never hinted at. Each error of a DomainErrors is explained by the
    undecodable ID at its own field only.
    """
    if isinstance(error, DomainErrors):
        return DomainErrors(
            [
                explain_undecoded(each, [n for n in noted if n.field == each.field])
                for each in error.errors
            ]
        )
    culprit = next((n for n in noted if n.field is not None and n.field == error.field), None)
    if culprit is None and isinstance(error, NotFound) and noted:
        culprit = noted[0]
    if culprit is None:
        return error
    return NotFound(culprit.message(), field=culprit.field or error.field)


def course_pk_of_import(text: str) -> int | None:
    """A CSV import's course_id: a Course's global ID or, for hand-made files, its number."""
    if text.isascii() and text.isdigit():
        pk = int(text)
        return pk if 0 < pk <= MAX_PK else None
    return decode_id(text, "Course")
