"""FastExecutionContext answers exactly as strawberry's own executor and takes its short cuts;
it runs only when the installed graphql-core and strawberry fit, else strawberry's own does."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from types import SimpleNamespace
from typing import Any, ClassVar, NewType, TypeVar, cast

import pytest
import strawberry
from graphql import ExperimentalIncrementalExecutionResults, GraphQLObjectType
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.scalar import scalar

from gql.api import execution
from gql.api.execution import (
    CallPlan,
    FastExecutionContext,
    LeafPlan,
    ObjectPlan,
    execution_context_class,
    field_plans,
    unfit_reason,
)
from gql.api.scalars import SCALAR_MAP
from gql.api.schema import build_schema


@strawberry.enum
class Colour(Enum):
    RED = "red"
    GREEN = "green"


def serialize_code(value: str) -> str | None:
    if value == "raise":
        raise ValueError("cannot serialise this code")
    if value == "none":
        return None
    return value.upper()


Code = NewType("Code", str)
SCALARS = {**SCALAR_MAP, Code: scalar(name="Code", serialize=serialize_code, parse_value=str)}


# The calls of Item's loud and kids, in order.
CALLED: list[str] = []


@strawberry.interface
class Labelled:
    label: str


@strawberry.type
class Tag(Labelled):
    @strawberry.field
    async def echo(self) -> str:
        if self.label == "async error":
            raise ValueError("echo failed")
        return self.label


@strawberry.type
class Item:
    name: str
    colour: Colour
    when: datetime | None
    score: float
    count: int
    flag: bool
    required: str
    code: Code | None
    strict_code: Code
    child: Item | None = None
    children: list[Item] = strawberry.field(default_factory=list)
    tag: Tag = strawberry.field(default_factory=lambda: Tag(label="t"))

    @strawberry.field
    def shout(self, suffix: str = "!") -> str:
        return self.name.upper() + suffix

    @strawberry.field
    async def later(self) -> str:
        if self.name == "async error":
            raise ValueError("later failed")
        return self.name

    # Resolvers that are plain functions of the source: FastExecutionContext calls them
    # itself (CallPlan). `mode` makes them misbehave.
    mode: strawberry.Private[str] = ""

    @strawberry.field
    def loud(self) -> str:
        CALLED.append(f"loud {self.name}")
        if self.mode == "raise":
            raise ValueError("loud failed")
        if self.mode == "none":
            return cast("str", None)
        if self.mode == "awaitable":
            return cast("str", awaited(self.name.upper()))
        if self.mode == "exception":
            return cast("str", ValueError("returned, not raised"))
        return self.name.upper()

    @strawberry.field
    def first_child(self) -> Item | None:
        return self.children[0] if self.children else None

    @strawberry.field
    def kids(self) -> list[Item]:
        CALLED.append(f"kids {self.name}")
        if self.mode == "null kid":
            return [*self.children, cast("Item", None)]
        return self.children

    label_of: str = strawberry.field(resolver=lambda root: root.tag.label)


def item(name: str, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": name,
        "colour": Colour.GREEN,
        "when": datetime(2026, 3, 10, 9, 30, tzinfo=UTC),
        "score": 0.5,
        "count": 3,
        "flag": True,
        "required": "yes",
        "code": "ab",
        "strict_code": "cd",
    }
    values.update(changes)
    return Item(**values)


T = TypeVar("T")


async def awaited(value: T) -> T:
    return value


def fine_items() -> list[Item]:
    first = item("ann", when=None, code=None, child=item("kid", colour=Colour.RED))
    first.children = [item("c1"), item("c2", when=None)]
    return [first, item("bob", colour=Colour.RED, score=1.25, count=-7, flag=False)]


# Each broken item exercises one way a field can fail, and names the field that must take
# graphql-core's path then; built anew for each execution (a coroutine is awaited once).
BROKEN: dict[str, tuple[Callable[[], Item], str | None]] = {
    "required None": (lambda: item("none", required=None), "Item.required"),
    "serializer raises": (lambda: item("raises", code="raise"), "Item.code"),
    "serializer returns None": (lambda: item("nothing", strict_code="none"), "Item.strictCode"),
    "non-null serializer raises": (lambda: item("strict", strict_code="raise"), "Item.strictCode"),
    "exception as value": (lambda: item("exc", code=ValueError("stored error")), "Item.code"),
    "awaitable value": (lambda: item("async", required=awaited("later")), "Item.required"),
    "wrong enum": (lambda: item("enum", colour="purple"), "Item.colour"),
    "int out of range": (lambda: item("big", count=2**40), "Item.count"),
    "null object": (lambda: item("untagged", tag=None), "Item.tag"),
    "null leaf in object": (lambda: item("blank", tag=Tag(label=cast("str", None))), "Tag.label"),
    "not the object type": (lambda: item("alien", tag=SimpleNamespace(label="x")), "Item.tag"),
    "exception as object": (lambda: item("exc", tag=ValueError("no tag")), "Item.tag"),
    "awaitable object": (lambda: item("async", tag=awaited(Tag(label="later"))), "Item.tag"),
    "error in an object's async field": (lambda: item("echo", tag=Tag(label="async error")), None),
    "error in a nullable object": (lambda: item("up", child=item("kid", count=None)), "Item.count"),
    "async error in a nullable object": (lambda: item("up", child=item("async error")), None),
    "resolver raises": (lambda: item("loud", mode="raise"), None),
    "resolver returns None": (lambda: item("loud", mode="none"), None),
    "resolver returns an awaitable": (lambda: item("loud", mode="awaitable"), None),
    "resolver returns an exception": (lambda: item("loud", mode="exception"), None),
    "resolver's list holds a null": (lambda: item("kids", mode="null kid"), None),
}


def items_for(case: str) -> list[Item]:
    return fine_items() if case == "fine" else [item("ok"), BROKEN[case][0]()]


@dataclass
class Root:
    case: str


@strawberry.type
class Query:
    @strawberry.field
    def items(self, info: strawberry.Info) -> list[Item]:
        return items_for(info.root_value.case)

    @strawberry.field
    def maybe_items(self, info: strawberry.Info) -> list[Item | None]:
        return list(items_for(info.root_value.case))


class Counting(FastExecutionContext):
    """Records the fields that took graphql-core's path."""

    executed: ClassVar[list[str]] = []

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        self.executed.append(f"{parent_type.name}.{field_details_list[0].node.name.value}")
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def make_schema(
    context_class: type[StrawberryGraphQLCoreExecutionContext],
    extensions: list[type[SchemaExtension]] | None = None,
) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        execution_context_class=context_class,
        extensions=extensions or [],
        config=StrawberryConfig(scalar_map=SCALARS),
    )


