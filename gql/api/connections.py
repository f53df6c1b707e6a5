"""Relay-style pages of the API: one generic `Connection[T]` / `Edge[T]` for every list.

Strawberry names each specialisation after its node (`Connection[User]` is `UserConnection`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import strawberry

from gql.domain.pages import Page

NodeT = TypeVar("NodeT")


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


__all__ = ["Connection", "Edge", "PageInfo"]
