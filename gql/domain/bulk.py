"""Bulk use cases for admin tooling (docs/api.md, "Bulk calls"): many users in one call, all or
nothing; many evidence reviews in one call, each decided on its own.

`create_users` checks every row before writing any (each problem at its row's real index,
`["input", "<index>", "<field>"]`) and writes them in one transaction with a fixed number of
statements whatever the row count: three reads to check, one batched insert, one read of the
new IDs, one batched insert of the audit rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo

from tortoise.exceptions import IntegrityError

from gql.domain.access import Actor, may_manage, require_admin
from gql.domain.errors import Conflict, DomainError, DomainErrors, InvalidInput, t
from gql.domain.evidence import ReviewDecision, review_evidence
from gql.domain.external_ids import UniqueKey, clean_external_id, holders
from gql.domain.unit import unit_of_work
from gql.domain.users import clean_email, clean_name
from gql.plugins import PluginHost
from gql.store.models import User
from gql.store.records import USER_COLUMNS, EvidenceRecord, UserRecord
from gql.store.writes import audit_row, insert_audit_events
from gql.vocabulary import Role

MAX_USERS_PER_CALL = 1000
MAX_REVIEWS_PER_CALL = 200
# Rows per INSERT batch of createUsers (one executemany each).
INSERT_BATCH = 1000


def _at(index: int, error: DomainError) -> DomainError:
    """`error` moved under the row's path: ["input", "<index>", *its field]."""
    path = ["input", str(index), *(error.field or ())]
    if isinstance(error, Conflict):
        return Conflict(error.message, path, existing=error.existing)
    return type(error)(error.message, path)


# -- createUsers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewUser:
    """One row of createUsers, as createUser takes it."""

    name: str
    email: str
    role: Role
    manager_id: int | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Row:
    """A row as cleaned; None where the row's value was refused (then nothing is written)."""

    index: int
    name: str | None
    email: str | None
    role: Role
    manager_id: int | None
    external_id: str | None
    # False when an earlier row of the call has the same email (or externalId): that one is
    # checked against the users.
    first_email: bool = True
    first_external_id: bool = True


def _checked_rows(rows: Sequence[NewUser]) -> tuple[list[_Row], list[DomainError]]:
    """The rows cleaned as createUser cleans one, and every problem each row has on its own
    or against an earlier row of the same call (a repeated email or externalId)."""
    cleaned: list[_Row] = []
    errors: list[DomainError] = []
    first_email: dict[str, int] = {}
    first_external: dict[str, int] = {}
    for index, row in enumerate(rows):
        problems: list[DomainError] = []
        name = email = external_id = None
        try:
            name = clean_name(row.name)
        except DomainError as exc:
            problems.append(exc)
        try:
            email = clean_email(row.email)
        except DomainError as exc:
            problems.append(exc)
        try:
            external_id = clean_external_id(row.external_id, ["externalId"])
        except DomainError as exc:
            problems.append(exc)
        email_first = external_first = True
        if email is not None:
            earlier = first_email.setdefault(email, index)
            if earlier != index:
                email_first = False
                problems.append(
                    InvalidInput(
                        t("the same email as input[{earlier}]", earlier=earlier), field=["email"]
                    )
                )
        if external_id is not None:
            earlier = first_external.setdefault(external_id, index)
            if earlier != index:
                external_first = False
                problems.append(
                    InvalidInput(
                        t("the same externalId as input[{earlier}]", earlier=earlier),
                        field=["externalId"],
                    )
                )
        errors += [_at(index, problem) for problem in problems]
        cleaned.append(
            _Row(
                index,
                name,
                email,
                row.role,
                row.manager_id,
                external_id,
                email_first,
                external_first,
            )
        )
    return cleaned, errors


def _unique_keys(rows: Sequence[_Row]) -> list[UniqueKey]:
    """The emails and externalIds to check against the users: each value's first row."""
    keys = [
        UniqueKey("User", "email", row.email, ("input", str(row.index), "email"))
        for row in rows
        if row.email is not None and row.first_email
    ]
    keys += [
        UniqueKey("User", "external_id", row.external_id, ("input", str(row.index), "externalId"))
        for row in rows
        if row.external_id is not None and row.first_external_id
    ]
    return keys


async def _conflicts(keys: Sequence[UniqueKey]) -> list[DomainError]:
    """CONFLICT (with the holder's ID) for each key a user already holds: one statement per
    column, whatever the number of rows."""
    errors: list[DomainError] = []
    for column in ("email", "external_id"):
        wanted = [key for key in keys if key.column == column]
        held = await holders("User", column, [key.value for key in wanted])
        errors += [key.conflict(held[key.value]) for key in wanted if key.value in held]
    return errors


async def _manager_errors(rows: Sequence[_Row]) -> list[DomainError]:
    wanted = sorted({row.manager_id for row in rows if row.manager_id is not None})
    if not wanted:
        return []
    roles = dict(await User.filter(id__in=wanted).values_list("id", "role"))
    return [
        InvalidInput(
            t("manager must be an existing manager or admin"),
            field=["input", str(row.index), "managerId"],
        )
        for row in rows
        if row.manager_id is not None
        and (row.manager_id not in roles or not may_manage(Role(roles[row.manager_id])))
    ]