@dataclass
class Answer:
    data: Any
    errors: list[Any]


async def run(schema: strawberry.Schema, document: str, case: str, **variables: Any) -> Answer:
    result = await schema.execute(document, variable_values=variables, root_value=Root(case))
    return Answer(result.data, [error.formatted for error in result.errors or []])


@pytest.fixture
def counting() -> Iterator[list[str]]:
    Counting.executed = []
    yield Counting.executed


FINE = """
query Fine($skip: Boolean!, $include: Boolean!) {
  items {
    __typename n: name name colour when score count flag
    ...Codes
    skipped: name @skip(if: $skip)
    included: colour @include(if: $include)
    shout(suffix: "?") later loud labelOf firstChild { name } kids { name loud }
    child { name colour child { name } }
    children { ... on Item { name when } again: count }
    tag { label ... on Tag { echo __typename } }
    skippedTag: tag @skip(if: $skip) { label }
  }
}
fragment Codes on Item { code strictCode sameCode: code }
"""


@pytest.mark.parametrize(("skip", "include"), [(False, True), (True, False)])
async def test_plain_fields_skip_graphql_core_and_answer_the_same(
    counting: list[str], skip: bool, include: bool
) -> None:
    expected = await run(
        make_schema(StrawberryGraphQLCoreExecutionContext),
        FINE,
        "fine",
        skip=skip,
        include=include,
    )
    answer = await run(make_schema(Counting), FINE, "fine", skip=skip, include=include)

    assert answer == expected
    assert answer.errors == []
    first = answer.data["items"][0]
    assert first["n"] == first["name"] == "ann"
    assert first["__typename"] == "Item"
    assert first["when"] is None
    assert first["children"][0]["when"] == "2026-03-10T09:30:00+00:00"
    assert first["code"] is None
    assert first["sameCode"] is None
    assert first["strictCode"] == "CD"
    assert ("skipped" in first) is not skip
    assert ("included" in first) is include
    assert answer.data["items"][1]["colour"] == "RED"
    assert answer.data["items"][1]["score"] == 1.25
    assert first["child"] == {"name": "kid", "colour": "RED", "child": None}
    assert first["tag"] == {"label": "t", "echo": "t", "__typename": "Tag"}
    assert ("skippedTag" in first) is not skip
    # Only fields with a resolver, lists and __typename went through execute_field.
    assert set(counting) == {
        "Query.items",
        "Item.__typename",
        "Item.shout",
        "Item.later",
        "Item.children",
        "Tag.echo",
        "Tag.__typename",
    }


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("field", ["items", "maybeItems"])
async def test_a_failing_field_gives_the_same_errors_paths_and_nulls(
    counting: list[str], case: str, field: str
) -> None:
    document = (
        f"{{ {field} {{ name colour count required code strictCode tag {{ label echo }}"
        " child { count later } loud kids { name } } }"
    )
    expected = await run(make_schema(StrawberryGraphQLCoreExecutionContext), document, case)
    answer = await run(make_schema(Counting), document, case)

    assert answer == expected
    if case == "awaitable value":
        assert answer.errors == []
        assert answer.data[field][1]["required"] == "later"
    elif case == "resolver returns an awaitable":
        assert answer.errors == []
        assert answer.data[field][1]["loud"] == "LOUD"
    elif case == "awaitable object":
        assert answer.errors == []
        assert answer.data[field][1]["tag"] == {"label": "later", "echo": "later"}
    else:
        assert len(answer.errors) == 1
        assert answer.errors[0]["path"][:2] == [field, 1]
        assert answer.errors[0]["locations"]
    # The failing field took graphql-core's path; the healthy first item did not.
    resolvers = (f"Query.{field}", "Tag.echo", "Item.later")
    slow = [name for name in counting if name not in resolvers]
    expected_slow = BROKEN[case][1]
    assert slow == ([expected_slow] if expected_slow else [])


