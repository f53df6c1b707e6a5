"""examples/spa (issues 17, 18) in Debian's headless chromium set to America/Los_Angeles, from
an origin of its own: a learner pages, starts, records progress and uploads dated proof, which
enters their manager's open review queue live; the manager approves it in another browser
context, and the learner's open page follows over its subscription, without a reload, showing
the day earned as given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.files.samples import pdf
from tests.proof.live import (
    CREATE_CERTIFICATION,
    PUBLISH,
    Client,
    Deployment,
    create_certification,
    create_course,
    payload,
    record_figures,
)
from tests.proof.spa_live import BUILD_STAMP, SPA_DIR, SpaServer, build, inputs_digest
from tests.proof.test_live_graphiql import WAIT_SECONDS, Browser, chromium

TIME_ZONE = "America/Los_Angeles"
PAGE_SIZE = 5
FILLERS = [f"Catalogue {n:02d}" for n in range(1, 11)]
INTERNAL = "Security Champion"
EXTERNAL = "Certified Cloud Architect"
COURSES = ["Secure Coding Basics", "Threat Modelling"]
COMPLETED_ON = "2026-11-20"
COMPLETED_ON_SHOWN = "Nov 20, 2026"
DAY_BEFORE_SHOWN = "Nov 19, 2026"

CREATE_USER = """
mutation($input: UserInput!) { createUser(input: $input) { user { id } errors { code message } } }
"""
CREATE_TOKEN = """
mutation($id: ID!) { createApiToken(userId: $id) { token errors { code message } } }
"""
CATALOG = "{ certifications(sort: RELEVANCE, first: 100) { edges { node { name } } } }"
ENROLLMENT = """
query($id: ID!) { certification(id: $id) { viewerEnrollment { status completedOn expiresOn } } }
"""


@pytest.fixture(scope="module")
def spa_dist() -> Path:
    """examples/spa built once for this run (`make proof` has built it already)."""
    return build()


class Page:
    """One tab on the shared CDP connection: its own session, its own events."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.browser.session = self.session
        return await self.browser.call(method, **params)

    async def evaluate(self, expression: str) -> Any:
        self.browser.session = self.session
        return await self.browser.evaluate(expression)

    async def wait_for(self, expression: str) -> Any:
        self.browser.session = self.session
        return await self.browser.wait_for(expression)

    def events(self, method: str) -> list[dict[str, Any]]:
        return [
            event["params"]
            for event in self.browser.events
            if event.get("sessionId") == self.session and event.get("method") == method
        ]

    def problems(self) -> list[str]:
        """Exceptions the page threw, errors and warnings it logged (React's among them), but
        the line a browser writes for every non-2xx answer (the refused token's 401 is on
        purpose)."""
        found = [
            json.dumps(event["exceptionDetails"])[:500]
            for event in self.events("Runtime.exceptionThrown")
        ]
        for event in self.events("Log.entryAdded"):
            entry = event["entry"]
            if entry["level"] == "error" and entry.get("source") != "network":
                found.append(f"{entry['text']} ({entry.get('url')})")
        for event in self.events("Runtime.consoleAPICalled"):
            if event["type"] in ("error", "warning", "assert"):
                found.append(json.dumps(event["args"])[:500])
        return found

    async def load(self, method: str, **params: Any) -> None:
        """Page.navigate or Page.reload, returning once the new document has loaded (a script
        evaluated while it is replaced would fail)."""
        loaded = len(self.events("Page.loadEventFired"))
        await self.call(method, **params)
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while len(self.events("Page.loadEventFired")) == loaded:
            assert asyncio.get_running_loop().time() < deadline, f"{method} did not load"
            await asyncio.sleep(0.05)

    async def text(self, selector: str) -> str:
        found: str = await self.evaluate(
            f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"
        )
        return found

    async def fill(self, selector: str, value: str) -> None:
        await self.evaluate(
            f"""(() => {{
              const input = document.querySelector({json.dumps(selector)});
              input.value = {json.dumps(value)};
              input.dispatchEvent(new Event('input', {{bubbles: true}}));
              input.dispatchEvent(new Event('change', {{bubbles: true}}));
              return true;
            }})()"""
        )

    async def click(self, selector: str) -> None:
        """Click an enabled element (waiting until it is there and enabled)."""
        await self.wait_for(
            f"(e => e && !e.disabled)(document.querySelector({json.dumps(selector)}))"
        )
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def click_link(self, text: str) -> None:
        found = await self.wait_for(
            f"[...document.querySelectorAll('a')].some(a => a.textContent === {json.dumps(text)})"
        )
        assert found
        await self.evaluate(
            f"[...document.querySelectorAll('a')].find(a => a.textContent === {json.dumps(text)})"
            ".click()"
        )

    async def choose_file(self, selector: str, path: Path) -> None:
        """As a person picking a file: CDP sets the input's files and fires its change event."""
        element = await self.call(
            "Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)})"
        )
        await self.call(
            "DOM.setFileInputFiles", files=[str(path)], objectId=element["result"]["objectId"]
        )

    async def error_code(self) -> str:
        return await self.text("#error code")


