"""The GraphQL executor: strawberry's, with a short cut for fields that are plain attributes.

`execution_context_class()` picks it only when graphql-core and strawberry are the ones it is
written for (a start-up check); otherwise strawberry's own executor, with one log line.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, NamedTuple, TypeVar
from weakref import WeakKeyDictionary, ref

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

__all__ = [
    "CallPlan",
    "FastExecutionContext",
    "LeafPlan",
    "ObjectPlan",
    "execution_context_class",
    "field_plans",
    "unfit_reason",
]

log = logging.getLogger("certgraph.api")

# The graphql-core releases FastExecutionContext is written for (pyproject.toml declares them).
GRAPHQL_CORE_RANGE = ((3, 3, 2), (3, 4, 0))
# Tests and the bench set this to run strawberry's own executor instead.
STOCK_ONLY = False


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


class CallPlan(NamedTuple):
    """How to complete a field whose resolver is a plain function of its source (no argument,
    info, extension, permission or exception handler; not async): call it, then complete
    its value as `value` says (attribute unused), or graphql-core's way when None."""

    function: Callable[[Any], Any]
    field_def: GraphQLField
    value: LeafPlan | ObjectPlan | None


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


# Values that are never awaitable nor an exception: no need to ask.
PLAIN_LEAF_TYPES = frozenset({str, int, float, bool, datetime, date})


Plan = LeafPlan | ObjectPlan | CallPlan
Plans = dict[str, Plan]
# A selection's fields in order: response name, field details, plan (None: inherited path).
SelectionPlan = tuple[tuple[str, FieldDetailsList, Plan | None], ...]
# An object's fields by name, or a list's items by index, some of them still awaitable.
Gathered = TypeVar("Gathered", dict[str, Any], list[Any])

# Per schema, not per request: the plans of an object type's fields, by field name; a field
# missing from the map takes the inherited path.
_PLANS: WeakKeyDictionary[GraphQLObjectType, Plans] = WeakKeyDictionary()


def field_plan(field_def: GraphQLField) -> LeafPlan | ObjectPlan | CallPlan | None:
    """The plan of a field strawberry resolves with a bare getattr or a plain function of the
    source, else None."""
    resolve = field_def.resolve
    if getattr(resolve, "__name__", None) == "_resolver":
        return call_plan(field_def)
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
    return value_plan(field.python_name, field_def.type)


def value_plan(attribute: str, return_type: GraphQLOutputType) -> LeafPlan | ObjectPlan | None:
    """How to complete a value of `return_type` without graphql-core: a scalar, an enum or an
    object type strawberry's is_type_of checks (or none does); else None."""
    nullable = not isinstance(return_type, GraphQLNonNull)
    leaf = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if isinstance(leaf, GraphQLObjectType):
        is_type_of = leaf.is_type_of
        if (
            is_type_of is not None
            and getattr(is_type_of, "__qualname__", None) != STRAWBERRY_IS_TYPE_OF
        ):
            return None
        return ObjectPlan(attribute, return_type, leaf, nullable)
    if not is_leaf_type(leaf):
        return None
    leaf_type: GraphQLLeafType = leaf
    coerce = leaf_type.coerce_output_value
    if isinstance(leaf_type, GraphQLEnumType):
        coerce = remembered(coerce)
    return LeafPlan(attribute, coerce, nullable)


def call_plan(field_def: GraphQLField) -> CallPlan | None:
    """The plan of a field strawberry resolves (its `_resolver`) by calling a sync function of
    the source alone: what its resolver chain amounts to when the field has no argument,
    extension, permission class or exception handler and the function takes only `self` or
    `root`. Else None."""
    resolve = field_def.resolve
    if field_def.args or closure_value(resolve, "field_exception_handlers") != ():
        return None
    field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.extensions or field.permission_classes:
        return None
    resolver = field.base_resolver
    if (
        resolver is None
        or type(field).get_result is not StrawberryField.get_result
        or type(resolver).__call__ is not StrawberryResolver.__call__
        or resolver.is_async
        or field.arguments
    ):
        return None
    parameters = list(resolver.signature.parameters.values())
    source = resolver.self_parameter or resolver.root_parameter
    if len(parameters) != 1 or source is None or parameters[0] is not source:
        return None
    function = resolver.wrapped_func
    if not callable(function):
        return None
    return CallPlan(function, field_def, value_plan("", field_def.type))