async def test_a_null_non_null_leaf_reports_its_path_and_nulls_the_item(
    counting: list[str],
) -> None:
    answer = await run(make_schema(Counting), "{ maybeItems { name required } }", "required None")

    assert answer.data == {"maybeItems": [{"name": "ok", "required": "yes"}, None]}
    assert answer.errors == [
        {
            "message": "Cannot return null for non-nullable field Item.required.",
            "locations": [{"line": 1, "column": 21}],
            "path": ["maybeItems", 1, "required"],
        }
    ]
    assert counting == ["Query.maybeItems", "Item.required"]


class Upper(SchemaExtension):
    seen: ClassVar[list[str]] = []

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        self.seen.append(info.field_name)
        result = _next(root, info, *args, **kwargs)
        return result.upper() if isinstance(result, str) else result


async def test_a_resolve_middleware_sees_every_field(counting: list[str]) -> None:
    document = "{ items { name required } }"
    Upper.seen = []
    expected = await run(
        make_schema(StrawberryGraphQLCoreExecutionContext, [Upper]), document, "fine"
    )
    seen_by_default = list(Upper.seen)
    Upper.seen = []
    answer = await run(make_schema(Counting, [Upper]), document, "fine")

    assert answer == expected
    assert answer.data["items"][0] == {"name": "ANN", "required": "YES"}
    assert Upper.seen == seen_by_default
    assert "Item.name" in counting


def test_certgraph_schema_runs_the_fast_context_on_q1_fields() -> None:
    schema = build_schema()
    # `pytest -p tests.api.stock_executor` runs the API suite on strawberry's own executor.
    chosen = StrawberryGraphQLCoreExecutionContext if execution.STOCK_ONLY else FastExecutionContext
    assert schema.execution_context_class is chosen
    assert unfit_reason() is None
    types = schema._schema.type_map

    def plans(name: str) -> dict[str, type]:
        object_type = types[name]
        assert isinstance(object_type, GraphQLObjectType)
        return {field: type(plan) for field, plan in field_plans(object_type).items()}

    enrollment = plans("Enrollment")
    for leaf in ("id", "status", "progressPercent", "dueAt", "overdue", "completedAt"):
        assert enrollment[leaf] is LeafPlan
    assert plans("EnrollmentEdge")["node"] is ObjectPlan
    # built from the view or record when asked for
    assert enrollment["certification"] is CallPlan
    assert plans("CourseProgress")["course"] is CallPlan
    assert {"id", "name", "kind", "type"} <= plans("Certification").keys()
    # A resolver of the source alone is called directly; async ones and those with arguments
    # or info keep graphql-core's path.
    assert enrollment["courses"] is CallPlan
    assert enrollment["pendingCourses"] is CallPlan
    assert "explanation" not in enrollment  # takes info
    assert "courses" not in plans("Certification")  # async
    assert "certifications" not in plans("User")  # arguments, async