async def open_page(browser: Browser, context: str | None = None) -> Page:
    """A new tab (in `context`, a browser context of its own, when given), in TIME_ZONE."""
    created = await browser.call(
        "Target.createTarget",
        url="about:blank",
        **({"browserContextId": context} if context else {}),
    )
    attached = await browser.call(
        "Target.attachToTarget", targetId=created["targetId"], flatten=True
    )
    page = Page(browser, attached["sessionId"])
    for domain in ("Network", "Page", "Runtime", "Log", "DOM"):
        await page.call(f"{domain}.enable")
    await page.call("Emulation.setTimezoneOverride", timezoneId=TIME_ZONE)
    return page


async def sign_in(page: Page, origin: str, token: str) -> None:
    await page.load("Page.navigate", url=f"{origin}/")
    await page.wait_for("!!document.querySelector('#sign-in input[name=token]')")
    await page.fill("#sign-in input[name=token]", token)
    await page.click("#sign-in button[type=submit]")


async def shown_names(page: Page) -> list[str]:
    names: list[str] = await page.evaluate(
        "[...document.querySelectorAll('#certifications tr.certification a.name')]"
        ".map(a => a.textContent)"
    )
    return names


async def wait_for_names(page: Page, expected: list[str]) -> None:
    await page.wait_for(
        "document.querySelector('#certifications')?.dataset.loaded === 'true' && "
        "JSON.stringify([...document.querySelectorAll('#certifications tr.certification a.name')]"
        f".map(a => a.textContent)) === {json.dumps(json.dumps(expected, separators=(',', ':')))}"
        " || !!document.querySelector('#error')"
    )
    assert await page.error_code() == ""
    assert await shown_names(page) == expected


async def is_disabled(page: Page, selector: str) -> bool:
    disabled: bool = await page.evaluate(f"document.querySelector({json.dumps(selector)}).disabled")
    return disabled


def multipart_posts(page: Page, url: str) -> list[dict[str, Any]]:
    """The multipart (upload) requests the page sent to certgraph."""
    return [
        event["request"]
        for event in page.events("Network.requestWillBeSent")
        if event["request"]["url"] == url
        and "multipart/form-data" in event["request"]["headers"].get("Content-Type", "")
    ]


def websocket_messages(page: Page, direction: str) -> list[dict[str, Any]]:
    """The graphql-transport-ws messages the page sent ("Sent") or received ("Received")."""
    return [
        json.loads(event["response"]["payloadData"])
        for event in page.events(f"Network.webSocketFrame{direction}")
        if event["response"]["opcode"] == 1  # text
    ]


def subscribed(page: Page, operation: str) -> bool:
    """Whether the page sent a subscribe message for `operation` (after connection_ack)."""
    return any(
        message["type"] == "subscribe" and message["payload"].get("operationName") == operation
        for message in websocket_messages(page, "Sent")
    )


def navigations(page: Page) -> int:
    """How many documents the tab's main frame has loaded (a reload counts, a #route not)."""
    return sum(
        1 for event in page.events("Page.frameNavigated") if "parentId" not in event["frame"]
    )


