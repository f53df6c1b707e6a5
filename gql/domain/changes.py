"""Partial updates: a field an update does not name is `UNCHANGED`; `None` clears it.

The API maps a GraphQL input field that was left out (strawberry's UNSET) to `UNCHANGED` and
an explicit `null` to `None`, so "not given" and "cleared" stay apart down to the use case.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, TypeVar

T = TypeVar("T")


class Unchanged(Enum):
    """The value of a field an update leaves as it is."""

    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED


def given(value: object) -> bool:
    """Whether an update names this field (None, a clear, counts as named)."""
    return value is not UNCHANGED


def or_current(value: T | Unchanged, current: T) -> T:
    """The field's value after the update: the new one when named, else the current one."""
    return current if isinstance(value, Unchanged) else value
