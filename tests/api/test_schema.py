"""schema.graphql is the code's SDL, and the SDL keeps every name of the public contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from gql.api.schema import print_sdl

REPO = Path(__file__).resolve().parents[2]
# The repository's own copies: a clone checks itself with nothing beside it.
CONTRACT_TOOL = REPO / "tools" / "check_contract.py"
CONTRACT = REPO / "docs" / "contract.graphql"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_contract", CONTRACT_TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_graphql_is_the_printed_sdl() -> None:
    committed = (REPO / "schema.graphql").read_text()
    assert committed == print_sdl(), (
        "schema.graphql is stale: regenerate it with `certgraph schema > schema.graphql` "
        "(or gql.api.schema.print_sdl())"
    )


def test_sdl_keeps_every_name_of_the_contract() -> None:
    checker = _load_checker()
    problems, count = checker.check(print_sdl(), CONTRACT.read_text())
    assert problems == []
    assert count > 300  # the check really walked the contract


def test_checker_notices_a_missing_name() -> None:
    checker = _load_checker()
    sdl = print_sdl().replace("  overdue: Boolean!\n", "", 1)
    problems, _ = checker.check(sdl, CONTRACT.read_text())
    assert "missing field Enrollment.overdue" in problems


async def test_repeated_documents_are_parsed_and_validated_once() -> None:
    """The limiters' validation rules are shared across requests, so the caches really hit."""
    from strawberry.extensions.parser_cache import DEFAULT_MAXSIZE, _get_parse_cache
    from strawberry.extensions.validation_cache import _get_validate_cache

    from gql.api.schema import build_schema
    from gql.settings import Settings

    schema = build_schema(Settings())
    document = "{ completionPolicies { name } __typename }  # cache probe"
    parses, validations = _get_parse_cache(DEFAULT_MAXSIZE), _get_validate_cache(DEFAULT_MAXSIZE)
    parse_hits, validate_hits = parses.cache_info().hits, validations.cache_info().hits
    for _ in range(3):
        result = await schema.execute(document)  # no request context: refused, after validation
        assert result.errors and result.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    assert parses.cache_info().hits - parse_hits == 2
    assert validations.cache_info().hits - validate_hits == 2
