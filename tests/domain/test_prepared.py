"""Reads compiled once per shape (gql.store.prepared) return what their builder's own Tortoise
query returns, value for value and type for type, on SQLite and PostgreSQL: on the first call
of a shape, on later calls of it with other values, and on lists too long to be prepared.
Arguments that cannot be found among the parameters as given are refused before any
statement is sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.exceptions import ParamsError
from tortoise.expressions import Q
from tortoise.queryset import ValuesListQuery
from tortoise.transactions import in_transaction

from gql.domain import enrollments, users
from gql.domain.access import Actor, hash_token
from gql.store import course_links, prepared, reads, tokens
from gql.store.models import (
    Certification,
    CertificationKind,
    CertificationState,
    CertificationType,
    Course,
    CourseProgress,
    EvidenceStatus,
    Role,
)
from gql.store.prepared import PreparedValues, UnpreparableQuery
from gql.store.records import CertificationRecord, TokenRecord
from tests.conftest import QueryCounter

from .factories import Factory

PREPARED: dict[str, PreparedValues[Any]] = {
    "links_with_versions": course_links._links_with_versions,
    "links_versions": course_links._versions,
    "progress_on_certifications": reads._progress_on_certifications,
    "awards": reads._awards,
    "evidence_of": reads._evidence_of,
    "certifications": reads._certifications,
    "enrollments_counting": reads._enrollments_counting,
    "token_rows": tokens._token_rows,
}


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test compiles its shapes itself (the cache outlives a test's database)."""
    for read in PREPARED.values():
        monkeypatch.setattr(read, "_compiled", {})


