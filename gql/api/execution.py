"""The GraphQL executor: strawberry's, with a short cut for plain leaf attributes.

Most of a large answer (Q1: ~1,200 fields, ~70% of them leaves) is scalars and enums read
straight off strawberry objects built in memory. For each such field graphql-core builds a
Path and a resolve info, resolves arguments, calls strawberry's basic resolver (which calls
getattr), checks twice for an awaitable and dispatches through complete_value: several
microseconds for one attribute read and one serialisation.

`FastExecutionContext.execute_fields` reads and serialises such a field itself, but only
when the result is certain to be what the inherited path would produce: the field has no
resolver, no field extension, no argument and no middleware; its type is a scalar or enum
(possibly non-null); the value is neither None, an exception nor an awaitable; and the
serialiser returns a value. In every other case (including a serialiser that raises) the
field goes through the inherited `execute_field`, so errors, paths, locations, null
bubbling and extensions are produced by graphql-core as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    is_leaf_type,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = ["FastExecutionContext", "leaf_plans"]


class LeafPlan(NamedTuple):
    """How to complete one field without graphql-core: read `attribute`, serialise."""

    attribute: str
    # The leaf type's bound coerce_output_value, which complete_leaf_value calls.
    coerce: Callable[[Any], Any]
    nullable: bool


def complete_leaf(plan: LeafPlan, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The field's completed value, or Undefined when the inherited path must decide."""
    try:
        value = getattr(source, plan.attribute)
    except Exception:
        return Undefined
    if value is None:
        # complete_value's answer for a nullable field; a non-null one is an error.
        return None if plan.nullable else Undefined
    if isinstance(value, Exception) or is_awaitable(value):
        return Undefined
    try:
        coerced = plan.coerce(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced


# Per schema, not per request: the plans of an object type's fields, by field name; a field
# missing from the map takes the inherited path.
_PLANS: WeakKeyDictionary[GraphQLObjectType, dict[str, LeafPlan]] = WeakKeyDictionary()


def leaf_plan(field_def: GraphQLField) -> LeafPlan | None:
    """The plan of a field strawberry resolves with a bare getattr to a leaf, else None."""
    resolve = field_def.resolve
    # strawberry's resolver for a field without resolver, extension or exception handler;
    # its other resolvers (also marked `_is_default` when there is no base resolver) build
    # an Info and run field extensions, which the fast path would skip.
    if (
        resolve is None
        or not getattr(resolve, "_is_default", False)
        or getattr(resolve, "__name__", None) != "_get_basic_result"
        or field_def.args
    ):
        return None
    field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(field, StrawberryField)
        or not field.is_basic_field
        or type(field).get_result is not StrawberryField.get_result
        or field.default_resolver is not getattr
    ):
        return None
    return_type = field_def.type
    nullable = not isinstance(return_type, GraphQLNonNull)
    leaf = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if not is_leaf_type(leaf):
        return None
    leaf_type: GraphQLLeafType = leaf
    return LeafPlan(field.python_name, leaf_type.coerce_output_value, nullable)


def leaf_plans(object_type: GraphQLObjectType) -> dict[str, LeafPlan]:
    plans = _PLANS.get(object_type)
    if plans is None:
        plans = {}
        for name, field_def in object_type.fields.items():
            plan = leaf_plan(field_def)
            if plan is not None:
                plans[name] = plan
        _PLANS[object_type] = plans
    return plans


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # A resolve middleware (a schema extension with `resolve`) must see every field.
        self.fast_leaves = manager is None or not manager.middlewares
        # Per request: saves the weak-dictionary lookup on each object of a list.
        self.leaf_plans: dict[GraphQLObjectType, dict[str, LeafPlan]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if not self.fast_leaves:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = self.leaf_plans.get(parent_type)
        if plans is None:
            plans = self.leaf_plans[parent_type] = leaf_plans(parent_type)
        if not plans:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

        # The inherited loop, with the leaf short cut in front of execute_field.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                node = field_details_list[0].node
                plan = plans.get(node.name.value)
                if plan is not None and not node.arguments:
                    completed = complete_leaf(plan, source_value, is_awaitable)
                    if completed is not Undefined:
                        results[response_name] = completed
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results
        return self.gather_fields(results, awaitable_fields)

    async def gather_fields(
        self, results: dict[str, Any], awaitable_fields: list[str]
    ) -> dict[str, Any]:
        # graphql-core's get_results (a closure in Executor.execute_fields).
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results
