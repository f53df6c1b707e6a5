"""quality.md security items 1, 3, 8 and 9 through HTTP: authentication, admin-only
mutations, document limits refused before any resolver runs, and production defaults."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.app import create_app
from gql.domain import courses, users
from gql.settings import Settings
from gql.store import models
from tests.api.conftest import SYSTEM, GraphQLClient, World, make_certification, table_counts

CREATE_COURSE = (
    'mutation { createCourse(input: {name: "Refused"}) { course { id } errors { code } } }'
)


class Spy:
    def __init__(self) -> None:
        self.calls = 0


@pytest.fixture
def create_course_spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Counts calls of the domain's create_course made through the API."""
    spy = Spy()
    real = courses.create_course

    async def spying(*args: Any, **kwargs: Any) -> Any:
        spy.calls += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(courses, "create_course", spying)
    return spy


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


# -- 1. authentication -------------------------------------------------------------------


async def test_no_token_is_unauthenticated(graphql_client: GraphQLClient, world: World) -> None:
    assert_unauthenticated(await graphql_client.post("{ viewer { id } }"))


async def test_unknown_token_is_unauthenticated(
    graphql_client: GraphQLClient, world: World
) -> None:
    assert_unauthenticated(
        await graphql_client.post("{ viewer { id } }", token="cg_not-a-real-token")
    )


async def test_non_bearer_authorization_is_unauthenticated(
    graphql_client: GraphQLClient, world: World
) -> None:
    response = await graphql_client.post(
        "{ viewer { id } }", headers={"Authorization": f"Basic {world.learner.token}"}
    )
    assert_unauthenticated(response)
    assert "Bearer" in response.json()["errors"][0]["message"]


async def test_revoked_token_is_unauthenticated(
    graphql_client: GraphQLClient, world: World
) -> None:
    ok = await graphql_client.data("{ viewer { name } }", token=world.learner.token)
    assert ok["viewer"]["name"] == "Lea Learner"
    revoked = await users.revoke_tokens_for_email(SYSTEM, world.learner.user.email)
    assert revoked == 1
    assert_unauthenticated(
        await graphql_client.post("{ viewer { name } }", token=world.learner.token)
    )


async def test_unauthenticated_mutation_runs_no_resolver(
    graphql_client: GraphQLClient, world: World, create_course_spy: Spy
) -> None:
    before = await table_counts()
    assert_unauthenticated(await graphql_client.post(CREATE_COURSE, token="cg_wrong"))
    assert create_course_spy.calls == 0
    assert await table_counts() == before


# -- 3. admin mutations refused for learners ----------------------------------------------


ADMIN_MUTATIONS: dict[str, str] = {
    "createUser": (
        'createUser(input: {name: "Eve", email: "eve@example.com", role: ADMIN}) { user { id } }'
    ),
    # (a token of one's own is anyone's to make: another's is for admins)
    "createApiToken": "createApiToken(userId: $other) { token }",
    "createCourse": 'createCourse(input: {name: "New"}) { course { id } }',
    "updateCourse": 'updateCourse(id: $course, input: {name: "Renamed"}) { course { id } }',
    "createCertification": (
        'createCertification(input: {name: "X", kind: INTERNAL, type: PERPETUAL}) '
        "{ certification { id } }"
    ),
    "updateCertification": (
        'updateCertification(id: $cert, input: {name: "X", kind: INTERNAL, type: PERPETUAL}) '
        "{ certification { id } }"
    ),
    "setCertificationCourses": (
        "setCertificationCourses(certificationId: $cert, courses: [{courseId: $course, "
        "mandatory: true}]) { certification { id } }"
    ),
    "publishCertification": "publishCertification(id: $draft) { certification { id } }",
    "retireCertification": "retireCertification(id: $cert) { certification { id } }",
    "assignCertification": (
        "assignCertification(certificationId: $cert, learnerIds: [$user]) { enrollments { id } }"
    ),
}