async def incremental(
    context_class: type[StrawberryGraphQLCoreExecutionContext], document: str, case: str
) -> list[Any]:
    schema = strawberry.Schema(
        query=Query,
        execution_context_class=context_class,
        config=StrawberryConfig(scalar_map=SCALARS, enable_experimental_incremental_execution=True),
    )
    result = await schema.execute(document, root_value=Root(case))
    assert isinstance(result, ExperimentalIncrementalExecutionResults)
    payloads = [result.initial_result.formatted]
    async for subsequent in result.subsequent_results:
        payloads.append(subsequent.formatted)
    return payloads


@pytest.mark.parametrize("case", ["fine", "required None", "serializer raises"])
async def test_deferred_leaves_arrive_as_with_the_default_executor(
    counting: list[str], case: str
) -> None:
    document = '{ maybeItems { name ... @defer(label: "d") { colour count required code later } } }'
    expected = await incremental(StrawberryGraphQLCoreExecutionContext, document, case)
    payloads = await incremental(Counting, document, case)

    assert payloads == expected
    names = ["ann", "bob"] if case == "fine" else ["ok", items_for(case)[1].name]
    assert [item["name"] for item in payloads[0]["data"]["maybeItems"]] == names
    deferred = [part["data"] for payload in payloads[1:] for part in payload.get("incremental", [])]
    assert deferred[0]["colour"] == "GREEN"
    assert deferred[0]["count"] == 3
    assert not {"Item.name", "Item.colour", "Item.count"} & set(counting)


