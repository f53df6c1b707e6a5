"""Sign-in with an OpenID provider (issue 15), against a real provider process.

The provider is the certified `oidc-provider` package from npm, run by Node (tests/proof/
oidc/provider.mjs, through tests/proof/oidc_live.py): issuer http://127.0.0.1:<port>, one
public client, Authorization Code + PKCE, JWT access tokens for certgraph's audience.

- A single-page app on an origin of its own, in Debian's headless chromium, signs a person in
  at the provider (its login and consent pages), gets an access token and calls certgraph's
  /graphql cross-origin: the learner is created on that first call, an admin assigns them a
  certification, and the page shows it.
- 200 requests with valid JWTs and 200 with forged ones against two workers: no forged one is
  accepted, and a JWT request costs about what a `cg_` token request costs (keys cached).
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proof.live import (
    DATABASE_INDEPENDENT,
    Client,
    Deployment,
    Server,
    create_certification,
    create_course,
    create_person,
    payload,
    record_figures,
)
from tests.proof.oidc_live import Provider, SpaServer, mint
from tests.proof.test_live_graphiql import Browser, chromium

CLIENT_ID = "certgraph-proof-spa"
AUDIENCE = "urn:certgraph:proof"
SCOPE = "openid profile email certgraph"
RESOURCE_SCOPE = "certgraph"
LEARNER = {
    "name": "Ada Lovelace",
    "email": "ada.lovelace@example.org",
    "email_verified": True,
    "roles": [],
}
ASSIGN = """
mutation($id: ID!, $learner: ID!) {
  assignCertification(certificationId: $id, learnerIds: [$learner]) {
    enrollments { id status } errors { code message }
  }
}
"""
FORGED_PER_KIND = 40  # five kinds: 200 forged tokens
VALID_PEOPLE = 4
VALID_PER_PERSON = 50  # 200 valid tokens
LANES = 4  # concurrent keep-alive connections, spread over the two workers
P50_RATIO_LIMIT = 1.5
GOOGLE_FONTS = "https://fonts.googleapis.com/css"
REFUSAL_NAMES = {
    "wrong_key": ("signature", "kid"),
    "alg_none": ("alg",),
    "hs256_public_key": ("alg",),
    "tampered": ("signature",),
    "expired": ("expired",),
}


@pytest.fixture(scope="module")
def spa() -> SpaServer:
    return SpaServer()  # its port now (the provider's redirect URI); started by its test


@pytest.fixture(scope="module")
def provider(spa: SpaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    running = Provider(
        tmp_path_factory.mktemp("oidc-provider"),
        client_id=CLIENT_ID,
        redirect_uri=spa.redirect_uri,
        audience=AUDIENCE,
        scope=RESOURCE_SCOPE,
        accounts={"ada": LEARNER},
    )
    try:
        yield running.start()
    finally:
        running.stop()


def oidc_settings(provider: Provider) -> dict[str, str]:
    return {"CERTGRAPH_OIDC_ISSUER": provider.issuer, "CERTGRAPH_OIDC_AUDIENCE": AUDIENCE}


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


@pytest.fixture
async def http_admin(deployment: Deployment) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        yield http, deployment.create_admin()


# -- the SPA in a browser ------------------------------------------------------------------


async def sign_in_at_the_provider(browser: Browser, provider: Provider, login: str) -> None:
    """What a person does on the provider's pages: log in, then allow the SPA."""
    await browser.wait_for(
        f"location.origin === {json.dumps(provider.issuer)}"
        " && !!document.querySelector('input[name=login]')"
    )
    await browser.evaluate(
        f"""(() => {{
          const form = document.querySelector('input[name=login]').form;
          form.querySelector('input[name=login]').value = {json.dumps(login)};
          form.querySelector('input[name=password]').value = 'any password';
          form.querySelector('button[type=submit]').click();
          return true;
        }})()"""
    )
    await browser.wait_for("!!document.querySelector('input[name=prompt][value=consent]')")
    await browser.evaluate(
        "document.querySelector('input[name=prompt][value=consent]').form"
        ".querySelector('button[type=submit]').click()"
    )


