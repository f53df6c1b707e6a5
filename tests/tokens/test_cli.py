"""`certgraph token create --expires-in DAYS --name NAME` and `token revoke --id`, run as a
user runs them (a subprocess against a temporary SQLite file, tests/test_cli.py's harness)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gql.api.ids import decode_id
from gql.domain.errors import Unauthenticated
from gql.store.models import ApiToken
from tests.test_cli import Cli, copy_database

# The tests run `certgraph` as a subprocess, on a SQLite file of their own (tests/test_cli.py).
pytestmark = [pytest.mark.slow, pytest.mark.database_independent]


@pytest.fixture(scope="module")
def with_learner(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    prepared = Cli(tmp_path_factory.mktemp("tokens"))
    prepared.ok("migrate")
    prepared.ok(
        "user", "create", "--name", "Leo", "--email", "leo@example.com", "--role", "learner"
    )
    return prepared


@pytest.fixture
def cli(with_learner: Cli, tmp_path: Path) -> Cli:
    return copy_database(with_learner, tmp_path)


async def test_a_token_that_expires_in_so_many_days(cli: Cli) -> None:
    before = datetime.now(UTC)
    out = cli.ok(
        "token",
        "create",
        "--email",
        "leo@example.com",
        "--expires-in",
        "30",
        "--name",
        "  nightly   export ",
        "--json",
    )
    after = datetime.now(UTC)

    record = json.loads(out)
    assert set(record) == {"id", "email", "role", "token", "tokenId", "name", "expiresAt"}
    assert record["name"] == "nightly export"
    expires = datetime.fromisoformat(record["expiresAt"])
    assert before + timedelta(days=30) <= expires <= after + timedelta(days=30)
    assert (await cli.authenticate(record["token"])).email == "leo@example.com"
    pk = decode_id(record["tokenId"], "ApiToken")
    async with cli.database():
        row = await ApiToken.get(id=pk)
    assert (row.name, row.expires_at) == ("nightly export", expires)


def test_without_json_it_says_when_the_token_expires(cli: Cli) -> None:
    out = cli.ok("token", "create", "--email", "leo@example.com", "--expires-in", "7")
    lines = out.splitlines()
    assert lines[0].startswith("new token for LEARNER Leo <leo@example.com> (id ")
    assert lines[1].startswith("token (shown only now): cg_")
    assert lines[2].startswith("token id ") and ", expires 20" in lines[2]

    forever = cli.ok("token", "create", "--email", "leo@example.com", "--name", "ops")
    assert forever.splitlines()[2].endswith(', named "ops", no expiry')


@pytest.mark.parametrize(
    "args",
    [
        ["--expires-in", "0"],
        ["--expires-in", "3651"],
        ["--expires-in", "soon"],
        ["--name", "x" * 201],
    ],
    ids=["zero days", "beyond ten years", "not a number", "long name"],
)
async def test_bad_token_arguments_exit_2_with_one_line_and_write_nothing(
    cli: Cli, args: list[str]
) -> None:
    async with cli.database():
        before = await ApiToken.all().count()
    result = cli("token", "create", "--email", "leo@example.com", *args)
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    async with cli.database():
        assert await ApiToken.all().count() == before


async def test_revoke_one_token_by_its_id(cli: Cli) -> None:
    keep = json.loads(cli.ok("token", "create", "--email", "leo@example.com", "--json"))
    drop = json.loads(cli.ok("token", "create", "--email", "leo@example.com", "--json"))

    out = cli.ok("token", "revoke", "--id", drop["tokenId"])

    assert out.startswith(f"token {drop['tokenId']} revoked at 20")
    with pytest.raises(Unauthenticated):
        await cli.authenticate(drop["token"])
    assert (await cli.authenticate(keep["token"])).email == "leo@example.com"
    # by number too, and a second time changes nothing
    number = str(decode_id(drop["tokenId"], "ApiToken"))
    assert cli.ok("token", "revoke", "--id", number) == out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--email", "leo@example.com", "--id", "1"],
        ["--id", "nonsense"],
        ["--id", "999999"],
    ],
    ids=["neither", "both", "not an id", "no such token"],
)
def test_revoke_needs_exactly_one_existing_target(cli: Cli, args: list[str]) -> None:
    result = cli("token", "revoke", *args)
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