async def wait_until_subscribed(page: Page, operation: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not subscribed(page, operation):
        assert asyncio.get_running_loop().time() < deadline, f"no {operation} subscription"
        await asyncio.sleep(0.05)


async def responses(page: Page, url: str) -> list[dict[str, Any]]:
    """The responses the page received from `url`, once there is one (CDP's event may come
    just after the page saw the load)."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        found = [
            event["response"]
            for event in page.events("Network.responseReceived")
            if event["response"]["url"] == url
        ]
        if found or asyncio.get_running_loop().time() >= deadline:
            assert found, url
            return found
        await asyncio.sleep(0.05)


def graphql_posts(page: Page, url: str) -> list[dict[str, Any]]:
    """Bodies of the JSON POSTs the page sent to certgraph (multipart ones are left out)."""
    posts = []
    for event in page.events("Network.requestWillBeSent"):
        request = event["request"]
        if request["url"] == url and request["method"] == "POST":
            with_body = request.get("postData", "")
            if with_body.startswith("{"):
                posts.append(json.loads(with_body))
    return posts


@pytest.fixture
async def seeded(
    deployment: Deployment, spa_dist: Path
) -> AsyncIterator[tuple[Client, SpaServer, str, dict[str, Any]]]:
    """A server allowing the SPA's origin, and the data: a learner, their manager, ten
    certifications to page through, an INTERNAL one with two courses and an EXTERNAL one
    dated by the learner (published last, so the newest)."""
    spa = SpaServer(spa_dist)
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_CORS_ORIGINS=spa.origin).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        people: dict[str, Any] = {}
        for key, name, role in (
            ("manager", "Maya Manager", "MANAGER"),
            ("learner", "Leo Learner", "LEARNER"),
        ):
            user_input = {"name": name, "email": f"{key}@example.com", "role": role}
            if key == "learner":
                user_input["managerId"] = people["manager"]["id"]
            user = payload(await admin.data(CREATE_USER, {"input": user_input}), "createUser")
            token = payload(
                await admin.data(CREATE_TOKEN, {"id": user["user"]["id"]}), "createApiToken"
            )["token"]
            people[key] = {"id": user["user"]["id"], "token": token, "name": name}
        filler_course = await create_course(admin, "Catalogue Course")
        for name in FILLERS:
            await create_certification(admin, name, [filler_course])
        courses = [await create_course(admin, name) for name in COURSES]
        people["internal"] = await create_certification(admin, INTERNAL, courses)
        external = payload(
            await admin.data(
                CREATE_CERTIFICATION,
                {
                    "input": {
                        "name": EXTERNAL,
                        "kind": "EXTERNAL",
                        "type": "RECURRING",
                        "validityMonths": 24,
                        "issuer": "Cloud Board",
                        "policyConfig": {"completionDate": "learner"},
                    }
                },
            ),
            "createCertification",
        )["certification"]["id"]
        payload(await admin.data(PUBLISH, {"id": external}), "publishCertification")
        people["external"] = external
        spa.start({"graphqlUrl": f"{server.url}/graphql", "pageSize": PAGE_SIZE})
        try:
            yield admin, spa, f"{server.url}/graphql", people
        finally:
            spa.stop()
    assert "Traceback" not in server.log()


async def test_the_spa_pages_uploads_and_follows_the_review_live_in_another_time_zone(
    seeded: tuple[Client, SpaServer, str, dict[str, Any]], tmp_path: Path
) -> None:
    admin, spa, graphql_url, people = seeded
    learner, manager = people["learner"], people["manager"]
    # RELEVANCE for someone enrolled in nothing: newest published first.
    expected = [EXTERNAL, INTERNAL, *reversed(FILLERS)]
    listed = await admin.data(CATALOG, token=learner["token"])
    assert [e["node"]["name"] for e in listed["certifications"]["edges"]] == expected
    pages = [expected[i : i + PAGE_SIZE] for i in range(0, len(expected), PAGE_SIZE)]
    assert len(pages) == 3

    certificate = tmp_path / "cloud-architect-certificate.pdf"
    certificate.write_bytes(pdf("Certified Cloud Architect: Leo Learner"))
    not_a_certificate = tmp_path / "notes.txt"
    not_a_certificate.write_text("not a certificate\n")

    async with chromium(tmp_path / "chromium-profile") as browser:
        page = await open_page(browser)
        # The browser is in Los Angeles: a Date parsed the naive way is a day early there.
        assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == TIME_ZONE
        assert await page.evaluate(f"new Date({json.dumps(COMPLETED_ON)}).getDate()") == 19

        # A token the server refuses: its 401's code on the page, and the sign-in form again.
        await sign_in(page, spa.origin, "cg_not-a-token-anyone-has")
        await page.wait_for("!!document.querySelector('#error code')")
        assert await page.error_code() == "UNAUTHENTICATED"
        await page.wait_for("!!document.querySelector('#sign-in')")

        # The learner: the list in RELEVANCE order, forward to the end and back.
        await sign_in(page, spa.origin, learner["token"])
        await page.wait_for("document.querySelector('#viewer')?.dataset.role === 'LEARNER'")
        await wait_for_names(page, pages[0])
        assert await is_disabled(page, "#previous")
        for shown in pages[1:]:
            await page.click("#next")
            await wait_for_names(page, shown)
        assert await is_disabled(page, "#next")
        for shown in reversed(pages[:-1]):
            await page.click("#previous")
            await wait_for_names(page, shown)
        assert await is_disabled(page, "#previous")
        assert not await is_disabled(page, "#next")
        catalog_requests = [
            body["variables"]
            for body in graphql_posts(page, graphql_url)
            if "Catalog" in body["query"]
        ]
        # Back is asked of the server (last/before), not replayed from a stack of cursors.
        backward = [v for v in catalog_requests if v.get("before")]
        assert len(backward) == 2 and all(v.get("last") == PAGE_SIZE for v in backward), (
            catalog_requests
        )

        # Start the INTERNAL certification, then finish its first course.
        await page.click_link(INTERNAL)
        await page.wait_for("!!document.querySelector('#certification[data-kind=INTERNAL]')")
        assert "Not enrolled yet." in await page.text("#enrollment")
        await page.click("#start")
        await page.wait_for("document.querySelector('#enrollment')?.dataset.status === 'STARTED'")
        course_row = (
            f"#courses tr.course[data-id={json.dumps((await course_ids(admin, people))[0])}]"
        )
        await page.fill(f"{course_row} input[name=percent]", "100")
        await page.click(f"{course_row} button[type=submit]")
        await page.wait_for(
            f"document.querySelector('{course_row} .course-progress')?.dataset.percent === '100'"
        )
        assert await page.text("#explanation") == "1 of 2 mandatory courses done"
        assert await page.error_code() == ""

        # The EXTERNAL one: a file of the wrong type is stopped in the browser, with a code.
        await page.click_link("Certifications")
        await wait_for_names(page, [INTERNAL, EXTERNAL, *reversed(FILLERS)][:PAGE_SIZE])
        await page.click_link(EXTERNAL)
        await page.wait_for("!!document.querySelector('#upload input[name=completedOn]')")
        # (Other requests may go meanwhile: urql refreshes what the page shows.)
        uploads_before = len(multipart_posts(page, graphql_url))
        await page.choose_file("#upload input[type=file]", not_a_certificate)
        await page.wait_for("!!document.querySelector('#error code')")
        assert await page.error_code() == "UNSUPPORTED_FILE_TYPE"
        assert await is_disabled(page, "#upload button[type=submit]")
        assert len(multipart_posts(page, graphql_url)) == uploads_before  # nothing sent

        # The manager, in a browser context of their own, has the queue open, empty.
        context = (await browser.call("Target.createBrowserContext"))["browserContextId"]
        review_page = await open_page(browser, context)
        await sign_in(review_page, spa.origin, manager["token"])
        await review_page.wait_for("document.querySelector('#viewer')?.dataset.role === 'MANAGER'")
        await review_page.click_link("Review queue")
        await review_page.wait_for(
            "document.querySelector('#review-queue')?.dataset.loaded === 'true'"
        )
        assert "0 waiting" in await review_page.text("#review-queue")
        await wait_until_subscribed(review_page, "ReviewQueueChanged")
        await wait_until_subscribed(page, "EnrollmentChanged")
        # Both pages stay the documents they are from here: a reload would clear these.
        for tab in (page, review_page):
            await tab.evaluate("window.stillThisDocument = true")
        loads = {tab: navigations(tab) for tab in (page, review_page)}

        # The PDF, earned on COMPLETED_ON: sent as a GraphQL multipart request.
        await page.choose_file("#upload input[type=file]", certificate)
        await page.wait_for("!document.querySelector('#error')")
        await page.fill("#upload input[name=completedOn]", COMPLETED_ON)
        await page.click("#upload button[type=submit]")
        await page.wait_for(
            "!!document.querySelector('#evidence-list li.evidence[data-status=PENDING]')"
            " || !!document.querySelector('#error')"
        )
        assert await page.error_code() == ""
        assert await page.text("#enrollment-status") == "PENDING_APPROVAL"
        evidence = "#evidence-list li.evidence[data-status=PENDING]"
        assert await page.text(f"{evidence} .completed-on") == COMPLETED_ON_SHOWN
        multipart = multipart_posts(page, graphql_url)
        assert len(multipart) == 1, multipart

        # Its preview: the signed URL loaded in the page's iframe, a PDF. (Each time the page
        # is read again, live, it gets a new URL: the one loaded is the one shown now.)
        preview_url = await page.wait_for(
            f"(e => e?.dataset.loaded && e.src)(document.querySelector('{evidence} .preview'))"
        )
        answered = await responses(page, preview_url)
        assert answered[-1]["status"] == 200, answered[-1]
        assert answered[-1]["mimeType"] == "application/pdf", answered[-1]

        # The manager's open queue shows it, over its subscription: then Approve.
        item = "#review-queue li.review"
        await review_page.wait_for(f"!!document.querySelector('{item} .learner')")
        assert "1 waiting" in await review_page.text("#review-queue")
        assert await review_page.text(f"{item} .learner") == learner["name"]
        assert await review_page.text(f"{item} .certification") == EXTERNAL
        assert await review_page.text(f"{item} .completed-on") == COMPLETED_ON_SHOWN
        await review_page.click(f"{item} button.approve")
        await review_page.wait_for(
            "!document.querySelector('#review-queue li.review')"
            " && document.querySelector('#review-queue').textContent.includes('0 waiting')"
            " || !!document.querySelector('#error')"
        )
        assert await review_page.error_code() == ""
        manager_problems = review_page.problems()

        # The learner's page, left open: COMPLETED over its subscription, on the day they
        # said, in Los Angeles too; the same document, never reloaded nor navigated.
        await page.wait_for("document.querySelector('#enrollment')?.dataset.status === 'COMPLETED'")
        assert await page.text("#enrollment-status") == "COMPLETED"
        for tab in (page, review_page):
            assert await tab.evaluate("window.stillThisDocument") is True
            assert navigations(tab) == loads[tab]
        # ... told by the server over graphql-transport-ws, authenticated in connection_init.
        inits = [m for m in websocket_messages(page, "Sent") if m["type"] == "connection_init"]
        assert inits and all(
            m["payload"] == {"Authorization": f"Bearer {learner['token']}"} for m in inits
        ), inits
        changes = [
            (change["certification"]["id"], change["status"])
            for message in websocket_messages(page, "Received")
            if message["type"] == "next"
            for change in [message["payload"]["data"]["viewerEnrollmentChanged"]]
        ]
        assert (people["external"], "COMPLETED") in changes, changes
        enrollment = await admin.data(
            ENROLLMENT, {"id": people["external"]}, token=learner["token"]
        )
        stored = enrollment["certification"]["viewerEnrollment"]
        assert stored["completedOn"] == COMPLETED_ON, stored
        completed = await page.evaluate(
            "(e => [e.textContent, e.getAttribute('datetime')])"
            "(document.querySelector('#enrollment .completed-on'))"
        )
        assert completed == [COMPLETED_ON_SHOWN, COMPLETED_ON]
        expires = await page.evaluate(
            "(e => [e.textContent, e.getAttribute('datetime')])"
            "(document.querySelector('#enrollment .expires-on'))"
        )
        assert expires[1] == stored["expiresOn"] and stored["expiresOn"].startswith("2028-11-")
        assert expires[0] == await page.evaluate(
            f"new Intl.DateTimeFormat('en-US', {{dateStyle: 'medium', timeZone: 'UTC'}})"
            f".format(new Date({json.dumps(stored['expiresOn'] + 'T00:00:00Z')}))"
        )
        assert (
            await page.text("#evidence-list li.evidence[data-status=APPROVED] .completed-on")
            == COMPLETED_ON_SHOWN
        )
        body = await page.text("body")
        assert DAY_BEFORE_SHOWN not in body
        # ... and on the list: the learner's enrollments first, in progress before completed.
        await page.click_link("Certifications")
        await wait_for_names(page, [INTERNAL, EXTERNAL, *reversed(FILLERS)][:PAGE_SIZE])
        row = f"#certifications tr.certification[data-id={json.dumps(people['external'])}]"
        assert await page.text(f"{row} .completed-on") == COMPLETED_ON_SHOWN
        learner_problems = page.problems()

    assert learner_problems == [], learner_problems
    assert manager_problems == [], manager_problems
    record_figures(
        "spa in a browser",
        time_zone=TIME_ZONE,
        pages=len(pages),
        catalog_requests=len(catalog_requests),
        completion_shown=COMPLETED_ON_SHOWN,
    )


async def course_ids(admin: Client, people: dict[str, Any]) -> list[str]:
    found = await admin.data(
        "query($id: ID!) { certification(id: $id) { courses { course { id } } } }",
        {"id": people["internal"]},
    )
    return [c["course"]["id"] for c in found["certification"]["courses"]]


def test_the_spa_types_are_generated_from_the_schema_and_compile() -> None:
    """The build runs GraphQL Code Generator, which checks every document of the app against
    schema.graphql and types it, then `tsc --noEmit`: a field renamed or removed in the schema,
    or a type changed under the app's use of it, fails the build (`make proof` builds first;
    here it is a no-op while dist/ holds a build of this schema and these sources)."""
    build()
    assert BUILD_STAMP.read_text().strip() == inputs_digest()
    generated = (SPA_DIR / "src" / "gql" / "graphql.ts").read_text()
    for operation in ("Catalog", "CertificationPage", "SubmitEvidence", "ReviewQueue", "Review"):
        assert f"export const {operation}Document" in generated, operation
