"""Relay-style pages of the API: one generic `Connection[T]` / `Edge[T]` for every list, and
one set of page arguments (`first`, `after`, `last`, `before`) for every connection field.

Strawberry names each specialisation after its node (`Connection[User]` is `UserConnection`).
A connection field is declared with `@connection_field(...)` and takes `paging: PageRequest`
where the four arguments go; the domain checks the request (gql.domain.pages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import strawberry
from graphql import FieldNode
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField

from gql.domain.pages import Page, PageRequest

NodeT = TypeVar("NodeT")

# The resolver parameter the page arguments replace.
PAGING = "paging"


def _argument(name: str, type_: type, description: str) -> StrawberryArgument:
    return StrawberryArgument(
        python_name=name,
        graphql_name=None,
        type_annotation=StrawberryAnnotation(type_ | None),
        description=description,
        default=None,
    )


_PAGE_ARGUMENTS = (
    _argument(
        "first",
        int,
        "Page forward: this many rows (0 to the largest page; 20 when neither first nor last "
        "is given).",
    ),
    _argument("after", str, "Page forward from this cursor."),
    _argument(
        "last",
        int,
        "Page backward: this many rows, from the end of the list unless `before` is given "
        "(0 to the largest page; not with first or after).",
    ),
    _argument("before", str, "Page backward from this cursor (not with after)."),
)


class PageArguments(FieldExtension):
    """Puts Relay's page arguments where the resolver has its `paging` parameter, and hands
    the resolver their PageRequest, bounded by the deployment's largest page."""

    def apply(self, field: StrawberryField) -> None:
        names = [argument.python_name for argument in field.arguments]
        if PAGING not in names:  # applied already: a field is shared by every schema built
            assert "first" in names, f"{field.name} takes no `{PAGING}`"
            return
        arguments: list[StrawberryArgument] = []
        for argument in field.arguments:
            if argument.python_name == PAGING:
                arguments.extend(_PAGE_ARGUMENTS)
            else:
                arguments.append(argument)
        field.arguments = arguments

    async def resolve_async(
        self,
        next_: AsyncExtensionResolver,
        source: Any,
        info: strawberry.Info,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        **kwargs: Any,
    ) -> Any:
        paging = PageRequest(first, after, last, before, info.context.settings.max_page_size)
        return await next_(source, info, **{PAGING: paging}, **kwargs)


def connection_field(
    description: str | None = None,
) -> Callable[[Callable[..., Any]], StrawberryField]:
    """A connection field: its resolver takes `paging: PageRequest` for the page arguments."""

    def decorate(resolver: Callable[..., Any]) -> StrawberryField:
        return strawberry.field(resolver, description=description, extensions=[PageArguments()])

    return decorate


# A connection's fields that read no node.
NODELESS_FIELDS = frozenset({"totalCount", "pageInfo", "__typename"})


def asks_for_nodes(info: strawberry.Info) -> bool:
    """Whether the document may read this connection field's nodes (edges, or a fragment,
    which is taken to ask for them): when it may not, a list need not build them."""
    raw = getattr(info, "_raw_info", None)  # strawberry's; without it, build the nodes
    if raw is None:
        return True
    for field_node in raw.field_nodes:
        selection_set = field_node.selection_set
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.name.value not in NODELESS_FIELDS:
                return True
    return False


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[Any], nodes: Iterable[NodeT]) -> Connection[NodeT]:
        """The page's nodes, one per item of `page.items` and in the same order."""
        return cls(
            edges=[
                Edge(cursor=cursor, node=node)
                for node, cursor in zip(nodes, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )

    @classmethod
    def nodeless(cls, page: Page[Any]) -> Connection[NodeT]:
        """The page without its nodes, for a document that reads none (asks_for_nodes)."""
        return cls(edges=[], page_info=PageInfo.of(page), total_count=page.total_count)


__all__ = [
    "Connection",
    "Edge",
    "PageArguments",
    "PageInfo",
    "asks_for_nodes",
    "connection_field",
]
