"""FastExecutionContext answers exactly as strawberry's own executor, and takes its short cut."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, NewType

import pytest
import strawberry
from graphql import ExperimentalIncrementalExecutionResults, GraphQLObjectType
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.scalar import scalar

from gql.api.execution import FastExecutionContext, leaf_plans
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

    @strawberry.field
    def shout(self, suffix: str = "!") -> str:
        return self.name.upper() + suffix

    @strawberry.field
    async def later(self) -> str:
        return self.name


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


async def awaited(value: str) -> str:
    return value


def fine_items() -> list[Item]:
    first = item("ann", when=None, code=None, child=item("kid", colour=Colour.RED))
    first.children = [item("c1"), item("c2", when=None)]
    return [first, item("bob", colour=Colour.RED, score=1.25, count=-7, flag=False)]


# Each broken item exercises one way a leaf can fail; built anew for each execution, since a
# coroutine can be awaited only once.
BROKEN: dict[str, Callable[[], Item]] = {
    "required None": lambda: item("none", required=None),
    "serializer raises": lambda: item("raises", code="raise"),
    "serializer returns None": lambda: item("nothing", strict_code="none"),
    "non-null serializer raises": lambda: item("strict", strict_code="raise"),
    "exception as value": lambda: item("exc", code=ValueError("stored error")),
    "awaitable value": lambda: item("async", required=awaited("later")),
    "wrong enum": lambda: item("enum", colour="purple"),
    "int out of range": lambda: item("big", count=2**40),
}


def items_for(case: str) -> list[Item]:
    return fine_items() if case == "fine" else [item("ok"), BROKEN[case]()]


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
    shout(suffix: "?") later
    child { name colour child { name } }
    children { ... on Item { name when } again: count }
  }
}
fragment Codes on Item { code strictCode sameCode: code }
"""
LEAVES = {"name", "colour", "when", "score", "count", "flag", "code", "strictCode"}


@pytest.mark.parametrize(("skip", "include"), [(False, True), (True, False)])
async def test_plain_leaves_skip_graphql_core_and_answer_the_same(
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
    # Only what is not a plain leaf went through execute_field.
    assert {name.split(".")[1] for name in counting} == {
        "items",
        "__typename",
        "shout",
        "later",
        "child",
        "children",
    }


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("field", ["items", "maybeItems"])
async def test_a_failing_leaf_gives_the_same_errors_paths_and_nulls(
    counting: list[str], case: str, field: str
) -> None:
    document = f"{{ {field} {{ name colour count required code strictCode }} }}"
    expected = await run(make_schema(StrawberryGraphQLCoreExecutionContext), document, case)
    answer = await run(make_schema(Counting), document, case)

    assert answer == expected
    if case == "awaitable value":
        assert answer.errors == []
        assert answer.data[field][1]["required"] == "later"
    else:
        assert len(answer.errors) == 1
        assert answer.errors[0]["path"][:2] == [field, 1]
        assert answer.errors[0]["locations"]
    # The failing field took graphql-core's path; the healthy first item did not.
    failing = [name for name in counting if name != f"Query.{field}"]
    assert len(failing) == 1


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


def test_certgraph_schema_runs_the_fast_context_on_q1_leaves() -> None:
    schema = build_schema()
    assert schema.execution_context_class is FastExecutionContext
    types = schema._schema.type_map
    enrollment = types["Enrollment"]
    certification = types["Certification"]
    assert isinstance(enrollment, GraphQLObjectType)
    assert isinstance(certification, GraphQLObjectType)
    assert {"status", "progressPercent", "dueAt", "overdue", "completedAt", "expiresAt"} <= set(
        leaf_plans(enrollment)
    )
    assert {"name", "kind", "type"} <= set(leaf_plans(certification))
    # Objects and fields with a resolver keep graphql-core's path.
    assert "certification" not in leaf_plans(enrollment)
    assert "courses" not in leaf_plans(certification)


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
