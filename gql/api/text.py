"""Text the database cannot store is refused before anything runs: PostgreSQL's text and
JSON columns reject the NUL character (U+0000), so a string holding one, in the document or
in a variable, answers GRAPHQL_VALIDATION_FAILED on both databases alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from gql.api.errors import VALIDATION_FAILED_CODE

NUL = "\x00"


class _FindNul(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: StringValueNode | None = None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if NUL in node.value:
            self.found = node
            return self.BREAK
        return None


def nul_path(value: Any, path: str) -> str | None:
    """Where in a variable's value a string holds NUL (`$input.name`), or None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        items: Iterator[tuple[str, Any]] = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for p, v in items if (found := nul_path(v, p)) is not None), None)


class NulRefusal(SchemaExtension):
    """Refuses a document or variables holding a NUL character, before any resolver runs."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        where: str | None = None
        if ec.query is not None and ("\\u0000" in ec.query or NUL in ec.query):
            finder = _FindNul()
            if ec.graphql_document is not None:
                visit(ec.graphql_document, finder)
            if finder.found is not None and finder.found.loc is not None:
                where = f"a string at offset {finder.found.loc.start} of the document"
        if where is None and ec.variables:
            found = (nul_path(value, f"${name}") for name, value in ec.variables.items())
            path = next((p for p in found if p is not None), None)
            where = None if path is None else f"the variable {path}"
        if where is not None and ec.result is None:
            ec.result = GraphQLExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        f"text must not contain the NUL character (U+0000): found in {where}",
                        extensions={"code": VALIDATION_FAILED_CODE},
                    )
                ],
            )
        yield
