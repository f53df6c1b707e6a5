"""GraphiQL in a real browser (issue 13): headless chromium, driven over the DevTools Protocol,
types a token into a debug server's GraphiQL, runs a query and reads the answer from the page;
every request the page made stayed on the server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.proof.live import DATABASE_INDEPENDENT, Deployment

# Database-independent (live.py): the page, its assets and one `viewer` query in a browser.
pytestmark = DATABASE_INDEPENDENT

CHROMIUM = "/usr/bin/chromium"
QUERY = "{ viewer { name role } }"
WAIT_SECONDS = 60.0


class Browser:
    """One headless chromium and one CDP session on one page (flat sessions)."""

    def __init__(self, websocket: websockets.ClientConnection) -> None:
        self.websocket = websocket
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())
        self.session: str | None = None

    async def _read(self) -> None:
        async for message in self.websocket:
            decoded = json.loads(message)
            future = self._pending.pop(decoded.get("id", -1), None)
            if future is not None:
                future.set_result(decoded)
            else:
                self.events.append(decoded)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        await self.websocket.send(json.dumps(message))
        answer = await asyncio.wait_for(future, WAIT_SECONDS)
        assert "error" not in answer, (method, answer)
        result: dict[str, Any] = answer["result"]
        return result

    async def open_page(self) -> None:
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """Poll until `expression` is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            value = await self.evaluate(
                f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
            )
            if value:
                return value
            assert asyncio.get_running_loop().time() < deadline, (
                f"timed out waiting for {expression}; problems: {self.problems()}"
            )
            await asyncio.sleep(0.2)

    def close(self) -> None:
        self._reader.cancel()

    def requests(self) -> list[dict[str, Any]]:
        return [
            event["params"]["request"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def problems(self) -> list[str]:
        """Exceptions thrown by the page and errors it logged."""
        found = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(event["params"]["exceptionDetails"])[:500])
            elif (
                event.get("method") == "Log.entryAdded"
                and event["params"]["entry"]["level"] == "error"
            ):
                found.append(event["params"]["entry"]["text"])
        return found


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make proof` installs it (apt-get install chromium)")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # No name resolves but loopback's: a request for any other host fails.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        endpoint = None
        stderr: list[str] = []
        while endpoint is None:
            line = await asyncio.wait_for(process.stderr.readline(), WAIT_SECONDS)
            assert line, f"chromium exited before listening:\n{''.join(stderr)}"
            stderr.append(line.decode(errors="replace"))
            found = re.search(r"DevTools listening on (ws://\S+)", stderr[-1])
            endpoint = found.group(1) if found else None
        # Keep reading its stderr, so a chatty browser never blocks on a full pipe.
        drain = asyncio.create_task(process.stderr.read())
        async with websockets.connect(endpoint, max_size=None) as websocket:
            browser = Browser(websocket)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            await drain


def set_editor(selector: str, text: str) -> str:
    """JavaScript that puts `text` in the CodeMirror editor under `selector`, as typing would."""
    return f"document.querySelector({json.dumps(selector)}).CodeMirror.setValue({json.dumps(text)})"


async def test_graphiql_runs_a_query_in_a_browser_with_nothing_but_the_server(
    deployment: Deployment, tmp_path: Path
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_DEBUG="true").start()
    async with chromium(tmp_path / "chromium-profile") as browser:
        await browser.open_page()
        await browser.call("Page.navigate", url=f"{server.url}/graphql")
        # Loaded: the query editor, then the Headers tab of the editor tools.
        await browser.wait_for("!!document.querySelector('.graphiql-query-editor .CodeMirror')")
        await browser.evaluate(set_editor(".graphiql-query-editor .CodeMirror", QUERY))
        await browser.evaluate(
            "[...document.querySelectorAll('.graphiql-editor-tools button')]"
            ".find((b) => b.textContent === 'Headers').click()"
        )
        headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
        await browser.wait_for(f"!!document.querySelector({json.dumps(headers_editor)})")
        await browser.evaluate(
            set_editor(headers_editor, json.dumps({"Authorization": f"Bearer {admin_token}"}))
        )
        await browser.evaluate("document.querySelector('.graphiql-execute-button').click()")
        answer = await browser.wait_for(
            "document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
        )
    result = json.loads(answer)
    assert result["data"] == {"viewer": {"name": "Proof Admin", "role": "ADMIN"}}, answer

    requests = browser.requests()
    urls = [request["url"] for request in requests]
    outside = [url for url in urls if not url.startswith((f"{server.url}/", "data:"))]
    assert outside == [], outside
    assets = [url for url in urls if url.startswith(f"{server.url}/graphiql/static/")]
    assert len(assets) == 7, urls
    sent = [
        request
        for request in requests
        if request["method"] == "POST" and QUERY in request.get("postData", "")
    ]
    assert sent and sent[-1]["headers"].get("Authorization") == f"Bearer {admin_token}"
    assert browser.problems() == []
    assert "Traceback" not in server.log()
