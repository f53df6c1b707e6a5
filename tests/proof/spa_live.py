"""examples/spa for test_live_spa.py: `build` (npm ci, GraphQL Code Generator, tsc, vite) into
dist/ once per set of inputs (`make proof` runs it first), and `SpaServer`, which serves the
build and a /config.json from an origin of its own."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.server
import json
import mimetypes
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.proof.live import free_port

REPO = Path(__file__).resolve().parents[2]
SPA_DIR = REPO / "examples" / "spa"
SCHEMA = REPO / "schema.graphql"
NODE_MODULES = SPA_DIR / "node_modules"
LOCKFILE = SPA_DIR / "package-lock.json"
DIST = SPA_DIR / "dist"
INSTALL_STAMP = NODE_MODULES / ".certgraph-lock-sha256"
BUILD_STAMP = DIST / ".certgraph-build-sha256"
LOCK = SPA_DIR / ".certgraph-build.lock"
# What the build is made from; src/gql/ is generated from the rest.
BUILD_INPUTS = (
    "package.json",
    "package-lock.json",
    "codegen.ts",
    "tsconfig.json",
    "vite.config.ts",
    "index.html",
)


def _npm(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError("npm is missing: the SPA proof builds examples/spa with Node >= 20.19")
    return subprocess.run(
        [npm, *args],
        cwd=SPA_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One install or build at a time (two pytest processes share the tree)."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install() -> None:
    wanted = hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text().strip() == wanted:
        return
    completed = _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
    assert completed.returncode == 0, f"npm ci failed:\n{completed.stdout}\n{completed.stderr}"
    INSTALL_STAMP.write_text(wanted + "\n")


def install_node_modules() -> None:
    """`npm ci` into examples/spa/node_modules unless it already holds this lockfile's tree."""
    with _exclusive():
        _install()


def inputs_digest() -> str:
    """SHA-256 over everything the build reads: the project files, src/ and schema.graphql."""
    digest = hashlib.sha256()
    sources = sorted(
        path
        for path in (SPA_DIR / "src").rglob("*")
        if path.is_file() and "gql" not in path.relative_to(SPA_DIR / "src").parts[:1]
    )
    for path in [*(SPA_DIR / name for name in BUILD_INPUTS), *sources, SCHEMA]:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build() -> Path:
    """examples/spa/dist, built from the current sources and schema (at most once for them)."""
    with _exclusive():
        _install()
        wanted = inputs_digest()
        if BUILD_STAMP.exists() and BUILD_STAMP.read_text().strip() == wanted:
            return DIST
        completed = _npm("run", "build", "--silent")
        assert completed.returncode == 0, (
            f"npm run build (codegen, tsc, vite) failed:\n{completed.stdout}\n{completed.stderr}"
        )
        BUILD_STAMP.write_text(wanted + "\n")
        return DIST


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path = DIST
    config: bytes = b"{}"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            self._send("application/json", self.config)
            return
        relative = "index.html" if path == "/" else path.lstrip("/")
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            self.send_error(404)
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(content_type, target.read_bytes())

    def _send(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


class SpaServer:
    """The built SPA on http://127.0.0.1:<port>, with /config.json saying where certgraph is."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, config: Mapping[str, Any]) -> SpaServer:
        handler = type(
            "SpaHandler", (_Handler,), {"root": self.root, "config": json.dumps(config).encode()}
        )
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


if __name__ == "__main__":  # `make proof`: install and build before the run, not in a test
    try:
        built = build()
    except AssertionError as problem:
        sys.exit(f"spa proof: {problem}")
    print(f"spa proof: {built.relative_to(REPO)} built from schema.graphql and examples/spa/src")