def _typed(value: Any) -> Any:
    """A value with the type of each of its parts (a bool is no int, an enum no str)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__name__, tuple(_typed(getattr(value, f.name)) for f in fields))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_typed(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _typed(value[k])) for k in sorted(value)))
    if isinstance(value, datetime):
        return ("datetime", value, value.utcoffset())
    return (type(value).__name__, value)


def _row_id(row: Any) -> Any:
    return row.id if dataclasses.is_dataclass(row) else row[0]


async def _tortoise_rows(read: PreparedValues[Any], *arguments: Any) -> list[Any]:
    return [read.row(*r) for r in await read.build(*arguments)]


async def _same(read: PreparedValues[Any], *arguments: Any) -> list[Any]:
    """The prepared rows, asserted to be the builder's Tortoise rows (as a set where the query
    has no order)."""
    got = await read(*arguments)
    expected = await _tortoise_rows(read, *arguments)
    ordered = "order by" in read.build(*arguments).sql().lower()
    if not ordered:
        got, expected = sorted(got, key=_row_id), sorted(expected, key=_row_id)
    assert [_typed(r) for r in got] == [_typed(r) for r in expected]
    return got


@dataclasses.dataclass
class World:
    timed: int  # courses
    plain: int
    third: int
    fourth: int
    internal: int  # certifications
    recurring: int
    external: int
    draft: int
    l1: Actor
    l2: Actor
    l3: Actor
    e1_internal: int  # enrollments
    e1_recurring: int
    e1_external: int
    e2_internal: int
    e2_external: int
    e3_internal: int  # ended
    token1: str
    token2: str


def _uid(actor: Actor) -> int:
    assert actor.user_id is not None
    return actor.user_id


@pytest.fixture
async def world(make: Factory) -> World:
    timed = await make.course("Timed", duration_minutes=45)
    plain, third, fourth = await make.course("Plain"), await make.course(), await make.course()
    internal = await make.certification(timed, (plain, False))
    recurring = await make.certification(
        timed, third, type=CertificationType.RECURRING, validity_months=12
    )
    external = await make.certification(
        fourth, kind=CertificationKind.EXTERNAL, policy_config={"requireMandatoryCourses": True}
    )
    draft = await make.certification(plain, third, publish=False)
    manager = await make.user(Role.MANAGER, name="Maya Manager")
    l1, l2, l3 = await make.learner(manager), await make.learner(), await make.learner()
    e1_internal = await make.assign(internal, l1)
    e1_recurring = await make.assign(recurring, l1, due_at=datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    e1_external = await make.assign(external, l1)
    e2_internal = await make.assign(internal, l2)
    e2_external = await make.assign(external, l2)
    e3_internal = await make.assign(internal, l3)
    await make.complete(l1, timed)  # internal awarded (no expiry)
    await make.complete(l1, third)  # recurring awarded (an expiry)
    await make.progress(l1, plain, 30)
    await make.progress(l2, timed, 40)
    await make.progress(l3, plain, 10)
    await make.progress(l3, timed, 20)
    await enrollments.unassign_certification(await make.admin(), internal.id, [_uid(l3)])
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await make.evidence(e1_external, EvidenceStatus.PENDING, submitted_at=at, reevaluate=False)
    await make.evidence(
        e1_external,
        EvidenceStatus.REJECTED,
        submitted_at=at.replace(day=1),
        reviewed_at=at,
        reevaluate=False,
    )
    await make.evidence(e2_external, EvidenceStatus.APPROVED, reviewed_at=at, reevaluate=False)
    admin = await make.admin()
    return World(
        timed.id,
        plain.id,
        third.id,
        fourth.id,
        internal.id,
        recurring.id,
        external.id,
        draft.id,
        l1,
        l2,
        l3,
        e1_internal.id,
        e1_recurring.id,
        e1_external.id,
        e2_internal.id,
        e2_external.id,
        e3_internal.id,
        await users.create_api_token(admin, _uid(l1)),
        await users.create_api_token(admin, _uid(l2)),
    )


# Per read: calls whose first two have one shape and other values (in another order), then
# other shapes; the first call finds rows.
_LINK_CALLS: Callable[[World], list[tuple[Any, ...]]] = lambda w: [  # noqa: E731
    ([w.internal, w.external],),
    ([w.recurring, w.internal],),
    ([w.draft, w.internal, w.recurring, w.external],),
    ([w.external],),
    ([w.internal, w.internal, w.external],),  # duplicates
    ([w.internal, 999_999],),  # no such certification
]
CALLS: dict[str, Callable[[World], list[tuple[Any, ...]]]] = {
    "links_with_versions": _LINK_CALLS,
    "links_versions": _LINK_CALLS,
    "progress_on_certifications": lambda w: [
        ([_uid(w.l1), _uid(w.l2)], [w.internal, w.recurring]),
        ([_uid(w.l3), _uid(w.l2)], [w.draft, w.internal]),
        ([_uid(w.l1)], [w.internal, w.recurring, w.draft]),
        ([_uid(w.l3), _uid(w.l3), _uid(w.l1)], [w.internal, w.internal]),  # duplicates
    ],
    "awards": lambda w: [
        ([w.e1_internal, w.e1_recurring],),
        ([w.e1_recurring, w.e2_internal],),
        ([w.e3_internal, w.e1_recurring, w.e1_internal],),
        ([w.e1_recurring, w.e1_recurring, w.e1_internal],),  # duplicates
    ],
    "evidence_of": lambda w: [
        ([w.e1_external, w.e1_internal],),
        ([w.e2_internal, w.e2_external],),
        ([w.e2_external, w.e1_external, w.e1_internal],),
        ([w.e1_external, w.e1_external, w.e2_external],),  # duplicates
    ],
    "certifications": lambda w: [
        ([w.internal, w.external],),
        ([w.draft, w.recurring],),
        ([w.external, w.recurring, w.internal, w.draft],),
        ([w.draft, w.draft, w.external],),  # duplicates
    ],
    "enrollments_counting": lambda w: [
        (_uid(w.l1), w.timed),
        (_uid(w.l2), w.timed),
        (_uid(w.l3), w.plain),  # ended: no rows
        (_uid(w.l1), w.fourth),
    ],
    "token_rows": lambda w: [
        (hash_token(w.token1),),
        (hash_token(w.token2),),
        (hash_token("cg_unknown"),),
    ],
}


def _shape(arguments: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(len(a) if isinstance(a, list) else -1 for a in arguments)


@pytest.mark.parametrize("name", sorted(PREPARED))
async def test_each_prepared_read_returns_what_its_tortoise_query_returns(
    world: World, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = PREPARED[name]
    calls = CALLS[name](world)
    monkeypatch.setattr(read, "_compiled", {})  # building the world used it
    compile_ = prepared._compile
    compiled: list[Any] = []

    def counting(build: Any, arguments: Any) -> Any:
        compiled.append(arguments)
        return compile_(build, arguments)

    monkeypatch.setattr(prepared, "_compile", counting)
    results = []
    for arguments in calls:
        results.append(await _same(read, *arguments))  # the first of a shape compiles it
        assert await _same(read, *arguments) == results[-1]  # then from the cache

    assert results[0], "the first call finds rows"
    assert results[1] != results[0], "the cached shape binds the second call's values"
    assert _shape(calls[0]) == _shape(calls[1])
    shapes = {_shape(a) for a in calls}
    assert len(read._compiled) == len(shapes)
    assert len(compiled) == len(shapes)  # once per shape


async def test_the_reads_hold_nulls_json_enums_and_ended_enrollments(world: World) -> None:
    found = await reads.certifications([world.external, world.draft])
    assert found[world.external].policy_config["requireMandatoryCourses"] is True
    assert found[world.external].kind is CertificationKind.EXTERNAL
    assert found[world.draft].published_at is None
    links = (await course_links.course_links([world.internal, world.draft]))[world.internal]
    assert [(link.mandatory, link.course.duration_minutes) for link in links] == [
        (True, 45),
        (False, None),
    ]
    awards = await reads.awards([world.e1_internal, world.e1_recurring])
    assert [a.expires_at is None for a in awards] == [True, False]
    evidence = await reads.evidence_of([world.e1_external])
    assert [e.status for e in evidence] == [EvidenceStatus.REJECTED, EvidenceStatus.PENDING]
    assert all(type(e.status) is EvidenceStatus for e in evidence)
    assert await reads.enrollments_counting(_uid(world.l3), world.plain) == []
    counting = await reads.enrollments_counting(_uid(world.l1), world.timed)
    assert [e.certification.id for e in counting] == [world.internal, world.recurring]


async def test_two_list_lengths_are_two_shapes_and_a_long_list_runs_unprepared(
    make: Factory, monkeypatch: pytest.MonkeyPatch, sql_queries: QueryCounter
) -> None:
    monkeypatch.setattr(prepared, "MAX_PREPARED_LIST", 3)
    ids = [(await make.certification(await make.course())).id for _ in range(5)]
    read = reads._certifications
    monkeypatch.setattr(read, "_compiled", {})

    assert {r.id for r in await _same(read, ids[:2])} == set(ids[:2])
    assert {r.id for r in await _same(read, ids[2:5])} == set(ids[2:5])
    assert len(read._compiled) == 2

    sql_queries.reset()
    long = [ids[4], 10_000, *ids[:3]]
    rows = await read(long)
    assert sql_queries.count == 1
    assert sorted(r.id for r in rows) == sorted([ids[4], *ids[:3]])
    assert [_typed(r) for r in sorted(rows, key=_row_id)] == [
        _typed(r) for r in sorted(await _tortoise_rows(read, long), key=_row_id)
    ]
    assert len(read._compiled) == 2
    assert all(isinstance(r, CertificationRecord) for r in rows)


async def test_duplicate_ids_give_the_rows_of_the_tortoise_query(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make.course(), await make.course()
    first, second = await make.certification(a, b), await make.certification(b)
    third = await make.certification(a)
    read = course_links._links_with_versions
    monkeypatch.setattr(read, "_compiled", {})
    for ids, count in (([first.id, first.id, second.id], 3), ([third.id, second.id, third.id], 2)):
        assert len(await _same(read, ids)) == count
    assert len(read._compiled) == 1


def _courses_by_id(build: Callable[..., ValuesListQuery[Any]]) -> PreparedValues[Any]:
    return PreparedValues(build, lambda *r: r)


@pytest.mark.parametrize(
    "argument",
    [True, [1, False], datetime(2026, 1, 1, tzinfo=UTC), None, 1.5, [None]],
    ids=["bool", "bool-in-list", "datetime", "None", "float", "None-in-list"],
)
async def test_an_argument_of_another_type_is_refused_before_any_statement(
    db: None, sql_queries: QueryCounter, argument: Any
) -> None:
    read = _courses_by_id(lambda x: Course.filter(id__in=x).values_list("id"))
    sql_queries.reset()
    with pytest.raises(UnpreparableQuery):
        await read(argument)
    with pytest.raises(UnpreparableQuery):
        await reads._certifications(argument if isinstance(argument, list) else [argument])
    assert sql_queries.count == 0
    assert read._compiled == {} and reads._certifications._compiled == {}


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda x: Course.filter(name=str(x).upper()).values_list("id"), "Plain"),
        (lambda x: Course.filter(id=x + 1).values_list("id"), 1),
        (lambda x: Course.filter(name__icontains=x).values_list("id"), "lai"),  # '%x%'
        (lambda x: Course.filter(name=x).values_list("id"), 5),  # Tortoise sends str(x)
    ],
    ids=["upper", "plus-one", "icontains", "int-as-name"],
)
async def test_an_argument_changed_on_its_way_is_refused_at_compile(
    make: Factory, sql_queries: QueryCounter, build: Any, argument: Any
) -> None:
    await make.course("Plain")
    read = _courses_by_id(build)
    sql_queries.reset()
    with pytest.raises(UnpreparableQuery, match="not plain parameters"):
        await read(argument)
    assert sql_queries.count == 0 and read._compiled == {}


async def test_an_argument_in_a_list_of_the_builder_is_bound(make: Factory) -> None:
    """Not a refusal: a scalar placed in the builder's own list is a plain parameter."""
    a, b, c = await make.course(), await make.course(), await make.course()
    read = _courses_by_id(
        lambda x: Course.filter(id__in=[x, a.id]).order_by("id").values_list("id", "name")
    )
    assert await read(b.id) == await _tortoise_rows(read, b.id) == [(a.id, a.name), (b.id, b.name)]
    assert await read(c.id) == await _tortoise_rows(read, c.id) == [(a.id, a.name), (c.id, c.name)]
    assert len(read._compiled) == 1


