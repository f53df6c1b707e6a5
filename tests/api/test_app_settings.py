"""The app's own settings reach the domain as parameters: the organisation that issues
INTERNAL certifications and the largest page, from the Settings the app was built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gql.settings import Settings
from tests.api.conftest import GraphQLClient, World


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, organisation_name="Acme Academy", max_page_size=5)


CREATE = """
mutation { createCertification(input: {name: "Ours", kind: INTERNAL, type: PERPETUAL}) {
  certification { issuer } errors { code } } }"""


async def test_the_apps_organisation_issues_internal_certifications(
    graphql_client: GraphQLClient, world: World
) -> None:
    data = await graphql_client.data(CREATE, token=world.admin.token)
    assert data["createCertification"] == {
        "certification": {"issuer": "Acme Academy"},
        "errors": [],
    }


@pytest.mark.parametrize(
    "document",
    [
        "{ users(first: 6) { totalCount } }",
        "{ courses(first: 6) { totalCount } }",
        "{ certifications(first: 6) { totalCount } }",
        "{ viewer { certifications(first: 6) { totalCount } } }",
        "{ auditEvents(first: 6) { totalCount } }",
    ],
)
async def test_the_apps_page_size_limit_applies(
    graphql_client: GraphQLClient, world: World, document: str
) -> None:
    result = await graphql_client.run(document, token=world.admin.token)
    assert result["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": ["first"]}
    assert "between 0 and 5" in result["errors"][0]["message"]
    ok = await graphql_client.run(document.replace("6", "5"), token=world.admin.token)
    assert "errors" not in ok