def closure_value(function: Any, name: str) -> Any:
    """The value of a free variable of `function`, Undefined when it has none of that name."""
    code = getattr(function, "__code__", None)
    cells = getattr(function, "__closure__", None)
    if code is None or cells is None or name not in code.co_freevars:
        return Undefined
    try:
        return cells[code.co_freevars.index(name)].cell_contents
    except ValueError:  # an empty cell
        return Undefined


# An enum has few values: more than this means the values are not its members.
MAX_REMEMBERED = 256


def remembered(coerce: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An enum's output coercion, each member's answer kept: strawberry's looks the member up
    by value on every call, a few per cent of a large answer."""
    known: dict[Any, Any] = {}

    def coerce_known(value: Any) -> Any:
        try:
            return known[value]
        except (KeyError, TypeError):
            coerced = coerce(value)
            if len(known) < MAX_REMEMBERED and isinstance(value, Enum):
                known[value] = coerced
            return coerced

    return coerce_known


PLAIN_LISTS = frozenset({list, tuple})


def plain_items(
    object_type: GraphQLObjectType, items: Sequence[Any], is_awaitable: Callable[[Any], bool]
) -> bool:
    """Every item an object `object_type` accepts, none null, an error or awaitable."""
    is_type_of = object_type.is_type_of
    if is_type_of is not None and getattr(is_type_of, "__qualname__", None) != (
        STRAWBERRY_IS_TYPE_OF
    ):
        return False
    for item in items:
        if item is None or isinstance(item, Exception) or is_awaitable(item):
            return False
        if not accepts(object_type, item):
            return False
    return True


def accepts(object_type: GraphQLObjectType, value: Any) -> bool:
    """Whether `object_type`'s is_type_of (strawberry's, which reads no info) takes `value`;
    a failing is_type_of is a refusal, which the inherited path reports."""
    is_type_of = object_type.is_type_of
    if is_type_of is None:
        return True
    try:
        return is_type_of(value, None) is True  # type: ignore[arg-type]
    except Exception:
        return False


def plain_object(plan: ObjectPlan, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The object to execute the sub-fields on, None, or Undefined for the inherited path."""
    value = plain_value(plan, source, is_awaitable)
    if value is None or value is Undefined:
        return value
    return value if accepts(plan.object_type, value) else Undefined


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


