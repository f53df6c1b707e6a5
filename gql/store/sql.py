"""Hand-written SQL for the queries the ORM can't express well: computed sort keys + keysets.

Portable across SQLite and PostgreSQL: placeholders and datetime parameters follow the
dialect of the default connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.connection import get_connection


def _dialect() -> str:
    return str(get_connection("default").capabilities.dialect)


@dataclass
class Sql:
    """Collects SQL text and parameters; `p(value)` returns the right placeholder."""

    dialect: str = field(default_factory=_dialect)
    params: list[Any] = field(default_factory=list)

    def p(self, value: Any) -> str:
        if isinstance(value, datetime):
            value = self.datetime_value(value)
        self.params.append(value)
        # numbered placeholders on both, so parameters may be bound in any textual order
        return f"?{len(self.params)}" if self.dialect == "sqlite" else f"${len(self.params)}"

    def ps(self, values: Iterable[Any]) -> str:
        """Placeholders for a list of values, e.g. the inside of IN (...)."""
        return ",".join(self.p(value) for value in values)

    def datetime_value(self, value: datetime) -> Any:
        value = value.astimezone(UTC)
        # SQLite stores Tortoise datetimes as text in str(datetime) form; comparing against
        # the same form keeps text order equal to time order.
        return str(value) if self.dialect == "sqlite" else value

    def like(self, column: str, text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        op = "LIKE" if self.dialect == "sqlite" else "ILIKE"
        return f"{column} {op} {self.p('%' + escaped + '%')} ESCAPE '\\'"


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY term. A nullable expression must follow a key that orders its NULLs."""

    expr: str
    alias: str
    descending: bool = False


def keyset_condition(sql: Sql, keys: list[SortKey], after: list[Any]) -> str:
    """Rows strictly after the cursor `after` in the order `keys` (mixed directions, NULLs).

    Expands the row comparison into OR branches; a NULL cursor value only matches NULL and
    never has a "greater" branch, because the flag key before it already ordered the NULLs.
    """
    branches: list[str] = []
    for i, key in enumerate(keys):
        if after[i] is None:
            continue  # bind no parameters for a branch that is not emitted
        terms: list[str] = []
        for prev, value in zip(keys[:i], after[:i], strict=True):
            terms.append(
                f"{prev.expr} IS NULL" if value is None else f"{prev.expr} = {sql.p(value)}"
            )
        value = after[i]
        op = "<" if key.descending else ">"
        terms.append(f"{key.expr} {op} {sql.p(value)}")
        branches.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(branches) + ")" if branches else "1=0"


def order_by(keys: list[SortKey]) -> str:
    return ", ".join(f"{k.expr} {'DESC' if k.descending else 'ASC'}" for k in keys)


async def fetch(sql_text: str, sql: Sql) -> list[dict[str, Any]]:
    rows = await get_connection("default").execute_query_dict(sql_text, sql.params)
    return rows