@pytest.mark.parametrize(
    ("build", "argument", "error", "message"),
    [
        # Tortoise 1.1 binds LIMIT as a parameter, but refuses the negative int stand-in
        (
            lambda n: Course.all().order_by("id").limit(n).values_list("id"),
            2,
            ParamsError,
            "non-negative",
        ),
        # an enum column checks the str stand-in; an int column converts it
        (
            lambda s: CourseProgress.filter(status=s).values_list("id"),
            "COMPLETED",
            ValueError,
            "not a valid ProgressStatus",
        ),
        (lambda s: Course.filter(id=s).values_list("id"), "1", ValueError, "invalid literal"),
    ],
    ids=["limit", "str-on-enum", "str-on-int"],
)
async def test_tortoise_refuses_some_stand_ins_itself_before_any_statement(
    make: Factory,
    sql_queries: QueryCounter,
    build: Any,
    argument: Any,
    error: type[Exception],
    message: str,
) -> None:
    """Not UnpreparableQuery but Tortoise's own error, at compile: no rows, right or wrong."""
    await make.course()
    read = _courses_by_id(build)
    sql_queries.reset()
    with pytest.raises(error, match=message):
        await read(argument)
    assert not issubclass(error, UnpreparableQuery)
    assert sql_queries.count == 0 and read._compiled == {}
    assert await read.build(argument) is not None  # Tortoise itself runs it


