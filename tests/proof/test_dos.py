"""Issue 11's denial-of-service findings in process, each with its reproduction: work done
before the caller is known, exponential validation, costly documents, rate-limit keys the
caller invents, deep JSON, schema hints, missing headers and Host-built redirects."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from graphql import FragmentDefinitionNode, get_operation_ast, parse

from gql.api import limits
from gql.api.cost import estimate_cost
from gql.api.schema import build_schema, schema_extensions
from gql.settings import Settings
from tests.api.conftest import World, world
from tests.conftest import QueryCounter, sql_queries
from tests.proof.test_guards import bearer, client_for

__all__ = ["client_for", "sql_queries", "world"]  # fixtures, imported for this module

VIEWER = "{ viewer { id } }"


def fragment_bomb(levels: int) -> str:
    """`query{...Fn} fragment F0 on Query{__typename} fragment Fi on Query{...Fi-1 ...Fi-1}`."""
    fragments = ["fragment F0 on Query{__typename}"]
    fragments += [
        f"fragment F{i} on Query{{...F{i - 1} ...F{i - 1}}}" for i in range(1, levels + 1)
    ]
    return f"query{{...F{levels}}} " + " ".join(fragments)


def costly_aliases(count: int) -> str:
    one = (
        "certifications(first: 100) { edges { node { id name courses { course { id name "
        "viewerProgress { status percent } } } } } }"
    )
    return "{ " + " ".join(f"a{i}: {one}" for i in range(count)) + " }"


# -- 1. validation before authentication, in exponential time --------------------------------


class MeasureSpy:
    """Counts the selection sets gql.api.limits walks (validation's own work)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walked = 0
        real = limits._Measure.selection_set

        def counting(measure: Any, node: Any) -> Any:
            self.walked += 1
            return real(measure, node)

        monkeypatch.setattr(limits._Measure, "selection_set", counting)


async def test_a_fragment_bomb_without_a_token_is_refused_before_validation(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = MeasureSpy(monkeypatch)
    http = client_for(rate_limit_per_minute="0")
    response = await http.post("/graphql", json={"query": fragment_bomb(40)})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert spy.walked == 0  # not parsed, not validated


@pytest.mark.parametrize("levels", [22, 40])
async def test_a_fragment_bomb_with_a_token_validates_in_linear_time(
    world: World, client_for: Any, monkeypatch: pytest.MonkeyPatch, levels: int
) -> None:
    spy = MeasureSpy(monkeypatch)
    http = client_for(rate_limit_per_minute="0")
    response = await http.post(
        "/graphql", json={"query": fragment_bomb(levels)}, headers=bearer(world.learner.token)
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
    # 2**levels spreads, yet one walk of the operation, one of each of the levels + 1
    # fragments and one of __typename's empty selection: linear in the document.
    assert spy.walked == levels + 3


def test_alias_and_depth_limits_count_a_fragment_at_each_spread_without_rewalking_it() -> None:
    aliased = "query{...F9} fragment F0 on Query{a: __typename} " + " ".join(
        f"fragment F{i} on Query{{...F{i - 1} ...F{i - 1}}}" for i in range(1, 10)
    )
    allowed = build_schema(Settings(max_aliases=512)).execute_sync(aliased)
    assert not any("aliases" in e.message for e in allowed.errors or [])
    refused = build_schema(Settings(max_aliases=30)).execute_sync(aliased)
    assert refused.errors is not None
    assert [e.message for e in refused.errors] == ["512 aliases found. Allowed: 30"]


def test_the_depth_limit_counts_as_strawberrys_did() -> None:
    schema = build_schema(Settings(max_query_depth=2))
    ok = "{ viewer { manager { id } } }"
    deep = "{ viewer { manager { manager { id } } } }"
    assert not any("depth" in e.message for e in schema.execute_sync(ok).errors or [])
    errors = schema.execute_sync(deep).errors or []
    assert [e.message for e in errors] == ["'anonymous' exceeds maximum operation depth of 2"]


# -- 2. cost -----------------------------------------------------------------------------


def cost_of(document: str, variables: dict[str, Any] | None = None) -> int:
    schema = build_schema().graphql_schema
    parsed = parse(document)
    operation = get_operation_ast(parsed)
    assert operation is not None
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return estimate_cost(schema, operation, fragments, variables or {}, max_page_size=100)


def test_the_cost_grows_with_pages_lists_and_aliases() -> None:
    page = "query($n: Int) { courses(first: $n) { edges { node { id name } } } }"
    assert cost_of(page, {"n": 10}) == 1 + 1 + 10 * (1 + 2)
    assert cost_of(page, {"n": 100}) == 1 + 1 + 100 * (1 + 2)
    assert cost_of(page) == 1 + 1 + 20 * (1 + 2)  # the argument's default
    assert cost_of(costly_aliases(30)) == 30 * cost_of(costly_aliases(1))
    assert cost_of(costly_aliases(1)) < Settings().max_query_cost < cost_of(costly_aliases(30))


async def test_a_costly_document_is_refused_before_any_resolver_runs(
    world: World, client_for: Any, sql_queries: QueryCounter
) -> None:
    http = client_for(rate_limit_per_minute="0")
    await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.learner.token))
    sql_queries.reset()
    response = await http.post(
        "/graphql", json={"query": costly_aliases(30)}, headers=bearer(world.learner.token)
    )
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_COST_EXCEEDED"
    assert error["extensions"]["cost"] == cost_of(costly_aliases(30))
    assert error["extensions"]["maxCost"] == Settings().max_query_cost
    # Only the token lookup reached the database: nothing was resolved.
    assert sql_queries.count == 1, sql_queries.statements


async def test_debug_mode_reports_each_answers_cost(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="0", debug="true")
    response = await http.post(
        "/graphql", json={"query": VIEWER}, headers=bearer(world.learner.token)
    )
    assert response.json()["extensions"] == {"cost": cost_of(VIEWER)}
    production = client_for(rate_limit_per_minute="0")
    quiet = await production.post(
        "/graphql", json={"query": VIEWER}, headers=bearer(world.learner.token)
    )
    assert "extensions" not in quiet.json()


async def test_the_rate_limiter_charges_by_cost(world: World, client_for: Any) -> None:
    # 10 tokens of burst; a document costing over 5 units leaves the bucket in debt.
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="10", rate_limit_cost_unit="100")
    page = "{ courses(first: 100) { edges { node { id name } } } }"  # cost 302: 3 more tokens
    statuses = [
        (
            await http.post("/graphql", json={"query": page}, headers=bearer(world.admin.token))
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


async def test_a_refused_costly_document_is_not_charged_by_its_cost(
    world: World, client_for: Any
) -> None:
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="3", rate_limit_cost_unit="100")
    headers = bearer(world.learner.token)
    refused = await http.post("/graphql", json={"query": costly_aliases(30)}, headers=headers)
    assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_COST_EXCEEDED"
    statuses = [
        (await http.post("/graphql", json={"query": VIEWER}, headers=headers)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]  # the refusal took one token of the burst of 3


# -- 3. rate-limit keys ------------------------------------------------------------------------


async def test_invented_tokens_spend_the_address_bucket(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="20")
    statuses = [
        (
            await http.post(
                "/graphql", json={"query": VIEWER}, headers=bearer("cg_" + secrets.token_hex(16))
            )
        ).status_code
        for _ in range(60)
    ]
    assert statuses.count(401) == 20 and statuses.count(429) == 40
    # A real token is its own caller: not throttled by what the address did.
    real = await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token))
    assert real.status_code == 200


