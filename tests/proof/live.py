"""Real servers for the proof: `certgraph serve` subprocesses on loopback, each on a database
of its own (a SQLite file, or a fresh PostgreSQL database when CERTGRAPH_TEST_DATABASE_URL
names a server), with the probe plugin installed through a real .dist-info directory.

Seeding and checking go through the public surfaces a deployment has: the `certgraph` CLI,
GraphQL over HTTP, and plain SQL on the database for counting (independent of the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from tests.test_plugins import install_distribution

PROOF_DIR = Path(__file__).resolve().parent
PROBE = PROOF_DIR / "probe"
CERTGRAPH = Path(sys.executable).parent / "certgraph"
TEST_DATABASE_URL = os.environ.get("CERTGRAPH_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql://"))
DATABASE_KIND = "postgres" if ON_POSTGRES else "sqlite"
START_TIMEOUT_SECONDS = 60.0
_names = itertools.count()

# For a proof that exercises no database behaviour (the HTTP layer, the parsers, a browser,
# the process model): `make proof` runs it once, on its SQLite pass, since the PostgreSQL pass
# would repeat it unchanged. Each module or test marked says why it qualifies; a proof whose
# outcome could differ with the database (transactions, locks, constraints, SQL, the outbox)
# is not marked and runs on both.
# tests/proof/conftest.py skips the marked server tests when on PostgreSQL.
DATABASE_INDEPENDENT = pytest.mark.database_independent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- databases -----------------------------------------------------------------------------


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))


@dataclass
class Database:
    """A database of the proof's own; `value` runs SQL with $1-style parameters on it."""

    url: str

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgres")

    async def value(self, sql: str, *params: Any) -> Any:
        rows = await self.rows(sql, *params)
        return rows[0][0] if rows else None

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.is_postgres:
            connection = await asyncpg.connect(self.url.replace("postgres://", "postgresql://"))
            try:
                return [tuple(row) for row in await connection.fetch(sql, *params)]
            finally:
                await connection.close()
        path = self.url[len("sqlite://") :].split("?", 1)[0]
        numbered = re.sub(r"\$(\d+)", r"?\1", sql)

        def query() -> list[tuple[Any, ...]]:
            with sqlite3.connect(path, timeout=30) as connection:
                return list(connection.execute(numbered, params).fetchall())

        return await asyncio.to_thread(query)

    async def drop(self) -> None:
        if not self.is_postgres:
            return
        name = urlsplit(self.url).path.lstrip("/")
        connection = await asyncpg.connect(_maintenance_url(self.url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def create_database(directory: Path, label: str) -> Database:
    """A new, empty database: a SQLite file in `directory`, or `<test db>_proof_<label>_<n>`."""
    name = f"{label}_{os.getpid()}_{next(_names)}"
    if not ON_POSTGRES:
        return Database(f"sqlite://{directory / (name + '.sqlite3')}")
    parts = urlsplit(TEST_DATABASE_URL)
    database = f"{parts.path.lstrip('/') or 'certgraph'}_proof_{name}"
    url = urlunsplit(("postgres", parts.netloc, "/" + database, "", ""))
    connection = await asyncpg.connect(_maintenance_url(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return Database(url)


# -- the deployment: environment, CLI, server ----------------------------------------------


def install_probe(site: Path) -> Path:
    """Lay the probe plugin (and its sitecustomize) out in `site` as pip would."""
    if not (site / "certgraph_proof_probe.py").exists():
        site.mkdir(parents=True, exist_ok=True)
        install_distribution(PROBE, site)
    return site


@dataclass
class Deployment:
    """One installation: a database, a data directory, an environment for every process."""

    database: Database
    directory: Path
    settings: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def event_log(self) -> Path:
        return self.directory / "events.jsonl"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTGRAPH_")}
        site = install_probe(self.directory / "site-packages")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p
        )
        env.update(
            {
                "CERTGRAPH_DATABASE_URL": self.database.url,
                "CERTGRAPH_DATA_DIR": str(self.data_dir),
                "CERTGRAPH_PROOF_EVENT_LOG": str(self.event_log),
                "CERTGRAPH_PROOF_HOOK_STARTED_LOG": str(self.started_log),
                # The proof fires bursts from one token; the limiter has its own test.
                "CERTGRAPH_RATE_LIMIT_PER_MINUTE": "0",
            }
        )
        env.update(self.settings)
        env.update(overrides)
        return env

    def cli(
        self, *args: str, check: bool = True, **overrides: str
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(CERTGRAPH), *args],
            env=self.env(**overrides),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check:
            assert completed.returncode == 0, (
                f"certgraph {' '.join(args)} exited {completed.returncode}:\n"
                f"{completed.stdout}\n{completed.stderr}"
            )
        return completed

    @property
    def started_log(self) -> Path:
        """Where the probe notes each hook call as it starts (with CERTGRAPH_PROOF_HOOK_STARTED_LOG
        pointing here: see `env`)."""
        return self.directory / "hooks-started.jsonl"

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """The events the probe plugin was handed so far, in the order delivered: each
        {"pid" (the delivering process), "id", "type", "data" (camelCase, global IDs)}."""
        return _read_jsonl(self.event_log, type)

    def hooks_started(self, type: str | None = None) -> list[dict[str, Any]]:
        return _read_jsonl(self.started_log, type)

    async def wait_for_events(
        self,
        count: int,
        type: str | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """The probe's events (of `type`) once there are at least `count`, or what is there
        when `timeout` runs out: delivery is asynchronous, the caller's assertion says which."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(type)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)

    async def outbox(self, type: str | None = None) -> list[tuple[str, str]]:
        """(event id, type) of every event committed to the outbox, in the order written."""
        rows = await self.database.rows("SELECT event_id, type FROM outbox_event ORDER BY seq")
        return [(str(event_id), kind) for event_id, kind in rows if type in (None, kind)]

    async def deliveries(self) -> list[tuple[str, str, str, int, int | None]]:
        """(event id, target, state, attempts, last status code) of every delivery: one per
        event and destination ("plugin:<name>" or "webhook:<pk>")."""
        rows = await self.database.rows(
            "SELECT e.event_id, d.target, d.state, d.attempts, d.last_status_code"
            " FROM event_delivery d JOIN outbox_event e ON e.seq = d.event_id ORDER BY d.id"
        )
        return [(str(row[0]), row[1], row[2], row[3], row[4]) for row in rows]

    def create_admin(self) -> str:
        """An admin made at the command line, as an operator would; returns its token."""
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        completed = self.cli(
            "user", "create", "--name", "Proof Admin", "--email", email, "--role", "admin", "--json"
        )
        token: str = json.loads(completed.stdout)["token"]
        return token

    def server(self, *, workers: int = 1, **overrides: str) -> Server:
        server = Server(self, workers=workers, env=self.env(**overrides))
        self.servers.append(server)
        return server

    def stop_servers(self) -> None:
        for server in self.servers:
            server.stop()


class Server:
    """`certgraph serve` in a process group of its own, so kill -9 reaches every worker."""

    _launches = itertools.count()

    def __init__(self, deployment: Deployment, *, workers: int, env: Mapping[str, str]) -> None:
        self.deployment = deployment
        self.workers = workers
        self.env = dict(env)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = deployment.directory / f"server-{next(self._launches)}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [str(CERTGRAPH), "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                cwd=self.deployment.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def start(self) -> Server:
        self.process = self._launch()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while True:
                assert self.process.poll() is None, f"server exited:\n{self.log()}"
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"server not ready in time:\n{self.log()}"
                await asyncio.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def processes(self) -> list[int]:
        """The pids of the server's process group (uvicorn's master and its workers)."""
        if self.process is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[2]) == self.process.pid:  # field 5 of stat: the process group
                found.append(int(stat.parent.name))
        return sorted(found)

    def connections_by_process(self) -> dict[int, int]:
        """How many established TCP connections to the server's port each of its processes
        holds (Linux /proc): which worker accepted which client connection."""
        inodes: dict[str, None] = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for row in Path(table).read_text().splitlines()[1:]:
                    columns = row.split()
                    local_port = int(columns[1].rsplit(":", 1)[1], 16)
                    if local_port == self.port and columns[3] == "01":  # ESTABLISHED
                        inodes[columns[9]] = None
        counts: dict[int, int] = {}
        for pid in self.processes():
            held = 0
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        held += 1
            if held:
                counts[pid] = held
        return counts

    def kill(self) -> None:
        """kill -9 of every process of the server at once: no shutdown, no cleanup."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A graceful stop (SIGTERM to uvicorn), then kill -9 if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            self._reap_group()
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self._reap_group()

    def _reap_group(self) -> None:
        # Workers left behind by a master that died are still in the group.
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=30)


def _read_jsonl(path: Path, type: str | None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    # Each line is one O_APPEND write; a last line without its newline is still being written.
    lines = [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]
    return [line for line in lines if type is None or line["type"] == type]


# -- GraphQL over HTTP -----------------------------------------------------------------------


class GraphQLError(AssertionError):
    pass


class Client:
    """GraphQL over real HTTP; `data` asserts 200 and no errors."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def headers(self, token: str | None = None) -> dict[str, str]:
        chosen = token or self.token
        return {"Authorization": f"Bearer {chosen}"} if chosen else {}

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=self.headers(token))

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token=token)
        if response.status_code != 200:
            raise GraphQLError(f"HTTP {response.status_code}: {response.text}")
        result = response.json()
        if result.get("errors"):
            raise GraphQLError(json.dumps(result["errors"]))
        data: dict[str, Any] = result["data"]
        return data

    async def upload(
        self,
        query: str,
        variables: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]],
        *,
        token: str | None = None,
    ) -> httpx.Response:
        """A GraphQL multipart request (operations, map, one part per file variable)."""
        names = sorted(files)
        operations = {"query": query, "variables": {**variables, **dict.fromkeys(names)}}
        file_map = {str(i): [f"variables.{name}"] for i, name in enumerate(names)}
        return await self.http.post(
            "/graphql",
            data={"operations": json.dumps(operations), "map": json.dumps(file_map)},
            files={str(i): files[name] for i, name in enumerate(names)},
            headers=self.headers(token),
        )


def payload(data: dict[str, Any], field_name: str) -> dict[str, Any]:
    """A mutation payload, asserting it carries no UserError."""
    result: dict[str, Any] = data[field_name]
    if result.get("errors"):
        raise GraphQLError(f"{field_name}: {result['errors']}")
    return result


# -- figures for the closing summary -----------------------------------------------------

FIGURES: list[tuple[str, dict[str, Any]]] = []


def record_figures(test: str, **values: Any) -> None:
    """Kept for the terminal summary of the run (see conftest.pytest_terminal_summary)."""
    FIGURES.append((f"{DATABASE_KIND}: {test}", values))


# -- seeding through the API ---------------------------------------------------------------


CREATE_USER = """
mutation($input: UserInput!) { createUser(input: $input) { user { id } errors { code message } } }
"""
CREATE_TOKEN = """
mutation($id: ID!) { createApiToken(userId: $id) { token errors { code message } } }
"""
CREATE_COURSE = """
mutation($name: String!) {
  createCourse(input: {name: $name}) { course { id name } errors { code message } }
}
"""
CREATE_CERTIFICATION = """
mutation($input: CertificationInput!) {
  createCertification(input: $input) { certification { id } errors { code message } }
}
"""
SET_COURSES = """
mutation($id: ID!, $courses: [CertificationCourseInput!]!) {
  setCertificationCourses(certificationId: $id, courses: $courses) {
    certification { id } errors { code message }
  }
}
"""
PUBLISH = """
mutation($id: ID!) { publishCertification(id: $id) { certification { id } errors { code } } }
"""
START = """
mutation($id: ID!) {
  startCertification(certificationId: $id) { enrollment { id status } errors { code message } }
}
"""
RECORD = """
mutation($input: RecordCourseProgressInput!) {
  recordCourseProgress(input: $input) {
    progress { percent status }
    enrollments { id status }
    errors { code message }
  }
}
"""

CREATE_WEBHOOK = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { webhook { id url events } secret errors { code message } }
}
"""


@dataclass
class Person:
    id: str
    token: str


async def create_person(admin: Client, name: str, role: str = "LEARNER") -> Person:
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
    user = payload(
        await admin.data(CREATE_USER, {"input": {"name": name, "email": email, "role": role}}),
        "createUser",
    )["user"]
    token = payload(await admin.data(CREATE_TOKEN, {"id": user["id"]}), "createApiToken")["token"]
    return Person(user["id"], token)


async def create_course(admin: Client, name: str) -> str:
    course_id: str = payload(await admin.data(CREATE_COURSE, {"name": name}), "createCourse")[
        "course"
    ]["id"]
    return course_id


async def create_certification(
    admin: Client, name: str, course_ids: list[str], *, kind: str = "INTERNAL"
) -> str:
    data = await admin.data(
        CREATE_CERTIFICATION,
        {"input": {"name": name, "kind": kind, "type": "PERPETUAL", "issuer": "Proof Board"}},
    )
    cert_id: str = payload(data, "createCertification")["certification"]["id"]
    if course_ids:
        courses = [{"courseId": c, "mandatory": True} for c in course_ids]
        payload(
            await admin.data(SET_COURSES, {"id": cert_id, "courses": courses}),
            "setCertificationCourses",
        )
    payload(await admin.data(PUBLISH, {"id": cert_id}), "publishCertification")
    return cert_id


def db_pk(global_id: str) -> int:
    """The database key inside a Relay global ID (for counting rows with plain SQL)."""
    import base64

    return int(base64.b64decode(global_id).decode().split(":", 1)[1])


async def create_webhook(
    admin: Client, url: str, events: list[str] | None = None
) -> tuple[str, str]:
    """A webhook endpoint made through the API: (its global ID, its signing secret)."""
    variables = {"input": {"url": url, "events": events, "description": "proof receiver"}}
    created = payload(await admin.data(CREATE_WEBHOOK, variables), "createWebhook")
    assert created["secret"].startswith("whsec_"), created
    return created["webhook"]["id"], created["secret"]