async def test_an_argument_used_twice_is_bound_at_both_places(make: Factory) -> None:
    """Each place of the argument among the parameters gets the call's value (the first
    version bound only the first place: other rows than Tortoise's on SQLite, a DataError on
    PostgreSQL)."""
    timed = await make.course("Timed", duration_minutes=30)
    await make.course("Untimed")
    read = _courses_by_id(
        lambda x: Course.filter(Q(id=x) | Q(duration_minutes=x)).order_by("id").values_list("id")
    )
    for value in (timed.id, 30):
        got = await read(value)
        assert got == await _tortoise_rows(read, value), value
    assert await read(30) == [(timed.id,)]


async def test_a_list_of_two_types_is_refused_and_types_are_part_of_the_shape(
    make: Factory,
) -> None:
    course = await make.course("Named")
    by_id = _courses_by_id(lambda ids: Course.filter(id__in=ids).values_list("id"))
    with pytest.raises(UnpreparableQuery, match="more than one type"):
        await by_id([course.id, str(course.id)])
    by_name = _courses_by_id(lambda name: Course.filter(name=name).values_list("id"))
    assert await by_name("Named") == [(course.id,)]
    # an int is another shape: compiled anew (and refused: Tortoise makes it a str)
    with pytest.raises(UnpreparableQuery, match="not plain parameters"):
        await by_name(7)
    assert len(by_name._compiled) == 1


