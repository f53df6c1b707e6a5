"""External IDs: the key another system (an HR system, a course catalogue) knows a user, a
course or a certification by, so a script that runs again finds what it made before
(docs/api.md, "External IDs and re-runs").

An externalId is optional, unique per type when set (the columns' unique indexes), compared
exactly as stored (case matters), and set on create or update. Creating with a key another
object holds already is CONFLICT, and that error names the holder's ID (`existingId`), so a
re-run converges: it reads the ID from the error instead of making a duplicate. The same
holds for a user's e-mail. A unique index that a concurrent write claimed first (PostgreSQL
checks it at the insert, after the use case's own check) is turned into the same CONFLICT by
`conflicts_named`, never into an internal error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, cast

from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from gql.domain.errors import Conflict, InvalidInput, t
from gql.store.models import Certification, Course, User

MAX_EXTERNAL_ID_CHARS = 200

Kind = Literal["User", "Course", "Certification"]
_MODELS: dict[Kind, type[Model]] = {
    "User": User,
    "Course": Course,
    "Certification": Certification,
}


def clean_external_id(value: str | None, field: Sequence[str]) -> str | None:
    """The key as stored: surrounding white space removed; None stays None (no key, or on an
    update: clear it). Empty, over MAX_EXTERNAL_ID_CHARS or holding control characters is
    INVALID_INPUT at `field`."""
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInput(
            t("externalId must not be empty: omit it, or send null to clear it"), field
        )
    if len(cleaned) > MAX_EXTERNAL_ID_CHARS:
        raise InvalidInput(
            t(
                "externalId must be at most {MAX_EXTERNAL_ID_CHARS} characters",
                MAX_EXTERNAL_ID_CHARS=MAX_EXTERNAL_ID_CHARS,
            ),
            field,
        )
    if any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise InvalidInput(t("externalId must not hold control characters"), field)
    return cleaned


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """A value that only one row of `kind` may hold in `column`; `own_id` is the row being
    updated (it may keep its own value)."""

    kind: Kind
    column: Literal["external_id", "email"]
    value: str
    field: tuple[str, ...]
    own_id: int | None = None

    @property
    def label(self) -> str:
        return "externalId" if self.column == "external_id" else self.column

    def conflict(self, holder: int) -> Conflict:
        return Conflict(
            t(
                "a {kind} with {label} {value!r} already exists: its ID is in existingId",
                kind=self.kind.lower(),
                label=self.label,
                value=self.value,
            ),
            field=self.field,
            existing=(self.kind, holder),
        )


def external_id_key(
    kind: Kind, value: str | None, field: Sequence[str], own_id: int | None = None
) -> list[UniqueKey]:
    """The key of an externalId to claim (none when it is None)."""
    return [] if value is None else [UniqueKey(kind, "external_id", value, tuple(field), own_id)]


async def holders(kind: Kind, column: str, values: Iterable[str]) -> dict[str, int]:
    """Which row holds each of these values (those that are held). One statement."""
    wanted = sorted(set(values))
    if not wanted:
        return {}
    rows = await _MODELS[kind].filter(**{f"{column}__in": wanted}).values_list(column, "id")
    return {value: pk for value, pk in cast(list[tuple[str, int]], rows)}


async def check_free(keys: Sequence[UniqueKey]) -> None:
    """CONFLICT (with the holder's ID) for the first key another row holds. Call inside the
    use case's transaction, before writing; one statement per key."""
    for key in keys:
        held = await holders(key.kind, key.column, [key.value])
        holder = held.get(key.value)
        if holder is not None and holder != key.own_id:
            raise key.conflict(holder)


@asynccontextmanager
async def conflicts_named(keys: Sequence[UniqueKey]) -> AsyncIterator[None]:
    """Around a use case's transaction (outside it: a failed statement ends a PostgreSQL
    transaction): a unique violation of one of `keys` that a concurrent write caused after
    `check_free` passed becomes that key's CONFLICT with the holder's ID; any other unique
    violation a CONFLICT that asks to try again. Never an internal error."""
    try:
        yield
    except IntegrityError:
        for key in keys:
            holder = (await holders(key.kind, key.column, [key.value])).get(key.value)
            if holder is not None and holder != key.own_id:
                raise key.conflict(holder) from None
        raise Conflict(
            t("a concurrent change took a value this one needs; read the object again and retry")
        ) from None


async def external_ids_of(kind: Kind, ids: Sequence[int]) -> dict[int, str]:
    """The externalIds of these rows (those that have one), by pk. One statement.

    No access rule here: the API asks only for objects the viewer was already shown."""
    if not ids:
        return {}
    rows = await (
        _MODELS[kind]
        .filter(id__in=sorted(set(ids)), external_id__not_isnull=True)
        .values_list("id", "external_id")
    )
    return {pk: value for pk, value in cast(list[tuple[int, str]], rows)}


async def find_by_external_id(kind: Kind, external_id: str) -> int | None:
    """The pk of the row of `kind` with this externalId, None when there is none. The caller
    reads the object through the use case that decides whether the viewer may see it."""
    cleaned = external_id.strip()
    if not cleaned or len(cleaned) > MAX_EXTERNAL_ID_CHARS:
        return None
    return (await holders(kind, "external_id", [cleaned])).get(cleaned)


async def external_ids_for(keys: Sequence[tuple[Kind, int]]) -> list[str | None]:
    """The externalId of each (type, pk), None where there is none: a DataLoader's batch,
    one statement per type asked."""
    by_kind: dict[Kind, list[int]] = {}
    for kind, pk in keys:
        by_kind.setdefault(kind, []).append(pk)
    found: dict[tuple[Kind, int], str] = {}
    for kind, pks in by_kind.items():
        found.update(
            ((kind, pk), value) for pk, value in (await external_ids_of(kind, pks)).items()
        )
    return [found.get(key) for key in keys]


async def external_id_change(
    kind: Kind, pk: int, current: str | None, value: str | None, field: Sequence[str]
) -> tuple[str | None, str | None] | None:
    """Check that the row `pk`, whose externalId is `current`, may take `value` (None clears
    it), inside the caller's transaction; the caller writes it. None when nothing changes,
    else (before, after) for the audit. CONFLICT, naming the holder, when another row of
    `kind` has it; run the use case inside `conflicts_named(external_id_key(...))` for a
    concurrent claim."""
    if current == value:
        return None
    await check_free(external_id_key(kind, value, field, own_id=pk))
    return current, value


async def change_external_id(
    kind: Kind, pk: int, value: str | None, field: Sequence[str]
) -> tuple[str | None, str | None] | None:
    """external_id_change, reading the current value and writing the new one."""
    current = (await external_ids_of(kind, [pk])).get(pk)
    change = await external_id_change(kind, pk, current, value, field)
    if change is not None:
        await _MODELS[kind].filter(id=pk).update(external_id=value)
    return change