@pytest.fixture
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The start-up check run anew (it is cached per process), its log line not yet written."""
    monkeypatch.setattr(execution, "STOCK_ONLY", False)
    monkeypatch.setattr(execution, "_logged", [])
    unfit_reason.cache_clear()
    yield
    unfit_reason.cache_clear()


@pytest.mark.parametrize("version", ["3.2.6", "3.3.1", "3.4.0", "4.0.0a1"])
def test_a_graphql_core_outside_the_range_falls_back_with_one_log_line(
    fresh_check: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    version: str,
) -> None:
    installed = importlib.metadata.version

    def version_of(name: str) -> str:
        return version if name == "graphql-core" else installed(name)

    monkeypatch.setattr(execution.importlib.metadata, "version", version_of)
    with caplog.at_level(logging.WARNING, logger="certgraph.api"):
        first = execution_context_class()
        second = execution_context_class()
        build_schema()

    assert first is second is StrawberryGraphQLCoreExecutionContext
    assert [record.getMessage() for record in caplog.records] == [
        "GraphQL executor: strawberry's own, not the short cut: graphql-core"
        f" {version} is outside the range it is written for (>=3.3.2,<3.4)"
    ]


def test_a_changed_strawberry_method_falls_back(
    fresh_check: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def handle_field_error(self: Any, error: Exception, return_type: Any, path: Any) -> None:
        raise AssertionError("not called")

    monkeypatch.setattr(
        StrawberryGraphQLCoreExecutionContext, "handle_field_error", handle_field_error
    )
    with caplog.at_level(logging.WARNING, logger="certgraph.api"):
        assert execution_context_class() is StrawberryGraphQLCoreExecutionContext

    assert len(caplog.records) == 1
    assert "handle_field_error takes ('error', 'return_type', 'path')" in caplog.text


def test_unrecognised_strawberry_resolvers_fall_back(
    fresh_check: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if strawberry renamed the closure it resolves plain fields with.
    monkeypatch.setattr(execution, "field_plan", lambda field_def: None)
    with caplog.at_level(logging.WARNING, logger="certgraph.api"):
        assert execution_context_class() is StrawberryGraphQLCoreExecutionContext

    assert "strawberry's plain fields are not recognised (found {})" in caplog.text


def test_the_installed_libraries_fit(fresh_check: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="certgraph.api"):
        assert execution_context_class() is FastExecutionContext
    assert caplog.records == []


def test_an_enum_fields_coercion_is_remembered_per_member() -> None:
    """`remembered`: each member's answer is the enum type's own, asked once per member."""
    calls: list[object] = []

    def coerce(value: object) -> str:
        calls.append(value)
        if not isinstance(value, Enum):
            raise ValueError("not a member")
        return value.name

    class Colour(Enum):
        RED = "red"
        BLUE = "blue"

    quick = execution.remembered(coerce)
    assert [quick(c) for c in (Colour.RED, Colour.BLUE, Colour.RED, Colour.RED)] == [
        "RED",
        "BLUE",
        "RED",
        "RED",
    ]
    assert calls == [Colour.RED, Colour.BLUE]
    with pytest.raises(ValueError, match="not a member"):  # still refused, every time
        quick("red")
    with pytest.raises(ValueError, match="not a member"):
        quick("red")
    assert calls[2:] == ["red", "red"]


async def test_lists_of_plain_objects_skip_graphql_cores_per_item_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """complete_list_value's short cut: the lists of FINE (items, children) go straight to
    each item's sub-fields; the stock executor takes graphql-core's per-item path."""
    per_item: list[Path] = []
    original = StrawberryGraphQLCoreExecutionContext.complete_list_item_value

    def counted(self: Any, item: Any, results: Any, item_type: Any, *rest: Any) -> bool:
        per_item.append(rest[2])
        return original(self, item, results, item_type, *rest)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "complete_list_item_value", counted)
    variables = {"skip": False, "include": True}
    expected = await run(
        make_schema(StrawberryGraphQLCoreExecutionContext), FINE, "fine", **variables
    )
    assert per_item  # the stock executor's path, which the count watches
    per_item.clear()

    answer = await run(make_schema(FastExecutionContext), FINE, "fine", **variables)

    assert answer == expected
    assert per_item == []


async def test_a_selections_plan_is_worked_out_once_for_all_of_a_lists_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FINE's items share their selections: each is planned once per request, however many
    items, and the answer is the stock executor's."""
    planned: list[tuple[str, tuple[str, ...]]] = []
    original = FastExecutionContext.selection_plan

    def counted(self: Any, parent_type: Any, grouped_field_set: Any) -> Any:
        planned.append((parent_type.name, tuple(grouped_field_set)))
        return original(self, parent_type, grouped_field_set)

    monkeypatch.setattr(FastExecutionContext, "selection_plan", counted)
    variables = {"skip": False, "include": True}
    expected = await run(
        make_schema(StrawberryGraphQLCoreExecutionContext), FINE, "fine", **variables
    )
    answer = await run(make_schema(FastExecutionContext), FINE, "fine", **variables)

    assert answer == expected
    items = answer.data["items"] if answer.data else []
    assert len(items) > 1
    assert len(planned) == len(set(planned))  # no selection planned twice
    # the items' own selection (the one with `shout`): once for all of them
    assert [p for p in planned if "shout" in p[1]] == [
        ("Item", next(p[1] for p in planned if "shout" in p[1]))
    ]


def test_resolvers_of_the_source_alone_are_planned_as_calls() -> None:
    schema = make_schema(FastExecutionContext)
    item_type = schema._schema.type_map["Item"]
    assert isinstance(item_type, GraphQLObjectType)
    plans = field_plans(item_type)

    for name in ("loud", "firstChild", "kids", "labelOf"):
        assert isinstance(plans[name], CallPlan), name
    assert isinstance(plans["loud"].value, LeafPlan)
    assert isinstance(plans["firstChild"].value, ObjectPlan)
    assert plans["kids"].value is None  # a list: completed by graphql-core's complete_value
    # arguments, async
    assert "shout" not in plans
    assert "later" not in plans


@pytest.mark.parametrize(
    "case", ["fine", *(case for case in BROKEN if case.startswith("resolver"))]
)
async def test_a_called_resolver_runs_once_per_field_whatever_it_returns(case: str) -> None:
    document = "{ maybeItems { name loud kids { name } } }"
    CALLED.clear()
    expected = await run(make_schema(StrawberryGraphQLCoreExecutionContext), document, case)
    called_by_stock = sorted(CALLED)
    CALLED.clear()
    answer = await run(make_schema(FastExecutionContext), document, case)

    assert answer == expected
    assert sorted(CALLED) == called_by_stock
    # each item's loud and kids once, in order (a failing non-null loud ends its item before
    # its kids); no kid's (only their names are asked for)
    first, second = (listed.name for listed in items_for(case))
    assert CALLED[:3] == [f"loud {first}", f"kids {first}", f"loud {second}"]
    assert len(CALLED) == (4 if case == "fine" else len(called_by_stock))
