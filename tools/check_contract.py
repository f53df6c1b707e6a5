#!/usr/bin/env python3
"""Check that a schema (SDL) keeps every name of the public contract.

Usage: python tools/check_contract.py SCHEMA.graphql [CONTRACT.graphql]
(the contract defaults to the repository's docs/contract.graphql).

Needs graphql-core (strawberry brings it). Prints one line per missing or changed name and
exits 1 if there is any; prints "contract: ok (N names)" and exits 0 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
    get_named_type,
)


def _names(type_) -> str:
    return str(type_)


def check(schema_sdl: str, contract_sdl: str) -> tuple[list[str], int]:
    actual = build_schema(schema_sdl)
    wanted = build_schema(contract_sdl)
    problems: list[str] = []
    count = 0
    for name, want in wanted.type_map.items():
        if name.startswith("__"):
            continue
        count += 1
        have = actual.type_map.get(name)
        if have is None:
            problems.append(f"missing type {name}")
            continue
        if type(have) is not type(want):
            problems.append(
                f"type {name} is a {type(have).__name__}, contract says {type(want).__name__}"
            )
            continue
        if isinstance(want, GraphQLEnumType):
            for value in want.values:
                count += 1
                if value not in have.values:
                    problems.append(f"missing enum value {name}.{value}")
        if isinstance(want, (GraphQLObjectType, GraphQLInterfaceType)):
            have_ifaces = {i.name for i in have.interfaces}
            for iface in want.interfaces:
                if iface.name not in have_ifaces:
                    problems.append(f"{name} does not implement {iface.name}")
        if isinstance(want, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in want.fields.items():
                count += 1
                have_field = have.fields.get(field_name)
                if have_field is None:
                    problems.append(f"missing field {name}.{field_name}")
                    continue
                # Exact, nullability included: a nullable field is how an invisible object
                # reads as null.
                # A root mutation field may be nullable where the contract says non-null: then one
                # refused mutation nulls only itself, not the other mutations of the document.
                relaxed = name == "Mutation" and _names(field.type) == f"{have_field.type}!"
                if _names(have_field.type) != _names(field.type) and not relaxed:
                    problems.append(
                        f"field {name}.{field_name} has type {have_field.type}, "
                        f"contract says {field.type}"
                    )
                for arg_name, arg in getattr(field, "args", {}).items():
                    count += 1
                    have_arg = have_field.args.get(arg_name)
                    if have_arg is None:
                        problems.append(f"missing argument {name}.{field_name}({arg_name})")
                    elif get_named_type(have_arg.type).name != get_named_type(arg.type).name:
                        problems.append(
                            f"argument {name}.{field_name}({arg_name}) has type "
                            f"{have_arg.type}, contract says {arg.type}"
                        )
    return problems, count


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    schema_path = Path(argv[1])
    contract_path = (
        Path(argv[2])
        if len(argv) > 2
        else Path(__file__).resolve().parent.parent / "docs" / "contract.graphql"
    )
    problems, count = check(schema_path.read_text(), contract_path.read_text())
    for line in problems:
        print(f"contract: {line}")
    if problems:
        print(f"contract: {len(problems)} problem(s) against {contract_path.name}")
        return 1
    print(f"contract: ok ({count} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
