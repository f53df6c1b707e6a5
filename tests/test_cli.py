"""The `certgraph` command, run as a user runs it: a subprocess against a temporary SQLite file.

What the commands wrote is checked in-process through the domain (`authenticate`) and the
store, on the same file.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gql.domain.access import Actor, authenticate
from gql.domain.errors import Unauthenticated
from gql.settings import _ENV as SETTINGS_VARIABLES
from gql.store.db import close_database, open_database
from gql.store.models import Certification, Course, Enrollment, Role, User

REPO = Path(__file__).resolve().parent.parent
CERTGRAPH = Path(sys.executable).with_name("certgraph")

# The tests run `certgraph` as a subprocess, on a SQLite file of their own whatever the suite's
# database: CI runs them once, in the PostgreSQL pass.
pytestmark = [pytest.mark.slow, pytest.mark.database_independent]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Runs `certgraph` with CERTGRAPH_DATABASE_URL pointing at one temporary file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url = f"sqlite://{directory / 'certgraph.sqlite3'}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CERTGRAPH_")}
        env["CERTGRAPH_DATABASE_URL"] = self.url
        env["CERTGRAPH_DATA_DIR"] = str(self.directory / "var")
        return env

    def __call__(self, *args: str) -> Result:
        completed = subprocess.run(
            [str(CERTGRAPH), *args],
            cwd=self.directory,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    @asynccontextmanager
    async def database(self) -> AsyncIterator[None]:
        await open_database(self.url)
        try:
            yield
        finally:
            await close_database()

    async def authenticate(self, token: str) -> Actor:
        async with self.database():
            return await authenticate(token)

    async def counts(self) -> dict[str, int]:
        async with self.database():
            return {
                "users": await User.all().count(),
                "courses": await Course.all().count(),
                "certifications": await Certification.all().count(),
                "enrollments": await Enrollment.all().count(),
            }


def copy_database(source: Cli, target: Path) -> Cli:
    """A copy of a prepared database (migrating costs a process start; copying does not)."""
    for path in source.directory.glob("certgraph.sqlite3*"):
        shutil.copy2(path, target / path.name)
    return Cli(target)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    template = Cli(tmp_path_factory.mktemp("migrated"))
    template.ok("migrate")
    return template


@pytest.fixture
def migrated(migrated_template: Cli, tmp_path: Path) -> Cli:
    return copy_database(migrated_template, tmp_path)


@pytest.fixture(scope="module")
def with_taken_email(migrated_template: Cli, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    prepared = copy_database(migrated_template, tmp_path_factory.mktemp("taken"))
    prepared.ok(
        "user", "create", "--name", "Taken", "--email", "taken@example.com", "--role", "manager"
    )
    return prepared


def test_the_console_script_is_installed() -> None:
    assert CERTGRAPH.is_file(), "pip install -e . creates the certgraph console script"


def test_migrate_applies_every_migration_once(cli: Cli) -> None:
    first = cli.ok("migrate").splitlines()
    assert first, "a fresh database gets every migration"
    assert all(re.fullmatch(r"applied models\.\d{4}_\w+", line) for line in first), first
    assert first[0] == "applied models.0001_initial"
    assert cli.ok("migrate") == "the database is up to date; nothing to apply\n"


def test_commands_on_an_unmigrated_database_say_what_to_do(cli: Cli) -> None:
    result = cli("token", "create", "--email", "a@example.com")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "run `certgraph migrate` first" in result.stderr


async def test_user_create_json_prints_one_object_whose_token_authenticates(
    migrated: Cli,
) -> None:
    out = migrated.ok(
        "user",
        "create",
        "--name",
        "Ann Admin",
        "--email",
        "Ann@Example.com",
        "--role",
        "admin",
        "--json",
    )
    assert out.count("\n") == 1 and out.endswith("\n")
    record = json.loads(out)
    assert set(record) == {"id", "email", "role", "token"}
    assert record["email"] == "ann@example.com"
    assert record["role"] == "ADMIN"
    type_name, _, pk = base64.b64decode(record["id"]).decode().partition(":")
    assert type_name == "User" and pk.isdigit()

    actor = await migrated.authenticate(record["token"])
    assert (actor.user_id, actor.email, actor.role) == (int(pk), "ann@example.com", Role.ADMIN)


async def test_user_create_with_a_manager(migrated: Cli) -> None:
    migrated.ok(
        "user", "create", "--name", "Maya", "--email", "maya@example.com", "--role", "manager"
    )
    out = migrated.ok(
        "user",
        "create",
        "--name",
        "Leo",
        "--email",
        "leo@example.com",
        "--role",
        "learner",
        "--manager",
        "MAYA@example.com",
        "--json",
    )
    actor = await migrated.authenticate(json.loads(out)["token"])
    async with migrated.database():
        manager = await User.get(email="maya@example.com")
    assert actor.role == Role.LEARNER
    assert actor.manager_id == manager.id


def test_user_create_without_json_says_who_was_created(migrated: Cli) -> None:
    out = migrated.ok(
        "user", "create", "--name", "Lena", "--email", "lena@example.com", "--role", "LEARNER"
    )
    assert out.splitlines()[0].startswith("created LEARNER Lena <lena@example.com> (id ")
    assert re.search(r"token \(shown only now\): cg_\S+$", out.splitlines()[1])


async def test_token_create_and_revoke(migrated: Cli) -> None:
    first = json.loads(
        migrated.ok(
            "user",
            "create",
            "--name",
            "Leo",
            "--email",
            "leo@example.com",
            "--role",
            "learner",
            "--json",
        )
    )
    second = json.loads(migrated.ok("token", "create", "--email", "leo@example.com", "--json"))
    assert second["id"] == first["id"]
    assert second["token"] != first["token"]
    assert (await migrated.authenticate(second["token"])).email == "leo@example.com"

    assert migrated.ok("token", "revoke", "--email", "leo@example.com") == (
        "revoked 2 token(s) of leo@example.com\n"
    )
    for token in (first["token"], second["token"]):
        with pytest.raises(Unauthenticated):
            await migrated.authenticate(token)
    # a token issued after the revocation works
    third = json.loads(migrated.ok("token", "create", "--email", "leo@example.com", "--json"))
    assert (await migrated.authenticate(third["token"])).email == "leo@example.com"


BAD_ARGUMENTS = {
    "no command": [],
    "unknown command": ["frobnicate"],
    "unknown role": ["user", "create", "--name", "A", "--email", "a@example.com", "--role", "boss"],
    "missing email": ["user", "create", "--name", "A", "--role", "learner"],
    "invalid email": ["user", "create", "--name", "A", "--email", "nope", "--role", "learner"],
    "blank name": ["user", "create", "--name", " ", "--email", "a@example.com", "--role", "admin"],
    "unknown manager": [
        "user",
        "create",
        "--name",
        "A",
        "--email",
        "a@example.com",
        "--role",
        "learner",
        "--manager",
        "nobody@example.com",
    ],
    "duplicate email": [
        "user",
        "create",
        "--name",
        "B",
        "--email",
        "taken@example.com",
        "--role",
        "learner",
    ],
    "token for unknown user": ["token", "create", "--email", "nobody@example.com"],
    "revoke for unknown user": ["token", "revoke", "--email", "nobody@example.com"],
    "port not a number": ["serve", "--port", "http"],
    "no workers": ["serve", "--workers", "0"],
    "negative grace": ["gc", "--grace-seconds", "-1"],
}


@pytest.mark.parametrize("args", list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
async def test_bad_arguments_exit_2_with_one_line_and_change_nothing(
    with_taken_email: Cli, tmp_path: Path, args: list[str]
) -> None:
    migrated = copy_database(with_taken_email, tmp_path)
    before = await migrated.counts()
    result = migrated(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("certgraph")
    assert "Traceback" not in result.stderr
    assert await migrated.counts() == before


def test_a_bad_setting_is_one_line(cli: Cli) -> None:
    cli.url = "mysql://localhost/certgraph"
    result = cli("migrate")
    assert result.returncode == 2
    assert result.stderr == (
        "certgraph migrate: CERTGRAPH_DATABASE_URL: Value error, "
        "must start with sqlite://, postgres:// or postgresql://\n"
    )


TOKEN_LINE = re.compile(r"^  (ADMIN|MANAGER|LEARNER) +(.+?) <(\S+)> +(cg_\S+)$")


def demo_tokens(out: str) -> dict[str, str]:
    """email -> token, from the demo's output."""
    return {m[3]: m[4] for line in out.splitlines() if (m := TOKEN_LINE.match(line))}