def weak_helpers(context: StrawberryGraphQLCoreExecutionContext) -> GraphQLResolveInfoHelpers:
    """The context's gather and track, without a strong reference back to it."""
    weak = ref(context)

    def track(values: Sequence[Any]) -> None:
        alive = weak()
        if alive is not None:  # else the execution is over, nothing is left to settle for it
            alive.track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=_gather, track=track)


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    # graphql-core's gather_async_work, which does not use its context
    return gather_with_cancel(*values)


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context; `execute_fields` reads a plain field itself when the
    field has no resolver, extension, argument or resolve middleware and its type is a scalar,
    an enum or an object type. Anything but a plain success (a null for a non-null field, an
    exception or awaitable value, a failing serialiser, an object is_type_of refuses) goes
    through the inherited `execute_field`, so errors, paths and null bubbling are graphql-core's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # A resolve middleware (a schema extension with `resolve`) must see every field.
        self.short_cuts = manager is None or not manager.middlewares
        # Per request: saves the weak-dictionary lookup on each object of a list.
        self.plans: dict[GraphQLObjectType, Plans] = {}
        # Per request, by the identity of a selection's grouped field set (graphql-core keeps
        # one per selection and type, shared by a list's items; kept here with it, so that
        # its id is not reused): its fields with their plans.
        self.selections: dict[
            int, tuple[GroupedFieldSet, GraphQLObjectType, SelectionPlan | None]
        ] = {}
        # graphql-core's helpers are this context's bound methods: a cycle that left the whole
        # context (the request's, its variables, its collected fields) to the cyclic garbage
        # collector. Through a weak reference the context is freed when the request is done.
        self.async_helpers = weak_helpers(self)

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
        selection = self.selections.get(id(grouped_field_set))
        if (
            selection is None
            or selection[0] is not grouped_field_set
            or selection[1] is not parent_type
        ):
            selection = self.selections[id(grouped_field_set)] = (
                grouped_field_set,
                parent_type,
                self.selection_plan(parent_type, grouped_field_set),
            )
        entries = selection[2]
        if entries is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

        # The inherited loop, with the short cuts in front of execute_field.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in entries:
                if plan is not None:
                    if isinstance(plan, LeafPlan):
                        # plain_value and the leaf's coercion, inlined: most fields of a large
                        # answer are leaves
                        try:
                            value = getattr(source_value, plan.attribute)
                        except Exception:
                            value = Undefined
                        if value is None:
                            if plan.nullable:
                                results[response_name] = None
                                continue
                        elif value is not Undefined and (
                            type(value) in PLAIN_LEAF_TYPES
                            or not (isinstance(value, Exception) or is_awaitable(value))
                        ):
                            try:
                                coerced = plan.coerce(value)
                            except Exception:
                                coerced = None
                            if coerced is not None:
                                results[response_name] = coerced
                                continue
                    elif isinstance(plan, CallPlan):
                        result = self.execute_call(
                            plan,
                            parent_type,
                            source_value,
                            field_details_list,
                            Path(path, response_name, parent_type.name),
                            position_context,
                        )
                        results[response_name] = result
                        if is_awaitable(result):
                            awaitable_fields.append(response_name)
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

    def execute_call(
        self,
        plan: CallPlan,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """execute_field for a CallPlan: the function called on the source, its value completed
        as a plain field's when it is one, else as graphql-core completes a resolved value."""
        return_type = plan.field_def.type
        try:
            value = plan.function(source)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        completion = plan.value
        if value is None:
            if completion is not None and completion.nullable:
                return None
        elif completion is not None and not (
            isinstance(value, Exception) or self.is_awaitable(value)
        ):
            if isinstance(completion, LeafPlan):
                try:
                    coerced = completion.coerce(value)
                except Exception:
                    coerced = None
                if coerced is not None:
                    return coerced
            elif accepts(completion.object_type, value):
                return self.complete_plain_object(
                    completion, field_details_list, path, value, position_context
                )
        return self.complete_resolved(
            plan.field_def, parent_type, field_details_list, path, value, position_context
        )

    def complete_resolved(
        self,
        field_def: GraphQLField,
        parent_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """What graphql-core's execute_field does with a resolver's value: completes it (an
        awaitable, a list, an error, a null) with the field's info, errors handled alike."""
        return_type = field_def.type
        info = self.build_resolve_info(field_def, to_nodes(field_details_list), parent_type, path)
        try:
            if self.is_awaitable(value):
                return self.complete_awaitable_value(
                    return_type, field_details_list, info, path, value, position_context
                )
            completed = self.complete_value(
                return_type, field_details_list, info, path, value, position_context
            )
            if self.is_awaitable(completed):
                return self.await_completed(completed, return_type, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    def selection_plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> SelectionPlan | None:
        """Each field of a selection with its plan (None: the inherited path), worked out once
        per request for each selection: a list's items share theirs. None when no field has
        a plan."""
        plans = self.plans.get(parent_type)
        if plans is None:
            plans = self.plans[parent_type] = field_plans(parent_type)
        if not plans:
            return None
        entries = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            plan = None if node.arguments else plans.get(node.name.value)
            entries.append((response_name, field_details_list, plan))
        return tuple(entries)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        """A list of objects (a page's nodes, a certification's courses) completed item by item
        here, each straight into its sub-fields: graphql-core's path per item is four calls
        deep (complete_list_item_value, complete_value twice, complete_object_value). Taken
        only when every item is a plain object its type accepts and nothing is streamed;
        anything else, and every error, is graphql-core's."""
        item_type = return_type.of_type
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            not self.short_cuts
            or type(result) not in PLAIN_LISTS
            or not isinstance(object_type, GraphQLObjectType)
            or not plain_items(object_type, result, self.is_awaitable)
            or self.get_stream_usage(field_details_list, path) is not None
        ):
            return super().complete_list_value(
                return_type, field_details_list, info, path, result, position_context
            )
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(result):
                item_path = path.add_key(index, None)
                try:
                    sub_fields = self.collect_and_execute_subfields(
                        object_type, field_details_list, item_path, item, position_context
                    )
                except Exception as raw_error:  # re-raised for a non-null item: the list's
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    sub_fields = None
                else:
                    if is_awaitable(sub_fields):
                        sub_fields = self.await_completed(
                            sub_fields, item_type, field_details_list, item_path
                        )
                        awaitable_indices.append(index)
                completed.append(sub_fields)
        except Exception:
            # as graphql-core does: the items already under way are settled, not orphaned
            if awaitable_indices:
                self.settle_in_background([completed[i] for i in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed
        return self.gather_fields(completed, awaitable_indices)

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

    async def gather_fields(self, results: Gathered, awaiting: list[Any]) -> Gathered:
        """`results` with its awaitables at `awaiting` (field names or list indices) awaited:
        graphql-core's get_results and get_completed_results (closures in execute_fields and
        complete_iterable_value)."""
        if len(awaiting) == 1:
            key = awaiting[0]
            results[key] = await results[key]
        else:
            awaited = await gather_with_cancel(*(results[key] for key in awaiting))
            for key, value in zip(awaiting, awaited, strict=True):
                results[key] = value
        return results


# The parameters of graphql-core's completion methods (complete_value and its kin).
COMPLETES = ("return_type", "field_details_list", "info", "path", "result", "position_context")
# The inherited methods FastExecutionContext overrides or calls, with their parameters.
INHERITED = {
    "execute_fields": (
        "parent_type",
        "source_value",
        "path",
        "grouped_field_set",
        "position_context",
    ),
    "execute_field": ("parent_type", "source", "field_details_list", "path", "position_context"),
    "handle_field_error": ("raw_error", "return_type", "field_details_list", "path"),
    "collect_and_execute_subfields": (
        "return_type",
        "field_details_list",
        "path",
        "result",
        "position_context",
    ),
    "settle_in_background": ("awaitables",),
    "complete_list_value": COMPLETES,
    "get_stream_usage": ("field_details_list", "path"),
    "build_resolve_info": ("field_def", "field_nodes", "parent_type", "path"),
    "complete_value": COMPLETES,
    "complete_awaitable_value": COMPLETES,
    # weak_helpers stands in for the helpers graphql-core builds from these two
    "track_async_work": ("values",),
    "gather_async_work": ("values",),
}


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


@strawberry.interface
class ProbeNamed:
    name: str


@strawberry.type
class ProbeLeaf(ProbeNamed):
    count: int

    @strawberry.field
    def twice(self) -> int:
        return self.count * 2


@strawberry.type
class ProbeQuery:
    leaf: ProbeLeaf


def probe() -> str | None:
    """Runs a small schema through FastExecutionContext: None when its short cuts are taken and
    it answers as strawberry's executor does, else what differs."""

    schema = strawberry.Schema(query=ProbeQuery, execution_context_class=FastExecutionContext)
    leaf_type = schema._schema.type_map["ProbeLeaf"]
    root_type = schema._schema.type_map["ProbeQuery"]
    assert isinstance(leaf_type, GraphQLObjectType) and isinstance(root_type, GraphQLObjectType)
    found = {name: type(plan).__name__ for name, plan in field_plans(root_type).items()}
    found.update({name: type(plan).__name__ for name, plan in field_plans(leaf_type).items()})
    if found != {
        "leaf": "ObjectPlan",
        "name": "LeafPlan",
        "count": "LeafPlan",
        "twice": "CallPlan",
    }:
        return f"strawberry's plain fields are not recognised (found {found})"
    root = ProbeQuery(leaf=ProbeLeaf(name="probe", count=3))
    result = schema.execute_sync("{ leaf { name count twice } }", root_value=root)
    expected = {"leaf": {"name": "probe", "count": 3, "twice": 6}}
    if result.errors or result.data != expected:
        return f"the probe query answered {result.data} {result.errors}"
    return None


@cache
def unfit_reason() -> str | None:
    """Why FastExecutionContext must not run with the installed graphql-core and strawberry,
    or None when it fits. Checked once per process."""
    version = importlib.metadata.version("graphql-core")
    low, high = GRAPHQL_CORE_RANGE
    if not low <= version_tuple(version) < high:
        return f"graphql-core {version} is outside the range it is written for (>=3.3.2,<3.4)"
    for name, parameters in INHERITED.items():
        method = getattr(StrawberryGraphQLCoreExecutionContext, name, None)
        if method is None:
            return f"strawberry's execution context has no {name}"
        found = tuple(inspect.signature(method).parameters)[1:]
        if found != parameters:
            return f"{name} takes {found}, not {parameters}"
    try:
        return probe()
    except Exception as exc:  # any failure of the probe means "does not fit"
        return f"the probe failed: {type(exc).__name__}: {exc}"


def execution_context_class() -> type[StrawberryGraphQLCoreExecutionContext]:
    """FastExecutionContext when it fits the installed libraries, else strawberry's own (the
    reason logged once)."""
    if STOCK_ONLY:
        return StrawberryGraphQLCoreExecutionContext
    reason = unfit_reason()
    if reason is not None:
        if not _logged:
            _logged.append(reason)
            log.warning("GraphQL executor: strawberry's own, not the short cut: %s", reason)
        return StrawberryGraphQLCoreExecutionContext
    return FastExecutionContext


_logged: list[str] = []
