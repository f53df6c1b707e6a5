"""Typed wrappers of strawberry.field/mutation for resolvers that carry a description.

`@strawberry.field(description=...)` is typed as returning Any, which strict mypy reports as
an untyped decorator; passing the resolver positionally keeps the type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField


def described(description: str) -> Callable[[Callable[..., Any]], StrawberryField]:
    def decorate(resolver: Callable[..., Any]) -> StrawberryField:
        return strawberry.field(resolver, description=description)

    return decorate


def described_mutation(description: str) -> Callable[[Callable[..., Any]], StrawberryField]:
    def decorate(resolver: Callable[..., Any]) -> StrawberryField:
        return strawberry.mutation(resolver, description=description)

    return decorate
