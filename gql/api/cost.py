"""The estimated cost of a document, before anything runs: every field counts once for each
object it may be asked of, a page counts `first` or `last` (20 when absent) and a plain list counts
DEFAULT_LIST_SIZE. Refused above CERTGRAPH_MAX_QUERY_COST with the figure in the error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql.pyutils import Undefined
from strawberry.extensions import SchemaExtension

from gql.api.context import RequestContext


class BuiltSchema(Protocol):
    """A strawberry schema that shows the graphql-core schema it built (CertgraphSchema)."""

    @property
    def graphql_schema(self) -> GraphQLSchema: ...


QUERY_COST_EXCEEDED_CODE = "QUERY_COST_EXCEEDED"
# What a list without `first` (an enrollment's courses, a payload's errors) is assumed to hold.
DEFAULT_LIST_SIZE = 10
DEFAULT_PAGE_SIZE = 20


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class _Estimate:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.max_page_size = max_page_size
        self.memo: dict[tuple[str, int | None], int] = {}
        self.in_progress: set[str] = set()

    def _size(self, node: FieldNode, name: str, default: Any) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                found: Any = int(value.value)
            elif isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
            else:
                found = None
            break
        else:
            found = default
        return found if isinstance(found, int) and not isinstance(found, bool) else None

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        """A page's `first`, else its `last` (both: the larger; the page is refused anyway)."""
        sizes = []
        for name in ("first", "last"):
            argument = definition.args.get(name)
            if argument is not None:
                default = argument.default_value
                size = self._size(node, name, None if default is Undefined else default)
                if size is not None:
                    sizes.append(size)
        size = max(sizes) if sizes else DEFAULT_PAGE_SIZE
        return max(0, min(size, self.max_page_size))

    def selection_set(self, node: SelectionSetNode | None, parent: Any, hint: int | None) -> int:
        """The cost of `node` asked once of an object of type `parent`; `hint` is the size
        of the next list below (the `first` of the page being entered)."""
        if node is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, hint)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, inner, hint)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, hint)
        return total

    def field(
        self, node: FieldNode, parent: GraphQLObjectType | GraphQLInterfaceType, hint: int | None
    ) -> int:
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0  # __typename and introspection: answered without a resolver
        child_hint: int | None = None
        multiplier = 1
        if _is_list(definition.type):
            multiplier = hint if hint is not None else DEFAULT_LIST_SIZE
        elif "first" in definition.args:
            child_hint = self._page_size(node, definition)
        inner = get_named_type(definition.type)
        return 1 + multiplier * self.selection_set(node.selection_set, inner, child_hint)

    def fragment(self, name: str, hint: int | None) -> int:
        key = (name, hint)
        if key in self.memo:
            return self.memo[key]
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return 0  # unknown fragments and cycles never pass validation
        self.in_progress.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        cost = self.selection_set(definition.selection_set, parent, hint)
        self.in_progress.discard(name)
        self.memo[key] = cost
        return cost


def estimate_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    *,
    max_page_size: int,
) -> int:
    root = schema.get_root_type(operation.operation)
    return _Estimate(schema, fragments, variables, max_page_size).selection_set(
        operation.selection_set, root, None
    )


class CostLimit(SchemaExtension):
    """Refuses a document whose estimate is over the limit before any resolver runs, and
    charges the caller's rate-limit bucket by the estimate."""

    def __init__(self, *, max_cost: int, cost_unit: int, report: bool) -> None:
        self.max_cost = max_cost
        self.cost_unit = cost_unit
        self.report = report
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        document = ec.graphql_document
        operation = None if document is None else get_operation_ast(document, ec.operation_name)
        context = ec.context
        if operation is not None and isinstance(context, RequestContext) and document:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            # a runtime Protocol check here was a few per cent of a small request's time
            schema = cast(BuiltSchema, ec.schema)
            self.cost = estimate_cost(
                schema.graphql_schema,
                operation,
                fragments,
                ec.variables or {},
                max_page_size=context.settings.max_page_size,
            )
            refused = self.cost > self.max_cost
            if context.rate_limiting is not None and self.cost_unit and not refused:
                # A refused document costs what any request does (its one token): only what
                # runs is charged by its size.
                context.rate_limiting.charge(self.cost // self.cost_unit)
            if refused and ec.result is None:
                ec.result = GraphQLExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"the query's estimated cost is {self.cost}, over the limit of "
                            f"{self.max_cost}: ask for smaller pages or fewer fields",
                            extensions={
                                "code": QUERY_COST_EXCEEDED_CODE,
                                "cost": self.cost,
                                "maxCost": self.max_cost,
                            },
                        )
                    ],
                )
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.cost} if self.report and self.cost is not None else {}