@pytest.mark.parametrize("mutation", sorted(ADMIN_MUTATIONS))
async def test_learner_calling_an_admin_mutation_is_forbidden_and_writes_nothing(
    graphql_client: GraphQLClient, world: World, mutation: str
) -> None:
    cert = await make_certification("Published", world.course_ids[:1])
    draft = await make_certification("Draft", world.course_ids[:1], publish=False)
    selection = ADMIN_MUTATIONS[mutation]
    values = {
        "user": world.learner.id,
        "other": world.other.id,
        "course": world.course_gid(0),
        "cert": encode_id("Certification", cert),
        "draft": encode_id("Certification", draft),
    }
    variables = {name: value for name, value in values.items() if f"${name}" in selection}
    declared = ", ".join(f"${name}: ID!" for name in variables)
    document = (
        f"mutation M({declared}) {{ {selection} }}" if declared else f"mutation {{ {selection} }}"
    )
    denials_before = await models.AuditEvent.filter(action__startswith="denied:").count()
    before = await table_counts()

    result = await graphql_client.run(document, variables, token=world.learner.token)

    assert result["data"] == {mutation: None}  # nullable root fields: only its own is null
    assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert result["errors"][0]["path"] == [mutation]
    assert await table_counts() == before
    denials = await models.AuditEvent.filter(action__startswith="denied:").count()
    assert denials == denials_before + 1


async def test_admin_mutation_with_a_malformed_id_is_still_forbidden_for_a_learner(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run(
        'mutation { updateCourse(id: "garbage", input: {name: "x"}) { course { id } } }',
        token=world.learner.token,
    )
    assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]


async def test_learner_recording_progress_for_someone_else_is_forbidden(
    graphql_client: GraphQLClient, world: World
) -> None:
    before = await table_counts()
    result = await graphql_client.run(
        "mutation M($course: ID!, $other: ID!) { recordCourseProgress(input: "
        "{courseId: $course, learnerId: $other, percent: 50}) { progress { percent } } }",
        {"course": world.course_gid(0), "other": world.other.id},
        token=world.learner.token,
    )
    assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert await table_counts() == before
    assert await models.AuditEvent.filter(action__startswith="denied:recordCourseProgress").exists()


# -- 8. document limits, refused before any resolver runs --------------------------------


def _nested_course(depth: int) -> str:
    selection = "id"
    for _ in range(depth):
        selection = f"viewerProgress {{ course {{ {selection} }} }}"
    return selection


LIMIT_BREAKERS: dict[str, str] = {
    # 13+ levels below the mutation field; the limit is 12
    "depth": 'mutation { createCourse(input: {name: "Deep"}) { course { '
    + _nested_course(7)
    + " } } }",
    "aliases": 'mutation { createCourse(input: {name: "A"}) { '
    + " ".join(f"a{i}: errors {{ code }}" for i in range(31))
    + " } }",
    "aliases via fragments": 'mutation { createCourse(input: {name: "F"}) { ...One ...Two } }'
    " fragment One on CoursePayload { "
    + " ".join(f"x{i}: errors {{ code }}" for i in range(16))
    + " } fragment Two on CoursePayload { "
    + " ".join(f"y{i}: errors {{ code }}" for i in range(16))
    + " }",
    "tokens": 'mutation { createCourse(input: {name: "T"}) { ' + "__typename " * 2100 + "} }",
    "circular fragments": 'mutation { createCourse(input: {name: "C"}) { ...A } }'
    " fragment A on CoursePayload { course { id } ...B }"
    " fragment B on CoursePayload { errors { code } ...A }",
}


async def test_a_document_within_the_limits_does_run(
    graphql_client: GraphQLClient, world: World, create_course_spy: Spy
) -> None:
    data = await graphql_client.data(
        'mutation { createCourse(input: {name: "Fine"}) { course { ' + _nested_course(4) + " } } }",
        token=world.admin.token,
    )
    assert data["createCourse"]["course"] == {"viewerProgress": None}
    assert create_course_spy.calls == 1


@pytest.mark.parametrize("case", sorted(LIMIT_BREAKERS))
async def test_limit_breaking_documents_are_refused_before_any_resolver(
    graphql_client: GraphQLClient, world: World, create_course_spy: Spy, case: str
) -> None:
    before = await table_counts()
    result = await graphql_client.run(LIMIT_BREAKERS[case], token=world.admin.token)
    assert result.get("data") is None
    codes = {e["extensions"]["code"] for e in result["errors"]}
    assert codes <= {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}, result["errors"]
    assert create_course_spy.calls == 0
    assert await table_counts() == before


async def test_limit_messages_name_the_limit(graphql_client: GraphQLClient, world: World) -> None:
    async def messages(case: str) -> str:
        result = await graphql_client.run(LIMIT_BREAKERS[case], token=world.admin.token)
        return " ".join(e["message"] for e in result["errors"])

    assert "exceeds maximum operation depth of 12" in await messages("depth")
    assert "Allowed: 30" in await messages("aliases")
    assert "Allowed: 30" in await messages("aliases via fragments")
    assert "more than 2000 tokens" in await messages("tokens")
    assert "Cannot spread fragment" in await messages("circular fragments")