def page_problems(browser: Browser) -> list[str]:
    """Browser.problems(), less the failed load of the provider's development pages' font."""
    found = []
    for event in browser.events:
        if event.get("method") == "Runtime.exceptionThrown":
            found.append(json.dumps(event["params"]["exceptionDetails"])[:500])
        elif event.get("method") == "Log.entryAdded":
            entry = event["params"]["entry"]
            if entry["level"] == "error" and not entry.get("url", "").startswith(GOOGLE_FONTS):
                found.append(f"{entry['text']} ({entry.get('url')})")
    return found


# Database-independent (live.py): what this adds is the browser's PKCE sign-in and its CORS
# calls; creating and linking people on first sign-in is proved on both databases by the JWT
# proof below and tests/auth/test_sign_in.py.
@DATABASE_INDEPENDENT
async def test_spa_signs_in_with_pkce_and_the_learner_sees_their_certifications(
    deployment: Deployment,
    provider: Provider,
    spa: SpaServer,
    http_admin: tuple[httpx.AsyncClient, str],
    tmp_path: Path,
) -> None:
    http, admin_token = http_admin
    server = await deployment.server(
        **oidc_settings(provider), CERTGRAPH_CORS_ORIGINS=spa.origin
    ).start()
    http.base_url = httpx.URL(server.url)
    admin = Client(http, admin_token)
    course = await create_course(admin, "Analytical Engines")
    certification = await create_certification(admin, "Engine Operator", [course])
    database = deployment.database
    count_ada = 'SELECT count(*) FROM "user" WHERE email = $1'
    assert await database.value(count_ada, LEARNER["email"]) == 0  # unknown before sign-in

    spa.start(
        {
            "issuer": provider.issuer,
            "clientId": CLIENT_ID,
            "redirectUri": spa.redirect_uri,
            "scope": SCOPE,
            "audience": AUDIENCE,
            "graphql": f"{server.url}/graphql",
        }
    )
    try:
        async with chromium(tmp_path / "chromium-profile") as browser:
            await browser.open_page()
            await browser.call("Page.navigate", url=f"{spa.origin}/")
            await browser.wait_for("!document.querySelector('#sign-in').hidden")
            await browser.evaluate("document.querySelector('#sign-in').click()")
            await sign_in_at_the_provider(browser, provider, "ada")
            # Back on the SPA: code exchanged for tokens, certgraph called with the token.
            await browser.wait_for(
                "document.querySelector('#viewer').dataset.id"
                " || document.querySelector('#error').textContent"
            )
            shown = await browser.evaluate(
                """({
                  origin: location.origin,
                  id: document.querySelector('#viewer').dataset.id,
                  name: document.querySelector('#viewer-name').textContent,
                  email: document.querySelector('#viewer-email').textContent,
                  role: document.querySelector('#viewer-role').textContent,
                  error: document.querySelector('#error').textContent,
                })"""
            )
            assert shown["error"] == "", (shown, provider.log()[-2000:], server.log()[-2000:])
            assert shown["origin"] == spa.origin
            assert (shown["name"], shown["email"], shown["role"]) == (
                LEARNER["name"],
                LEARNER["email"],
                "LEARNER",
            )

            # Created on that first call, linked to the provider's issuer and subject.
            rows = await database.rows(
                'SELECT u.id, u.role, i.issuer, i.subject FROM "user" u'
                " JOIN user_identity i ON i.user_id = u.id WHERE u.email = $1",
                LEARNER["email"],
            )
            assert [(row[1], row[2], row[3]) for row in rows] == [
                ("LEARNER", provider.issuer, "ada")
            ]

            assigned = payload(
                await admin.data(ASSIGN, {"id": certification, "learner": shown["id"]}),
                "assignCertification",
            )
            assert len(assigned["enrollments"]) == 1

            await browser.evaluate("document.querySelector('#load-certifications').click()")
            await browser.wait_for(
                "document.querySelector('#certifications').dataset.loaded"
                " || document.querySelector('#error').textContent"
            )
            listed = await browser.evaluate(
                "[...document.querySelectorAll('#certifications li')]"
                ".map((li) => [li.textContent, li.dataset.status])"
            )
            error = await browser.evaluate("document.querySelector('#error').textContent")
            assert error == ""
            assert listed == [["Engine Operator", "ENROLLED"]]
            problems = page_problems(browser)
    finally:
        spa.stop()

    # What the browser sent: every request to loopback but the web font oidc-provider's own
    # development login page asks for (fonts.googleapis.com, which resolves to nothing here);
    # to certgraph, two POSTs from the SPA's origin after a CORS preflight, with the
    # provider's JWT access token (not a cg_ token) for certgraph's audience.
    events = browser.events
    sent = [e["params"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    urls = [request["request"]["url"] for request in sent]
    outside = [r for r in sent if not r["request"]["url"].startswith("http://127.0.0.1:")]
    assert {r["request"]["url"].split("?")[0] for r in outside} <= {GOOGLE_FONTS}, urls
    assert all(r["documentURL"].startswith(f"{provider.issuer}/interaction/") for r in outside)
    to_certgraph = [r for r in sent if r["request"]["url"] == f"{server.url}/graphql"]
    methods = sorted(r["request"]["method"] for r in to_certgraph)
    assert methods == ["OPTIONS", "POST", "POST"], methods
    answered = {
        e["params"]["requestId"]: e["params"]["response"]
        for e in events
        if e.get("method") == "Network.responseReceived"
    }
    # The headers as sent on the wire (with Origin), which requestWillBeSent does not show.
    on_the_wire = {
        e["params"]["requestId"]: e["params"]["headers"]
        for e in events
        if e.get("method") == "Network.requestWillBeSentExtraInfo"
    }
    (preflight,) = [r for r in to_certgraph if r["request"]["method"] == "OPTIONS"]
    asked = {name.lower(): value for name, value in preflight["request"]["headers"].items()}
    assert asked["origin"] == spa.origin, asked
    assert "authorization" in asked["access-control-request-headers"].lower(), asked
    tokens = set()
    for request in to_certgraph:
        if request["request"]["method"] != "POST":
            continue
        assert request["documentURL"].startswith(spa.origin), request
        wire = {k.lower(): v for k, v in on_the_wire[request["requestId"]].items()}
        assert wire.get("origin") == spa.origin, wire
        response = answered[request["requestId"]]
        assert response["status"] == 200, response
        allowed = {name.lower(): value for name, value in response["headers"].items()}
        assert allowed.get("access-control-allow-origin") == spa.origin, allowed
        scheme, _, token = wire["authorization"].partition(" ")
        assert scheme == "Bearer" and not token.startswith("cg_")
        tokens.add(token)
    (token,) = tokens
    header, claims = jwt_part(token, 0), jwt_part(token, 1)
    assert (header["alg"], header["typ"], header["kid"]) == (
        "RS256",
        "at+jwt",
        provider.public_key["kid"],
    )
    assert (claims["iss"], claims["aud"], claims["sub"], claims["client_id"]) == (
        provider.issuer,
        AUDIENCE,
        "ada",
        CLIENT_ID,
    )
    # The sign-in used PKCE with S256: the authorization request carried the challenge.
    authorize = [u for u in urls if u.startswith(f"{provider.issuer}/auth?")]
    assert authorize and "code_challenge_method=S256" in authorize[0], urls
    assert "code_challenge=" in authorize[0]
    # ... and the code was exchanged with its verifier, by the page itself (CORS at the
    # provider), as a public client (no secret).
    exchanges = [
        r["request"]
        for r in sent
        if r["request"]["url"] == f"{provider.issuer}/token" and r["request"]["method"] == "POST"
    ]
    assert len(exchanges) == 1, urls
    exchange = exchanges[0].get("postData", "")
    assert "grant_type=authorization_code" in exchange and "code_verifier=" in exchange
    assert "client_secret" not in exchange
    # No page threw or logged an error, but for the provider page's unresolvable web font.
    assert problems == [], problems
    assert "Traceback" not in server.log()
    record_figures(
        "oidc spa sign-in",
        provider="oidc-provider 9.13.3",
        requests=len(urls),
        certgraph_posts=methods.count("POST"),
        listed=len(listed),
    )


# -- valid and forged JWTs under two workers ---------------------------------------------


async def open_lanes(server: Server) -> list[httpx.AsyncClient]:
    """LANES keep-alive connections, held by at least two of the server's workers."""
    for _ in range(10):
        lanes = [httpx.AsyncClient(base_url=server.url, timeout=30.0) for _ in range(LANES)]
        await asyncio.gather(*(lane.get("/readyz") for lane in lanes))
        if len(server.connections_by_process()) >= 2:
            return lanes
        for lane in lanes:
            await lane.aclose()
    raise AssertionError("every connection went to one worker, ten times")


async def timed(lane: httpx.AsyncClient, token: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await lane.post(
        "/graphql",
        json={"query": "{ viewer { id name role } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return time.perf_counter() - started, response


async def test_forged_jwts_are_refused_and_valid_ones_cost_what_a_token_does(
    deployment: Deployment,
    provider: Provider,
    http_admin: tuple[httpx.AsyncClient, str],
    tmp_path: Path,
) -> None:
    http, admin_token = http_admin
    server = await deployment.server(workers=2, **oidc_settings(provider)).start()
    http.base_url = httpx.URL(server.url)
    admin = Client(http, admin_token)
    admin_email = (await admin.data("{ viewer { email } }"))["viewer"]["email"]
    learner = await create_person(admin, "Token Learner")

    people = [
        {
            "sub": f"valid-{n}-{uuid.uuid4().hex[:6]}",
            "name": f"Valid Person {n}",
            "email": f"valid.{n}.{uuid.uuid4().hex[:6]}@example.org",
            "email_verified": True,
            "roles": [],
            "count": VALID_PER_PERSON + 1,  # one more each for the first sign-in
        }
        for n in range(VALID_PEOPLE)
    ]
    # The attacker claims the admin's e-mail (verified) and the admin role: accepted, any of
    # these would sign in as, or link to, the admin.
    attacker = {
        "sub": "mallory",
        "name": "Mallory",
        "email": admin_email,
        "email_verified": True,
        "roles": ["certgraph-admin"],
        "perKind": FORGED_PER_KIND,
    }
    minted = mint(
        {
            "keysFile": str(provider.keys_file),
            "issuer": provider.issuer,
            "audience": AUDIENCE,
            "clientId": CLIENT_ID,
            "scope": RESOURCE_SCOPE,
            "valid": people,
            "forged": attacker,
        },
        tmp_path,
    )
    first_sign_ins = minted["valid"][:: VALID_PER_PERSON + 1]
    valid = [t for i, t in enumerate(minted["valid"]) if i % (VALID_PER_PERSON + 1)]
    forged: list[dict[str, str]] = minted["forged"]
    assert (len(valid), len(forged)) == (200, 200)
    users_before = await deployment.database.value('SELECT count(*) FROM "user"')

    lanes = await open_lanes(server)
    try:
        serving = server.connections_by_process()
        # Warm up: each person's first sign-in (creates them), the keys fetched by both
        # workers, a token request on every lane.
        for lane, token in zip(lanes, first_sign_ins, strict=True):
            _, response = await timed(lane, token)
            assert response.status_code == 200, response.text
        for _ in range(3):
            await asyncio.gather(*(timed(lane, learner.token) for lane in lanes))
            await asyncio.gather(*(timed(lane, valid[0]) for lane in lanes))

        token_times: list[float] = []
        jwt_times: list[float] = []
        valid_answers: list[tuple[httpx.Response, str]] = []
        forged_answers: list[tuple[httpx.Response, dict[str, str]]] = []

        async def run_lane(index: int) -> None:
            lane = lanes[index]
            for n in range(index, 200, LANES):
                elapsed, response = await timed(lane, learner.token)
                token_times.append(elapsed)
                assert response.status_code == 200, response.text
                elapsed, response = await timed(lane, valid[n])
                jwt_times.append(elapsed)
                valid_answers.append((response, valid[n]))
                _, response = await timed(lane, forged[n]["token"])
                forged_answers.append((response, forged[n]))

        started = time.perf_counter()
        await asyncio.gather(*(run_lane(i) for i in range(LANES)))
        seconds = time.perf_counter() - started
    finally:
        for lane in lanes:
            await lane.aclose()

    names = {person["sub"]: person["name"] for person in people}
    valid_accepted = 0
    for response, token in valid_answers:
        assert response.status_code == 200, response.text
        viewer = response.json()["data"]["viewer"]
        assert (viewer["name"], viewer["role"]) == (names[jwt_part(token, 1)["sub"]], "LEARNER")
        valid_accepted += 1

    forged_accepted = 0
    messages: dict[str, set[str]] = {}
    for response, forgery in forged_answers:
        if response.status_code != 401:
            forged_accepted += 1
            continue
        body = response.json()
        assert body["data"] is None, body
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", body
        # The refusal never echoes the token, nor its payload or signature.
        for part in (forgery["token"], *filter(None, forgery["token"].split("."))):
            assert part not in response.text, (forgery["kind"], response.text)
        messages.setdefault(forgery["kind"], set()).add(error["message"])
    assert forged_accepted == 0, [
        (forgery["kind"], response.status_code, response.text[:300])
        for response, forgery in forged_answers
        if response.status_code != 401
    ]
    assert sorted(messages) == ["alg_none", "expired", "hs256_public_key", "tampered", "wrong_key"]
    # Each refusal names the check that failed (the words are gql/oidc's).
    for kind, words in REFUSAL_NAMES.items():
        for message in messages[kind]:
            assert any(word in message.lower() for word in words), (kind, message)

    # Nothing was created or linked for the attacker; the valid people exist once each.
    database = deployment.database
    assert (
        await database.value("SELECT count(*) FROM user_identity WHERE subject LIKE 'mallory%'")
        == 0
    )
    identities = await database.rows(
        'SELECT i.subject, u.role FROM user_identity i JOIN "user" u ON u.id = i.user_id'
        " ORDER BY i.subject"
    )
    assert identities == sorted((person["sub"], "LEARNER") for person in people)
    users_after = await database.value('SELECT count(*) FROM "user"')
    assert users_after - users_before == VALID_PEOPLE

    p50_token = statistics.median(token_times)
    p50_jwt = statistics.median(jwt_times)
    ratio = p50_jwt / p50_token
    record_figures(
        "oidc jwt proof",
        workers=2,
        workers_holding_connections=len(serving),
        valid=len(valid_answers),
        valid_accepted=valid_accepted,
        forged=len(forged_answers),
        forged_accepted=forged_accepted,
        p50_jwt_ms=round(p50_jwt * 1000, 2),
        p50_token_ms=round(p50_token * 1000, 2),
        ratio=round(ratio, 2),
        seconds=round(seconds, 2),
    )
    record_figures(
        "oidc forged refusals",
        **{kind: " | ".join(sorted(found)) for kind, found in sorted(messages.items())},
    )
    assert len(serving) >= 2, serving
    assert ratio <= P50_RATIO_LIMIT, (p50_jwt, p50_token)
    assert "Traceback" not in server.log()
