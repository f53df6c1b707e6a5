"""A real OpenID provider and a single-page app for the sign-in proof (test_live_oidc.py).

- `Provider`: the certified `oidc-provider` package (npm) run by Node with tests/proof/oidc/
  provider.mjs on a free loopback port; it signs with a key `keygen` made, so the proof can
  also mint tokens with that key (`mint`, through tests/proof/oidc/tokens.mjs and `jose`).
- `SpaServer`: a static file server on another port (another origin than certgraph's and the
  provider's) serving tests/proof/oidc/spa/, oauth4webapi's browser build and /config.json.
- `install_node_modules`: `npm ci` of tests/proof/oidc/package-lock.json, skipped while the
  installed tree matches the lockfile (`make proof` runs it: `python -m tests.proof.oidc_live`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.proof.live import free_port

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
NODE_MODULES = OIDC_DIR / "node_modules"
LOCKFILE = OIDC_DIR / "package-lock.json"
STAMP = NODE_MODULES / ".certgraph-lock-sha256"
START_TIMEOUT_SECONDS = 30.0


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise AssertionError(
            "node is missing: the OIDC proof runs oidc-provider with Node >= 20.19"
        )
    return found


def install_node_modules() -> None:
    """`npm ci` into tests/proof/oidc/node_modules unless it already holds this lockfile's tree."""
    wanted = hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError("npm is missing: the OIDC proof installs oidc-provider with `npm ci`")
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=OIDC_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, f"npm ci failed:\n{completed.stdout}\n{completed.stderr}"
    STAMP.write_text(wanted + "\n")


def _tokens(*args: str) -> str:
    completed = subprocess.run(
        [node(), str(OIDC_DIR / "tokens.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, f"tokens.mjs {args[0]} failed:\n{completed.stderr}"
    return completed.stdout


def keygen(path: Path) -> dict[str, Any]:
    """A new private RS256 key as a JWKS file (what the provider signs with); its public JWK."""
    _tokens("keygen", str(path))
    private: dict[str, Any] = json.loads(path.read_text())["keys"][0]
    return {k: v for k, v in private.items() if k in ("kty", "kid", "alg", "use", "n", "e")}


def mint(spec: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """Tokens from tokens.mjs: {"valid": [token...], "forged": [{"kind", "token"}...]}."""
    path = directory / "mint-spec.json"
    path.write_text(json.dumps(spec))
    minted: dict[str, Any] = json.loads(_tokens("mint", str(path)))
    return minted


class Provider:
    """oidc-provider in a Node process of its own on http://127.0.0.1:<port>."""

    def __init__(
        self,
        directory: Path,
        *,
        client_id: str,
        redirect_uri: str,
        audience: str,
        scope: str,
        accounts: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.audience = audience
        self.scope = scope
        self.accounts = dict(accounts)
        self.keys_file = directory / "provider-keys.json"
        self.log_path = directory / "provider.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.public_key: dict[str, Any] = {}

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Provider:
        install_node_modules()
        self.public_key = keygen(self.keys_file)
        config = self.directory / "provider.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "clientId": self.client_id,
                    "redirectUri": self.redirect_uri,
                    "audience": self.audience,
                    "scope": self.scope,
                    "keysFile": str(self.keys_file),
                    "accounts": self.accounts,
                }
            )
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [node(), str(OIDC_DIR / "provider.mjs"), str(config)],
                cwd=OIDC_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert self.process.poll() is None, f"provider exited:\n{self.log()}"
            with contextlib.suppress(httpx.TransportError):
                discovery = httpx.get(f"{self.issuer}/.well-known/openid-configuration")
                if discovery.status_code == 200:
                    assert discovery.json()["issuer"] == self.issuer
                    return self
            assert time.monotonic() < deadline, f"provider not ready in time:\n{self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class _SpaHandler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        found = self.routes.get(path)
        if found is None:
            self.send_error(404)
            return
        content_type, body = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


class SpaServer:
    """The SPA's own origin: its page, its script, oauth4webapi and a /config.json."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/callback"

    def start(self, config: Mapping[str, Any]) -> SpaServer:
        install_node_modules()
        page = (OIDC_DIR / "spa" / "index.html").read_bytes()
        javascript = "text/javascript; charset=utf-8"
        routes = {
            "/": ("text/html; charset=utf-8", page),
            "/callback": ("text/html; charset=utf-8", page),
            "/app.js": (javascript, (OIDC_DIR / "spa" / "app.js").read_bytes()),
            "/vendor/oauth4webapi.js": (
                javascript,
                (NODE_MODULES / "oauth4webapi" / "build" / "index.js").read_bytes(),
            ),
            "/config.json": ("application/json", json.dumps(config).encode()),
        }
        handler = type("SpaHandler", (_SpaHandler,), {"routes": routes})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


@contextlib.contextmanager
def running(*services: Provider | SpaServer) -> Iterator[None]:
    try:
        yield
    finally:
        for service in services:
            service.stop()


if __name__ == "__main__":  # `make proof`: install before the run, not inside a test
    try:
        install_node_modules()
    except AssertionError as problem:
        sys.exit(f"oidc proof: {problem}")
    print(f"oidc proof: node modules of {OIDC_DIR.relative_to(Path.cwd())} installed")