async def test_demo_loads_once_and_then_shows_the_same_tokens(cli: Cli) -> None:
    first = cli.ok("demo")  # applies the migrations itself
    assert "Demo data loaded: 4 people, 7 courses, 3 certifications, 6 enrollments." in first
    tokens = demo_tokens(first)
    assert len(tokens) == 4
    counts = await cli.counts()
    assert counts == {"users": 4, "courses": 7, "certifications": 3, "enrollments": 6}

    second = cli.ok("demo")
    assert "already loaded; nothing was created" in second
    assert demo_tokens(second) == tokens  # kept in the data dir, not piled up
    assert await cli.counts() == counts
    roles = {email: (await cli.authenticate(token)).role for email, token in tokens.items()}
    assert sorted(roles.values()) == sorted([Role.ADMIN, Role.MANAGER, Role.LEARNER, Role.LEARNER])


async def test_demo_if_empty_leaves_a_database_with_real_users_alone(migrated: Cli) -> None:
    migrated.ok(
        "user", "create", "--name", "Real", "--email", "real@example.com", "--role", "admin"
    )
    out = migrated.ok("demo", "--if-empty")
    assert "demo data not loaded" in out
    assert demo_tokens(out) == {}
    assert (await migrated.counts())["users"] == 1


def test_gc_removes_old_unreferenced_files_and_spares_young_ones(migrated: Cli) -> None:
    blobs = migrated.directory / "var" / "blobs"
    old_digest, young_digest = "ab" * 32, "cd" * 32
    for digest in (old_digest, young_digest):
        (blobs / digest[:2]).mkdir(parents=True)
        (blobs / digest[:2] / digest).write_bytes(b"%PDF-1.7 orphan")
    two_hours_ago = time.time() - 7200
    os.utime(blobs / old_digest[:2] / old_digest, (two_hours_ago, two_hours_ago))

    out = migrated.ok("gc")
    assert out == ("removed 1 unreferenced file(s) (15 bytes) and 0 abandoned upload(s); kept 1\n")
    assert not (blobs / old_digest[:2] / old_digest).exists()
    assert (blobs / young_digest[:2] / young_digest).exists()