async def test_json_array_batch_is_refused(
    http: httpx.AsyncClient, world: World, create_course_spy: Spy
) -> None:
    before = await table_counts()
    response = await http.post(
        "/graphql",
        json=[{"query": CREATE_COURSE}, {"query": "{ viewer { id } }"}],
        headers={"Authorization": f"Bearer {world.admin.token}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BATCHING_NOT_SUPPORTED"
    assert create_course_spy.calls == 0
    assert await table_counts() == before


async def test_multipart_needs_a_token_before_it_is_read(
    http: httpx.AsyncClient, world: World
) -> None:
    """Uploads are tested in test_uploads*.py; a multipart form is a CORS simple request."""
    form = {"operations": (None, '{"query": "{ viewer { name } }"}'), "map": (None, "{}")}
    refused = await http.post("/graphql", files=form)
    accepted = await http.post(
        "/graphql", files=form, headers={"Authorization": f"Bearer {world.admin.token}"}
    )
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert accepted.status_code == 200
    assert accepted.json() == {"data": {"viewer": {"name": "Ada Admin"}}}


async def test_oversized_body_is_refused(http: httpx.AsyncClient, world: World) -> None:
    response = await http.post(
        "/graphql",
        content=b'{"query": "' + b" " * (1024 * 1024 + 1) + b'{ viewer { id } }"}',
        headers={
            "Authorization": f"Bearer {world.admin.token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413


# -- 9. production configuration -----------------------------------------------------------


async def test_production_has_no_introspection(graphql_client: GraphQLClient, world: World) -> None:
    result = await graphql_client.run(
        "{ __schema { queryType { name } } }", token=world.admin.token
    )
    assert result.get("data") is None
    assert "introspection has been disabled" in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_production_gives_no_field_suggestions(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run("{ viewr { id } }", token=world.admin.token)
    message = result["errors"][0]["message"]
    assert "Cannot query field 'viewr'" in message
    assert "Did you mean" not in message


async def test_production_serves_no_graphiql_and_no_get(
    http: httpx.AsyncClient, world: World
) -> None:
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 405
    query = await http.get(
        "/graphql",
        params={"query": "{ viewer { id } }"},
        headers={"Authorization": f"Bearer {world.admin.token}"},
    )
    assert query.status_code == 405
    assert "POST" in query.headers["allow"]


async def test_internal_errors_are_masked_and_logged_with_the_request_id(
    graphql_client: GraphQLClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(courses, "list_courses", broken)
    with caplog.at_level(logging.ERROR, logger="certgraph.api"):
        response = await graphql_client.post(
            "{ courses { totalCount } }", token=world.learner.token
        )
    assert response.status_code == 200
    assert "secret internal detail" not in response.text
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error."
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "secret internal detail" in str(logged[0].exc_info[1])


async def test_a_plain_client_request_id_is_kept(
    graphql_client: GraphQLClient, world: World
) -> None:
    response = await graphql_client.post(
        "{ viewer { id } }", token=world.learner.token, headers={"X-Request-ID": "trace-12345678"}
    )
    assert response.headers["x-request-id"] == "trace-12345678"
    odd = await graphql_client.post(
        "{ viewer { id } }", token=world.learner.token, headers={"X-Request-ID": "bad id\n"}
    )
    assert odd.headers["x-request-id"] != "bad id\n" and len(odd.headers["x-request-id"]) == 32


# -- debug mode turns the developer aids on ---------------------------------------------------


@pytest.fixture
async def debug_http(db: None) -> Any:
    app = create_app(Settings(debug=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://certgraph.test") as client:
        yield client


async def test_debug_mode_has_graphiql_introspection_and_suggestions(
    debug_http: httpx.AsyncClient, world: World
) -> None:
    page = await debug_http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    auth = {"Authorization": f"Bearer {world.learner.token}"}
    schema = await debug_http.post(
        "/graphql", json={"query": "{ __schema { queryType { name } } }"}, headers=auth
    )
    assert schema.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    anonymous = await debug_http.post(
        "/graphql", json={"query": '{ __type(name: "User") { name } }'}
    )
    assert anonymous.status_code == 200 and anonymous.json()["data"]["__type"]["name"] == "User"
    typo = await debug_http.post("/graphql", json={"query": "{ viewr { id } }"}, headers=auth)
    assert "Did you mean 'viewer'" in typo.json()["errors"][0]["message"]
    still_post_only = await debug_http.get(
        "/graphql", params={"query": "{ viewer { id } }"}, headers=auth
    )
    assert still_post_only.status_code == 400
    assert "not allowed when using GET" in still_post_only.text
