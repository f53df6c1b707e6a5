"""docs/api.md's claims about refused documents (issue 13): parse and validation failures
answer HTTP 200 with `"data": null`, and how depth is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from gql.settings import Settings
from tests.api.conftest import GraphQLClient, World

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, max_query_depth=2)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ viewer { ", "GRAPHQL_PARSE_FAILED"),
        ("{ viewr { id } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ viewer { manager { manager { id } } } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_a_document_the_server_will_not_run_answers_data_null(
    graphql_client: GraphQLClient, world: World, document: str, code: str
) -> None:
    result = await graphql_client.run(document, token=world.learner.token)
    assert "data" in result and result["data"] is None
    assert [error["extensions"]["code"] for error in result["errors"]] == [code]
    assert all("path" not in error for error in result["errors"])


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ("{ viewer { id } }", 1),
        ("{ viewer { manager { id } } }", 2),
        ("{ viewer { manager { manager { id } } } }", 3),
        # Fragments count as if written in place; introspection fields count nothing.
        ("{ viewer { ...M } } fragment M on User { manager { manager { id } } }", 3),
        ("{ viewer { ... on User { manager { id } } } }", 2),
        ("{ viewer { manager { id } } __schema { types { fields { type { name } } } } }", 2),
    ],
)
async def test_depth_counts_fields_with_a_selection_set(
    graphql_client: GraphQLClient, world: World, document: str, depth: int
) -> None:
    """The app's limit is 2 here: a depth-2 document runs, a depth-3 one is refused."""
    result = await graphql_client.run(document, token=world.learner.token)
    refused = [e for e in result.get("errors", []) if "maximum operation depth" in e["message"]]
    assert bool(refused) is (depth > 2), result


def test_api_doc_states_these_rules() -> None:
    text = " ".join(API_DOC.read_text().split())
    assert "`{ viewer { manager { id } } }` has depth 2" in text
    assert '`"data": null`' in text