def test_plugins_lists_the_builtin_policies(cli: Cli) -> None:
    out = cli.ok("plugins")
    lines = out.splitlines()
    assert lines[0] == "completion policies:"
    listed = {line.split()[0]: line.split(" from ", 1)[1] for line in lines if " from " in line}
    assert listed == {
        "all-required": "plugins.all_required",
        "external-evidence": "plugins.external_evidence",
        "mandatory-subset": "plugins.mandatory_subset",
    }
    assert lines[-1] == "every plugin loaded"


def test_schema_prints_the_sdl(cli: Cli) -> None:
    out = cli.ok("schema")
    assert re.search(r"^type Query \{$", out, re.MULTILINE)
    assert out.endswith("}\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_graphql_over_http(migrated: Cli, workers: int) -> None:
    """`certgraph serve`: each worker builds the app and opens the database in its lifespan."""
    record = json.loads(
        migrated.ok(
            "user",
            "create",
            "--name",
            "Ann",
            "--email",
            "ann@example.com",
            "--role",
            "admin",
            "--json",
        )
    )
    port = free_port()
    log_path = migrated.directory / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(CERTGRAPH), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=migrated.directory,
            env=migrated.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.2)
        response = httpx.post(
            f"{base}/graphql",
            json={"query": "{ viewer { id email role } }"},
            headers={"Authorization": f"Bearer {record['token']}"},
            timeout=10,
        )
        assert response.status_code == 200, log_path.read_text()[-3000:]
        assert response.json() == {
            "data": {"viewer": {"id": record["id"], "email": "ann@example.com", "role": "ADMIN"}}
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [var for var in SETTINGS_VARIABLES.values() if f"`{var}`" not in readme]
    assert missing == [], f"README.md's configuration table lacks {missing}"
