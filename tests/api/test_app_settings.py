"""The app's own settings reach the domain as parameters: the organisation that issues
INTERNAL certifications and the largest page, from the Settings the app was built with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


async def test_two_apps_in_one_process_keep_their_own_settings_and_plugins(
    world: World, data_dir: Path
) -> None:
    """Issue 12 item 2: configuration and services are the app's, not the process's."""
    import httpx

    from gql import hookimpl
    from gql.app import create_app
    from gql.plugins import create_plugin_host
    from plugins.mandatory_subset import MandatorySubset

    class ExtraSubset(MandatorySubset):
        name = "extra-subset"

    class Extra:
        @hookimpl
        def certgraph_completion_policies(self) -> list[object]:
            return [ExtraSubset()]

    first = create_app(
        Settings(data_dir=data_dir / "a", organisation_name="First Org", max_page_size=5)
    )
    second = create_app(
        Settings(data_dir=data_dir / "b", organisation_name="Second Org", max_page_size=50),
        plugins=create_plugin_host(extra=[("extra", Extra())]),
    )
    answers = {}
    for label, app in (("first", first), ("second", second)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
        ) as http:
            headers = {"Authorization": f"Bearer {world.admin.token}"}

            async def run(query: str, headers: dict[str, str] = headers) -> Any:
                response = await http.post("/graphql", json={"query": query}, headers=headers)
                return response.json()

            created = await run(CREATE)
            page = await run("{ courses(first: 20) { totalCount } }")
            policies = await run("{ completionPolicies { name } }")
            answers[label] = (
                created["data"]["createCertification"]["certification"]["issuer"],
                "errors" in page,
                sorted(p["name"] for p in policies["data"]["completionPolicies"]),
            )
    assert answers["first"][:2] == ("First Org", True)  # 20 is over its page size of 5
    assert answers["second"][:2] == ("Second Org", False)
    assert "extra-subset" not in answers["first"][2]
    assert "extra-subset" in answers["second"][2]
