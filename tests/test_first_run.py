"""The first hour with `make run` (issue 13 item 5): demo tokens kept and shown again instead
of piling up, `demo --if-empty` as its help says, a missing SQLite folder named as a setting
error, a taken port refused before anything starts, and `make help` with values."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from gql.domain.errors import Unauthenticated
from gql.settings import SettingsError, check_sqlite_folder
from gql.store.models import ApiToken
from tests.test_cli import REPO, Cli, demo_tokens

# They run `certgraph` and `make` as subprocesses, on SQLite files of their own.
pytestmark = [pytest.mark.slow, pytest.mark.database_independent]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


async def live_token_count(cli: Cli) -> int:
    async with cli.database():
        count: int = await ApiToken.filter(revoked_at=None).count()
        return count


async def test_demo_tokens_are_kept_owner_only_and_reissued_only_when_they_stop_working(
    cli: Cli,
) -> None:
    first = demo_tokens(cli.ok("demo"))
    kept = cli.directory / "var" / "demo-tokens.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert str(kept) in cli.ok("demo")  # the output says where they are
    assert demo_tokens(cli.ok("demo", "--if-empty")) == first
    assert await live_token_count(cli) == 4  # three runs, one token per person

    # A revoked token (or a new database under an old file): new tokens, the old ones revoked.
    cli.ok("token", "revoke", "--email", "leo.learner@demo.certgraph.test")
    second = demo_tokens(cli.ok("demo"))
    assert set(second) == set(first) and set(second.values()).isdisjoint(first.values())
    for token in first.values():
        with pytest.raises(Unauthenticated):
            await cli.authenticate(token)
    assert await live_token_count(cli) == 4

    # A file others may read is not trusted: re-issued and rewritten owner-only.
    kept.chmod(0o644)
    third = demo_tokens(cli.ok("demo"))
    assert set(third.values()).isdisjoint(second.values())
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert demo_tokens(cli.ok("demo")) == third


async def test_demo_if_empty_shows_the_demo_tokens_even_beside_other_users(cli: Cli) -> None:
    first = demo_tokens(cli.ok("demo", "--if-empty"))
    assert len(first) == 4
    cli.ok("user", "create", "--name", "Real", "--email", "real@example.com", "--role", "admin")
    out = cli.ok("demo", "--if-empty")
    assert "nothing was created" in out and demo_tokens(out) == first
    assert (await cli.counts())["users"] == 5


def test_a_sqlite_file_in_a_missing_folder_is_a_setting_error(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir"
    cli.url = f"sqlite://{missing / 'x.sqlite3'}"
    for command in (
        ["migrate"],
        ["demo"],
        ["user", "create", "--name", "A", "--email", "a@example.com", "--role", "admin"],
        ["serve", "--port", "1"],
    ):
        result = cli(*command)
        assert result.returncode == 2, (command, result)
        assert "CERTGRAPH_DATABASE_URL" in result.stderr and "does not exist" in result.stderr
        assert not missing.exists()
    with pytest.raises(SettingsError):
        check_sqlite_folder("sqlite:///nonexistent-dir/x.sqlite3")
    check_sqlite_folder("sqlite://./var/certgraph.sqlite3")  # the default's folder is made


def test_serve_refuses_a_taken_port_at_once_with_a_hint(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr and "PORT=" in result.stderr
    assert "Uvicorn running" not in result.stderr


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_make_help_shows_values() -> None:
    out = make("help", "PORT=9123").stdout
    assert "http://127.0.0.1:9123/graphql" in out
    assert "postgres://" in out and "$(" not in out


def test_make_run_checks_the_port_before_anything_else() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = make("run", f"PORT={port}")
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr
    assert "certgraph" not in result.stdout  # no migrate, no demo, no banner
