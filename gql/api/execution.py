"""The GraphQL executor: strawberry's, with a short cut for plain attributes.

Most of a large answer (Q1: ~1,200 fields, ~70% of them leaves) is scalars, enums and objects
read straight off strawberry objects built in memory. For each such field graphql-core builds
a Path and a resolve info, resolves arguments, calls strawberry's basic resolver (which calls
getattr), checks twice for an awaitable and dispatches through complete_value: several
microseconds for one attribute read.

`FastExecutionContext.execute_fields` reads such a field itself when the field has no
resolver, no field extension, no argument and no resolve middleware, and its type is a scalar,
an enum or an object type (possibly non-null; not a list, interface or union). A leaf is
serialised with its type's own coerce_output_value; an object's sub-fields are executed as
complete_object_value would (with strawberry's is_type_of, which never reads its info). Only a
plain success is taken this way: a null for a non-null field, an exception or awaitable value,
a serialiser that raises or returns null, an object is_type_of refuses, all go through the
inherited `execute_field`, so errors, paths, locations, null bubbling and extensions are
graphql-core's as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = ["FastExecutionContext", "LeafPlan", "ObjectPlan", "field_plans"]


class LeafPlan(NamedTuple):
    """How to complete one field without graphql-core: read `attribute`, serialise."""

    attribute: str
    # The leaf type's bound coerce_output_value, which complete_leaf_value calls.
    coerce: Callable[[Any], Any]
    nullable: bool


class ObjectPlan(NamedTuple):
    """How to complete one field without resolving: read `attribute`, execute sub-fields."""

    attribute: str
    return_type: GraphQLOutputType
    object_type: GraphQLObjectType
    nullable: bool


# strawberry's is_type_of for an object type with interfaces: it never reads its info
# argument, so it can be called without building one. Any other is_type_of might.
STRAWBERRY_IS_TYPE_OF = (
    "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of"
)


def plain_value(
    plan: LeafPlan | ObjectPlan, source: Any, is_awaitable: Callable[[Any], bool]
) -> Any:
    """The attribute's value; None only for a nullable field (complete_value's answer; a
    non-null one is an error); Undefined when the inherited path must decide."""
    try:
        value = getattr(source, plan.attribute)
    except Exception:
        return Undefined
    if value is None:
        return None if plan.nullable else Undefined
    if isinstance(value, Exception) or is_awaitable(value):
        return Undefined
    return value


def complete_leaf(plan: LeafPlan, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The field's completed value, or Undefined when the inherited path must decide."""
    value = plain_value(plan, source, is_awaitable)
    if value is None or value is Undefined:
        return value
    try:
        coerced = plan.coerce(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced


Plans = dict[str, LeafPlan | ObjectPlan]

# Per schema, not per request: the plans of an object type's fields, by field name; a field
# missing from the map takes the inherited path.
_PLANS: WeakKeyDictionary[GraphQLObjectType, Plans] = WeakKeyDictionary()


def field_plan(field_def: GraphQLField) -> LeafPlan | ObjectPlan | None:
    """The plan of a field strawberry resolves with a bare getattr, else None."""
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
    if isinstance(leaf, GraphQLObjectType):
        is_type_of = leaf.is_type_of
        if (
            is_type_of is not None
            and getattr(is_type_of, "__qualname__", None) != STRAWBERRY_IS_TYPE_OF
        ):
            return None
        return ObjectPlan(field.python_name, return_type, leaf, nullable)
    if not is_leaf_type(leaf):
        return None
    leaf_type: GraphQLLeafType = leaf
    return LeafPlan(field.python_name, leaf_type.coerce_output_value, nullable)


def plain_object(plan: ObjectPlan, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The object to execute the sub-fields on, None, or Undefined for the inherited path."""
    value = plain_value(plan, source, is_awaitable)
    if value is None or value is Undefined:
        return value
    is_type_of = plan.object_type.is_type_of
    if is_type_of is not None:
        try:
            accepted = is_type_of(value, None)  # type: ignore[arg-type]
        except Exception:
            return Undefined
        if accepted is not True:
            return Undefined
    return value


def field_plans(object_type: GraphQLObjectType) -> Plans:
    plans = _PLANS.get(object_type)
    if plans is None:
        plans = {}
        for name, field_def in object_type.fields.items():
            plan = field_plan(field_def)
            if plan is not None:
                plans[name] = plan
        _PLANS[object_type] = plans
    return plans


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # A resolve middleware (a schema extension with `resolve`) must see every field.
        self.short_cuts = manager is None or not manager.middlewares
        # Per request: saves the weak-dictionary lookup on each object of a list.
        self.plans: dict[GraphQLObjectType, Plans] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if not self.short_cuts:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = self.plans.get(parent_type)
        if plans is None:
            plans = self.plans[parent_type] = field_plans(parent_type)
        if not plans:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

        # The inherited loop, with the short cuts in front of execute_field.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                node = field_details_list[0].node
                plan = plans.get(node.name.value)
                if plan is not None and not node.arguments:
                    if isinstance(plan, LeafPlan):
                        completed = complete_leaf(plan, source_value, is_awaitable)
                        if completed is not Undefined:
                            results[response_name] = completed
                            continue
                    else:
                        value = plain_object(plan, source_value, is_awaitable)
                        if value is None:
                            results[response_name] = None
                            continue
                        if value is not Undefined:
                            result = self.complete_plain_object(
                                plan,
                                field_details_list,
                                Path(path, response_name, parent_type.name),
                                value,
                                position_context,
                            )
                            results[response_name] = result
                            if is_awaitable(result):
                                awaitable_fields.append(response_name)
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

    def complete_plain_object(
        self,
        plan: ObjectPlan,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        # execute_field's success and error handling, less resolving and complete_value.
        try:
            completed = self.collect_and_execute_subfields(
                plan.object_type, field_details_list, path, value, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self.await_completed(completed, plan.return_type, field_details_list, path)
        return completed

    async def await_completed(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

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