async def test_junk_tokens_cannot_reset_a_throttled_token(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="20", rate_limit_max_keys="50")
    while (
        await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token))
    ).status_code == 200:
        pass
    for _ in range(60):
        await http.post(
            "/graphql", json={"query": VIEWER}, headers=bearer("cg_" + secrets.token_hex(8))
        )
    again = await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token))
    assert again.status_code == 429


# -- 4. the low ones -----------------------------------------------------------------------


async def test_json_nested_5000_deep_is_a_400_not_a_500(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="0")
    for depth in (100, 5000):
        variables = "[" * depth + "]" * depth
        body = '{"query": "{ viewer { id } }", "variables": {"x": ' + variables + "}}"
        response = await http.post(
            "/graphql",
            content=body,
            headers={**bearer(world.admin.token), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (depth, response.text[:200])
        assert "nests deeper than 64 levels" in response.text


HINTED = {
    "argument": "{ courses(frist: 1) { totalCount } }",
    "enum value": "{ certifications(sort: RELEVANC) { totalCount } }",
    "type": "query($s: CertificationSrot) { viewer { id } }",
    "input field": 'mutation { createCourse(input: {nmae: "x", name: "y"}) { errors { code } } }',
    "field": "{ viewer { nmae } }",
}


@pytest.mark.parametrize("case", sorted(HINTED))
async def test_production_answers_carry_no_schema_hints(
    world: World, client_for: Any, case: str
) -> None:
    http = client_for(rate_limit_per_minute="0")
    response = await http.post(
        "/graphql", json={"query": HINTED[case]}, headers=bearer(world.admin.token)
    )
    messages = [e["message"] for e in response.json()["errors"]]
    assert messages and not any("Did you mean" in m for m in messages), messages
    debug = client_for(rate_limit_per_minute="0", debug="true")
    hinted = await debug.post(
        "/graphql", json={"query": HINTED[case]}, headers=bearer(world.admin.token)
    )
    assert any("Did you mean" in e["message"] for e in hinted.json()["errors"])


async def test_every_api_answer_is_nosniff_and_no_store(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="6", rate_limit_burst="1")
    answers = [
        await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token)),
        await http.post("/graphql", json={"query": VIEWER}, headers=bearer(world.admin.token)),
        await http.post("/graphql", json={"query": VIEWER}),
        await http.post("/graphql", content=b"{", headers={"Content-Type": "application/json"}),
    ]
    assert [a.status_code for a in answers] == [200, 429, 401, 429]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


async def test_no_redirect_is_built_from_the_host_header(world: World, client_for: Any) -> None:
    http = client_for(rate_limit_per_minute="0")
    response = await http.get("/files/evidence/1/?sig=secret", headers={"Host": "attacker.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    graphql = await http.post(
        "/graphql/", json={"query": VIEWER}, headers={"Host": "attacker.example"}
    )
    assert "location" not in graphql.headers


def test_the_extensions_keep_one_rule_class_per_schema() -> None:
    """A new validation-rule class per request would make strawberry's ValidationCache miss."""
    per_request = [
        [type(e).__name__, *getattr(e, "validation_rules", ())]
        for e in (f() for f in schema_extensions(Settings()) if not isinstance(f, type))
    ]
    again = [
        [type(e).__name__, *getattr(e, "validation_rules", ())]
        for e in (f() for f in schema_extensions(Settings()) if not isinstance(f, type))
    ]
    limits = [r for r in per_request if r[0] == "AddValidationRules"]
    assert limits and limits[0][1].__name__ == "DocumentLimitsRule"
    assert per_request != again  # a schema built anew has classes of its own ...
    extensions = schema_extensions(Settings())
    made = [f() for f in extensions if not isinstance(f, type)]
    made_again = [f() for f in extensions if not isinstance(f, type)]
    assert [getattr(e, "validation_rules", None) for e in made] == [
        getattr(e, "validation_rules", None) for e in made_again
    ]  # ... but requests of one schema share them
