"""Relay global object IDs: base64 of "Type:pk", opaque to clients.

A malformed ID, or one of another type, decodes to None: for queries it reads as "not found"
(null), for mutations the domain's NOT_FOUND; never as an internal error.
"""

from __future__ import annotations

import base64
import binascii

# The type names IDs may carry; anything else is not one of ours.
NODE_TYPES = frozenset({"User", "Certification", "Course", "Enrollment", "Evidence"})
# The ID columns are 32-bit: a larger pk can name no row, and PostgreSQL would refuse to
# compare it with one, so it reads as not found.
MAX_PK = 2**31 - 1
# What an undecodable ID becomes when it is handed to the domain: no row has pk 0, so the
# domain answers after its access checks exactly as for a deleted object (NOT_FOUND / null).
UNKNOWN_PK = 0


def encode_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


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


def pk_or_unknown(global_id: str, type_name: str) -> int:
    pk = decode_id(global_id, type_name)
    return UNKNOWN_PK if pk is None else pk


def course_pk_of_import(text: str) -> int | None:
    """A CSV import's course_id: a Course's global ID or, for hand-made files, its number."""
    if text.isascii() and text.isdigit():
        pk = int(text)
        return pk if 0 < pk <= MAX_PK else None
    return decode_id(text, "Course")