async def test_a_prepared_read_in_a_transaction_sees_its_writes(make: Factory) -> None:
    existing = await make.certification(await make.course())
    await reads.certifications([existing.id])  # compiled outside the transaction
    async with in_transaction():
        now = datetime(2026, 1, 1, tzinfo=UTC)
        written = await Certification.create(
            name="Written",
            overview="",
            kind=CertificationKind.INTERNAL,
            type=CertificationType.PERPETUAL,
            issuer="",
            recertification_window_days=30,
            state=CertificationState.DRAFT,
            policy_name="all-mandatory",
            policy_config={},
            created_at=now,
            updated_at=now,
        )
        assert set(await reads.certifications([written.id])) == {written.id}
        await written.delete()
    assert await reads.certifications([written.id]) == {}


async def test_the_token_lookup_binds_each_hash_to_its_own_user(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens._token_rows, "_compiled", {})
    now = datetime(2026, 3, 10, tzinfo=UTC)
    first = await tokens.token_by_hash(hash_token(world.token1), now)
    second = await tokens.token_by_hash(hash_token(world.token2), now)
    assert isinstance(first, TokenRecord) and isinstance(second, TokenRecord)
    assert (first.user.id, second.user.id) == (_uid(world.l1), _uid(world.l2))
    assert first.id != second.id
    assert len(tokens._token_rows._compiled) == 1  # the second came from the cache
    assert await tokens.token_by_hash(hash_token("cg_unknown"), now) is None
    again = await tokens.token_by_hash(hash_token(world.token1), now)
    assert isinstance(again, TokenRecord) and again.user.id == _uid(world.l1)


async def test_times_are_tortoises_instants_in_the_standard_librarys_utc(make: Factory) -> None:
    """The quicker DatetimeField conversion (prepared._quicker): the same instants as
    Tortoise's, microseconds included, in datetime.UTC; a NULL stays None."""
    course = await make.course("Timed")
    stamp = datetime(2026, 3, 10, 9, 30, 15, 123456, tzinfo=UTC)
    await Course.filter(id=course.id).update(published_at=stamp)
    read = _courses_by_id(
        lambda x: Course.filter(id=x).values_list("published_at", "retired_at", "id")
    )
    got = await read(course.id)
    assert got == await _tortoise_rows(read, course.id)
    [(published_at, retired_at, _)] = got
    assert published_at == stamp and published_at.tzinfo is UTC
    assert retired_at is None


def test_the_quicker_conversion_hands_anything_unusual_to_tortoise() -> None:
    field = Course._meta.fields_map["published_at"]
    tortoise = field.to_python_value
    quick = prepared._quicker(tortoise)
    assert quick is not tortoise  # the test configuration keeps UTC, as the app's does
    for value in ("2026-03-10 09:30:15", "2026-03-10T09:30:15Z", "2026-03-10 09:30:15+02:00"):
        assert quick(value) == tortoise(value), value
    assert quick(None) is None
    with pytest.raises(ValueError):  # Tortoise's own refusal, not a silent None
        quick("not a time")
    other = Course._meta.fields_map["name"].to_python_value
    assert prepared._quicker(other) is other
