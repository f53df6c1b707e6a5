"""Check that a generated dataset is what the domain itself would have stored.

    python -m bench.verify --db URL [--learners 200]

For a sample of learners it runs the domain's own evaluate_enrollments over their
enrollments (in a transaction that is rolled back, the clock frozen at the dataset's "now")
and compares what it would store with what the generator stored; and it compares the status
the RELEVANCE sort derives in SQL from the stored columns with the domain's read model.
Any difference is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from gql import clock
from gql.domain.evaluation import evaluate_enrollments
from gql.domain.status import current_cycle, describe_enrollments
from gql.domain.unit import Unit
from gql.store import listing
from gql.store.db import close_database, open_database
from gql.store.models import Award, Certification, Enrollment
from gql.store.sql import Sql

STORED = (
    "verdict_status",
    "verdict_progress",
    "verdict_explanation",
    "evaluated_cycle",
    "last_awarded_at",
    "last_expires_at",
    "last_award_cycle",
    "window_opens_at",
)


class _Rollback(Exception):
    pass


async def read_meta() -> dict[str, Any]:
    rows = await get_connection("default").execute_query_dict("SELECT key, value FROM bench_meta")
    return {row["key"]: json.loads(row["value"]) for row in rows}


def _snapshot(enrollment: Enrollment) -> dict[str, Any]:
    return {name: getattr(enrollment, name) for name in STORED}


async def _reevaluate(learner_ids: list[int]) -> tuple[int, list[str], int]:
    """Evaluate with the domain; return (enrollments checked, differences, awards it would add)."""
    problems: list[str] = []
    checked = 0
    new_awards = 0
    try:
        async with in_transaction():
            enrollments = list(await Enrollment.filter(learner_id__in=learner_ids).order_by("id"))
            before = {e.id: _snapshot(e) for e in enrollments}
            certs = {c.id: c for c in await Certification.all()}
            awards: dict[int, list[Award]] = {}
            for award in await Award.filter(enrollment_id__in=[e.id for e in enrollments]).order_by(
                "cycle"
            ):
                awards.setdefault(award.enrollment_id, []).append(award)
            # The generator evaluated each enrollment at its last write; evaluating now gives
            # the same answer unless a recertification window opened in between.
            cycle_now = {
                e.id: current_cycle(certs[e.certification_id], awards.get(e.id, []), clock.now())
                for e in enrollments
            }
            unit = Unit(actor_id=None, now=clock.now())
            await evaluate_enrollments(enrollments, unit)
            new_awards = sum(1 for ev in unit.events if ev.name == "certification_completed")
            for e in enrollments:
                checked += 1
                if cycle_now[e.id].number != before[e.id]["evaluated_cycle"]:
                    continue
                after = _snapshot(e)
                for name in STORED:
                    old, new = before[e.id][name], after[name]
                    if isinstance(old, float) and isinstance(new, float):
                        same = abs(old - new) < 1e-9
                    else:
                        same = old == new
                    if not same:
                        problems.append(f"enrollment {e.id}: {name} stored {old!r}, domain {new!r}")
            raise _Rollback
    except _Rollback:
        pass
    return checked, problems, new_awards


async def _sql_status(learner_ids: list[int], now: datetime) -> dict[int, str]:
    sql = Sql()
    status = listing._status(sql.p(now))
    marks = ", ".join(sql.p(i) for i in learner_ids)
    rows = await get_connection("default").execute_query_dict(
        f"SELECT e.id AS id, {status} AS status FROM enrollment e WHERE e.learner_id IN ({marks})",
        sql.params,
    )
    return {int(r["id"]): str(r["status"]) for r in rows}


async def _check(learner_ids: list[int], now: datetime) -> list[str]:
    with clock.frozen(now):
        checked, problems, new_awards = await _reevaluate(learner_ids)
        sql_status = await _sql_status(learner_ids, now)
        rows = list(
            await Enrollment.filter(learner_id__in=learner_ids).select_related("certification")
        )
        views = await describe_enrollments(rows)
    for enrollment_id, view in views.items():
        if sql_status[enrollment_id] != view.status:
            problems.append(
                f"enrollment {enrollment_id}: SQL status {sql_status[enrollment_id]},"
                f" read model {view.status}"
            )
    if new_awards:
        problems.append(f"the domain would write {new_awards} award(s) the dataset lacks")
    if not checked:
        problems.append("no enrollments to check")
    return problems


async def check_learners(url: str, learner_ids: list[int], at: datetime | None) -> list[str]:
    """Differences between the stored rows of these learners and the domain's evaluation."""
    await open_database(url)
    try:
        return await _check(learner_ids, at or clock.now())
    finally:
        await close_database()


async def verify(url: str, sample: int) -> int:
    await open_database(url)
    try:
        meta = await read_meta()
        learners = [
            r["id"]
            for r in await get_connection("default").execute_query_dict(
                "SELECT id FROM \"user\" WHERE role = 'LEARNER' ORDER BY id"
            )
        ]
        rng = random.Random(meta["seed"])
        picked = set(rng.sample(learners, min(sample, len(learners))))
        picked |= {p["id"] for p in meta["workload"]["heavy_learners"][:2]}
        problems = await _check(sorted(picked), datetime.fromisoformat(meta["now"]))
    finally:
        await close_database()
    print(json.dumps({"learners": len(picked), "differences": len(problems)}))
    for line in problems[:50]:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--learners", type=int, default=200, help="how many to sample")
    parser.add_argument(
        "--learner-ids",
        help="check these learners (comma-separated) at the current time instead of a sample"
        " at the dataset's time: rows a benchmark run wrote",
    )
    args = parser.parse_args(argv)
    if args.learner_ids:
        ids = [int(x) for x in args.learner_ids.split(",") if x.strip()]
        problems = asyncio.run(check_learners(args.db, ids, at=None))
        print(json.dumps({"learners": len(ids), "differences": len(problems)}))
        for line in problems[:50]:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    return asyncio.run(verify(args.db, args.learners))


if __name__ == "__main__":
    raise SystemExit(main())
