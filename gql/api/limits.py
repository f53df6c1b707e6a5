"""Depth and alias limits in linear time: each fragment is measured once per document and
reused at every spread (a spread re-walked per use makes `F1{...F0 ...F0} F2{...F1 ...F1}`
exponential). A wall-clock budget stops validation as a backstop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation.validate import ValidationAbortedError


@dataclass(frozen=True, slots=True)
class Shape:
    """What limits look at in a selection set: nesting depth and aliased fields."""

    depth: int
    aliases: int


_EMPTY = Shape(0, 0)


class _Measure:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, Shape] = {}
        self.in_progress: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None) -> Shape:
        if node is None:
            return _EMPTY
        depth = aliases = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                aliases += inner.aliases + (1 if selection.alias else 0)
                # Introspection fields do not count toward depth (strawberry's rule).
                if selection.selection_set and not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
            elif isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return Shape(depth, aliases)

    def fragment(self, name: str) -> Shape:
        found = self.memo.get(name)
        if found is not None:
            return found
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return _EMPTY  # unknown fragments and cycles are graphql-core's errors to report
        self.in_progress.add(name)
        shape = self.selection_set(definition.selection_set)
        self.in_progress.discard(name)
        self.memo[name] = shape
        return shape


def document_limits_rule(
    *, max_depth: int, max_aliases: int, budget_seconds: float
) -> type[ValidationRule]:
    """A validation rule class for these limits (one class per schema, so strawberry's
    ValidationCache keeps hitting)."""

    class DocumentLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.deadline = time.monotonic() + budget_seconds
            self.nodes = 0
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            measure = _Measure(fragments)
            aliases = 0
            for definition in document.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                shape = measure.selection_set(definition.selection_set)
                aliases += shape.aliases
                if shape.depth > max_depth:
                    name = definition.name.value if definition.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            definition,
                        )
                    )
            if aliases > max_aliases:
                context.report_error(
                    GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}")
                )

        def enter(self, node: Node, *args: Any) -> None:
            # Every node of the document passes here once: a cheap clock check each 64 nodes.
            self.nodes += 1
            if self.nodes % 64 == 0 and time.monotonic() > self.deadline:
                raise ValidationAbortedError(
                    f"the document took longer than {budget_seconds:g} s to validate"
                )

    return DocumentLimitsRule