def _in_input_order(errors: list[DomainError]) -> list[DomainError]:
    def key(error: DomainError) -> tuple[int, int]:
        field = error.field or ()
        row = int(field[1]) if len(field) > 1 and field[1].isdigit() else -1
        return (row, _FIELD_ORDER.get(field[2] if len(field) > 2 else "", len(_FIELD_ORDER)))

    return sorted(errors, key=key)


_FIELD_ORDER = {
    name: i for i, name in enumerate(("name", "email", "role", "managerId", "externalId"))
}


async def create_users(actor: Actor, rows: Sequence[NewUser]) -> list[UserRecord]:
    """Create every row as createUser would, or none (admins). All the rows' problems are
    raised together as DomainErrors, in input order, each at ["input", "<index>", field]:
    what createUser refuses, a repeated email or externalId within the call (INVALID_INPUT,
    naming the earlier row), and an email or externalId a user holds already (CONFLICT with
    that user's ID in `existing`). At most MAX_USERS_PER_CALL rows."""
    await require_admin(actor, "createUsers", "User")
    if len(rows) > MAX_USERS_PER_CALL:
        raise InvalidInput(
            t(
                "at most {MAX_USERS_PER_CALL} users per call (got {count}): split the list",
                MAX_USERS_PER_CALL=MAX_USERS_PER_CALL,
                count=len(rows),
            ),
            field=["input"],
        )
    if not rows:
        return []
    cleaned, errors = _checked_rows(rows)
    keys = _unique_keys(cleaned)
    try:
        return await _write_users(actor, cleaned, keys, errors, len(rows))
    except IntegrityError:
        # A concurrent write took an email or externalId between the check and the insert
        # (PostgreSQL): name the holders now, outside the failed transaction.
        found = await _conflicts(keys)
        if found:
            raise DomainErrors(_in_input_order(found)) from None
        raise Conflict(
            t("a concurrent change took a value these users need; send the call again")
        ) from None


async def _write_users(
    actor: Actor,
    rows: list[_Row],
    keys: list[UniqueKey],
    errors: list[DomainError],
    count: int,
) -> list[UserRecord]:
    async with unit_of_work(actor) as unit:
        errors = errors + await _conflicts(keys) + await _manager_errors(rows)
        if errors:
            raise DomainErrors(_in_input_order(errors))
        await User.bulk_create(
            [
                User(
                    name=row.name,
                    email=row.email,
                    role=row.role,
                    manager_id=row.manager_id,
                    external_id=row.external_id,
                    created_at=unit.now,
                )
                for row in rows
            ],
            batch_size=INSERT_BATCH,
        )
        emails = [row.email for row in rows if row.email is not None]
        found = await User.filter(email__in=emails).values_list(*USER_COLUMNS)
        by_email = {record.email: record for record in (UserRecord(*r) for r in found)}
        created = [by_email[email] for email in emails]
        await insert_audit_events(
            [
                audit_row(
                    unit.now,
                    unit.actor_id,
                    "createUser",
                    "User",
                    str(user.id),
                    None,
                    _snapshot(row),
                    f"createUsers: input[{row.index}] of {count}",
                )
                for row, user in zip(rows, created, strict=True)
            ]
        )
    return created


def _snapshot(row: _Row) -> dict[str, object]:
    after: dict[str, object] = {
        "name": row.name,
        "email": row.email,
        "role": str(row.role),
        "managerId": row.manager_id,
    }
    if row.external_id is not None:
        after["externalId"] = row.external_id
    return after


# -- reviewEvidenceBatch ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    evidence_id: int
    decision: ReviewDecision
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """One review of a batch: the evidence as reviewed, or why not (at its input path)."""

    index: int
    evidence_id: int
    evidence: EvidenceRecord | None = None
    error: DomainError | None = None


async def review_evidence_batch(
    actor: Actor,
    reviews: Sequence[Review],
    *,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> list[ReviewOutcome]:
    """Review each evidence in input order exactly as reviewEvidence does (its rules, audit
    row, evidence_reviewed event and re-evaluation), each in its own transaction: one that
    is refused (already reviewed, not visible, one's own) leaves the others decided. An
    evidence ID repeated in the call is refused at its later index. At most
    MAX_REVIEWS_PER_CALL reviews, else nothing is done."""
    if len(reviews) > MAX_REVIEWS_PER_CALL:
        raise InvalidInput(
            t(
                "at most {MAX_REVIEWS_PER_CALL} reviews per call (got {count}): split the list",
                MAX_REVIEWS_PER_CALL=MAX_REVIEWS_PER_CALL,
                count=len(reviews),
            ),
            field=["input"],
        )
    outcomes: list[ReviewOutcome] = []
    seen: dict[int, int] = {}
    for index, review in enumerate(reviews):
        earlier = seen.setdefault(review.evidence_id, index)
        if earlier != index:
            error: DomainError = InvalidInput(
                t("the same evidence as input[{earlier}]: review it once", earlier=earlier),
                field=["input", str(index), "evidenceId"],
            )
            outcomes.append(ReviewOutcome(index, review.evidence_id, error=error))
            continue
        try:
            reviewed = await review_evidence(
                actor,
                review.evidence_id,
                review.decision,
                review.comment,
                plugins=plugins,
                time_zone=time_zone,
            )
        except DomainError as exc:
            outcomes.append(ReviewOutcome(index, review.evidence_id, error=_at(index, exc)))
        else:
            outcomes.append(ReviewOutcome(index, review.evidence_id, evidence=reviewed))
    return outcomes
