"""`certgraph sweep` as cron runs it: processes of its own, on a SQLite file or on PostgreSQL.

The awards are made in-process through the domain with the clock frozen in 2020, so they
have long expired by the real clock the subprocesses read. Each sweep prints how many
certification_expired events it emitted; an event is emitted only by the process whose
compare-and-set claimed the award, so the printed counts of racing sweeps must add up to
the number of expired awards, never more.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gql import clock
from gql.domain import enrollments
from gql.store.models import Award, CertificationType
from tests.conftest import ON_POSTGRES
from tests.domain.factories import Factory
from tests.test_cli import CERTGRAPH, Cli

AWARDS = 120
SWEEP_OUTPUT = re.compile(
    r"^(\d+) certification_expired event\(s\) emitted\n\d+ reminder\(s\) emitted \(.*\); "
    r"\d+ settled event\(s\) pruned\n$"
)


async def make_expired_awards(count: int) -> None:
    """`count` learners, each with a 12-month award made on 2020-01-06."""
    clock.freeze(datetime(2020, 1, 6, 9, 0, tzinfo=UTC))
    try:
        make = Factory()
        course = await make.course()
        cert = await make.certification(
            course, type=CertificationType.RECURRING, validity_months=12
        )
        learners = [await make.learner() for _ in range(count)]
        await enrollments.assign_certification(
            await make.admin(), cert.id, [learner.user_id or 0 for learner in learners], None
        )
        for learner in learners:
            await make.complete(learner, course)
        # a perpetual award of the same course never expires: sweeps leave it alone
        await make.assign(await make.certification(course, name="Perpetual"), learners[0])
    finally:
        clock.unfreeze()
    assert await Award.filter(expires_at__isnull=False).count() == count


def emitted(stdout: str) -> int:
    match = SWEEP_OUTPUT.match(stdout)
    assert match, stdout
    return int(match[1])


def race_two_sweeps(cli: Cli) -> list[int]:
    """Start two `certgraph sweep` processes at once and return what each emitted."""
    processes = [
        subprocess.Popen(
            [str(CERTGRAPH), "sweep"],
            cwd=cli.directory,
            env=cli.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    counts = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        counts.append(emitted(stdout))
    return counts


async def assert_racing_sweeps_emit_once_per_award(cli: Cli) -> None:
    counts = race_two_sweeps(cli)

    assert sum(counts) == AWARDS, counts
    assert emitted(cli.ok("sweep")) == 0  # idempotent
    assert await Award.filter(expiry_noted_at=None, expires_at__isnull=False).count() == 0
    assert await Award.filter(expiry_noted_at=None, expires_at__isnull=True).count() == 1


@pytest.mark.slow
@pytest.mark.database_independent  # a SQLite file whatever the suite's database
async def test_two_sweeps_racing_on_a_sqlite_file_emit_one_event_per_award(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("migrate")
    async with cli.database():
        assert emitted(cli.ok("sweep")) == 0  # nothing has expired yet
        await make_expired_awards(AWARDS)
        await assert_racing_sweeps_emit_once_per_award(cli)


@pytest.mark.slow
@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL pass of the suite")
async def test_two_sweeps_racing_on_postgresql_emit_one_event_per_award(
    db: None, postgres_database: str, tmp_path: Path
) -> None:
    cli = Cli(tmp_path)
    cli.url = postgres_database  # the `db` fixture's freshly emptied schema
    await make_expired_awards(AWARDS)
    await assert_racing_sweeps_emit_once_per_award(cli)


@pytest.mark.slow
@pytest.mark.database_independent  # a SQLite file whatever the suite's database
def test_sweep_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    result = Cli(tmp_path)("sweep")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "run `certgraph migrate` first" in result.stderr
