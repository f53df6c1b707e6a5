"""The peer (PostGraphile 4, bench/peer/) and the wire counter of SQL sent per request.

The peer serves the PostgreSQL dataset read-only in one Node process; its documents are the
closest equivalents of certgraph's Q0 and Q1 in PostGraphile's generated schema (no auth: the
learner is selected by id; differences in docs/performance.md, "The peer").

WireCounter is a TCP proxy between a server and PostgreSQL that reads the frontend protocol
and counts what the server sends: each Execute (extended protocol) and each simple Query is a
statement, each Sync or simple Query a round trip; a simple Query holding asyncpg's pool reset
(`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) is counted apart, as
housekeeping. The same count for certgraph, the floor and the peer, whatever their driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PEER_DIR = Path(__file__).resolve().parent / "peer"
PEER_PORT = 18900

# Q0: certgraph's `{ viewer { id } }`; the viewer is the token's user, here the id's.
PEER_Q0 = "query Q0($id: Int!) { userById(id: $id) { id } }"
# Q1: the learner's first 20 current (not ended) enrollments in id order, each with its stored
# verdict columns, its certification, the certification's courses in position order and the
# learner's progress in each.
PEER_Q1 = (
    "query Q1($id: Int!, $first: Int) { userById(id: $id) { enrollmentsByLearnerId("
    "first: $first, orderBy: PRIMARY_KEY_ASC, condition: {endedAt: null}) { totalCount"
    " pageInfo { hasNextPage endCursor } edges { node { id verdictStatus verdictProgress dueAt"
    " lastAwardedAt lastExpiresAt certificationByCertificationId { id name kind type"
    " certificationCoursesByCertificationId(orderBy: POSITION_ASC) { nodes { courseByCourseId {"
    " id name courseProgressesByCourseId(condition: {learnerId: $id}) { nodes { status percent"
    " completedAt } } } } } } } } } } }"
)
PEER_DOCUMENTS = {"Q0": PEER_Q0, "Q1": PEER_Q1}
PEER_VARIABLES: dict[str, dict[str, Any]] = {"Q0": {}, "Q1": {"first": 20}}


def unavailable() -> str | None:
    """Why the peer cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEER_DIR / "node_modules" / "postgraphile").is_dir():
        return "bench/peer/node_modules is missing (npm ci in bench/peer; `make bench` does it)"
    return None


def version() -> dict[str, str | None]:
    """PostGraphile's version (from the lock file) and Node's, for the results."""
    import json
    import subprocess

    lock = json.loads((PEER_DIR / "package-lock.json").read_text())
    node = shutil.which("node")
    return {
        "postgraphile": lock["packages"].get("node_modules/postgraphile", {}).get("version"),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if node
        else None,
    }


def command(url: str, port: int = PEER_PORT) -> list[str]:
    node = shutil.which("node") or "node"
    return [node, str(PEER_DIR / "server.js"), url, str(port)]


# --- the wire counter -------------------------------------------------------------------------

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
RESET_MARK = "pg_advisory_unlock_all"


def via(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` (the counter's)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = (f"{user}@" if user else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class WireCounter:
    """A loopback proxy to PostgreSQL that counts the frontend messages that run SQL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            self.loop.run_until_complete(serve())

    def stop(self) -> None:
        def cancel() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        self.loop.call_soon_threadsafe(cancel)
        self.thread.join(5)

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def _add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe() -> None:
            try:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        back = asyncio.create_task(pipe())
        try:
            # untyped start-up packets: refuse TLS/GSS (so the rest is readable), pass the rest
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!II", head)
                rest = await reader.readexactly(length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")
                    await writer.drain()
                    continue
                up_writer.write(head + rest)
                break
            while True:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!I", head[1:])[0]
                payload = await reader.readexactly(length - 4)
                if kind == b"Q":
                    text = payload.rstrip(b"\0").decode("utf-8", "replace")
                    self._add("reset" if RESET_MARK in text else "simple")
                elif kind == b"E":
                    self._add("execute")
                elif kind == b"S":
                    self._add("sync")
                elif kind == b"P":
                    self._add("parse")
                up_writer.write(head + payload)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            up_writer.close()
            back.cancel()


def per_request(before: Counter[str], after: Counter[str], requests: int) -> dict[str, float]:
    """Statements (Execute + simple Query, the pool reset apart), round trips and resets."""
    d = {k: after[k] - before[k] for k in ("execute", "simple", "reset", "sync", "parse")}
    n = max(1, requests)
    return {
        "statements": round((d["execute"] + d["simple"]) / n, 2),
        "reset": round(d["reset"] / n, 2),
        "round_trips": round((d["sync"] + d["simple"] + d["reset"]) / n, 2),
        "parse": round(d["parse"] / n, 2),
    }
