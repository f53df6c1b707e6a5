"""Check that a dataset's stored columns are what certgraph itself answers from them.

    python -m bench.verify --db URL [--learners 200]
    python -m bench.verify --db URL --learner-ids 12,34     # rows a benchmark run wrote

For a sample of active learners (the heavy ones included) it asks certgraph, through its app
in process and each learner's own token, for every enrollment's status, progress and award
dates, and compares them with the stored columns the RELEVANCE sort and the reports read in
SQL: the status they give, the stored progress (unless a recertification window opened since
the last evaluation) and the latest award's dates. Ended enrollments, which the learner's
list leaves out, are not compared (deactivated learners' tokens are refused). Any difference
is printed; exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from datetime import UTC, datetime
from typing import Any

from bench.generate import plain_token
from bench.inprocess import DATA_DIR, Asgi
from bench.run import db_query, read_meta_sync

ENROLLMENTS = (
    "query V($after: String) { viewer { certifications(first: 100, after: $after) {"
    " pageInfo { hasNextPage endCursor } edges { node { id status progressPercent completedAt"
    " expiresAt } } } } }"
)


def parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def stored_status(row: dict[str, Any], now: datetime) -> str:
    """The status the stored columns give (the CASE of the RELEVANCE sort and the reports)."""
    awarded, expires = parse_time(row["last_awarded_at"]), parse_time(row["last_expires_at"])
    if awarded is not None:
        return "COMPLETED" if expires is None or expires > now else "EXPIRED"
    status = str(row["verdict_status"])
    return "STARTED" if status == "COMPLETE" else status


def stored_rows(url: str, learner_ids: list[int]) -> dict[int, dict[str, Any]]:
    columns = (
        "id", "learner_id", "verdict_status", "verdict_progress", "last_awarded_at",
        "last_expires_at", "window_opens_at",
    )  # fmt: skip
    marks = ", ".join(f"${i + 1}" for i in range(len(learner_ids)))
    rows = db_query(
        url,
        f"SELECT {', '.join(columns)} FROM enrollment WHERE learner_id IN ({marks})"
        " AND ended_at IS NULL",
        *learner_ids,
    )
    return {int(row[0]): dict(zip(columns, row, strict=True)) for row in rows}


async def answers(url: str, seed: int, learner_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Every enrollment of these learners as certgraph answers it, by enrollment id."""
    os.environ["CERTGRAPH_DATABASE_URL"] = url
    os.environ["CERTGRAPH_DATA_DIR"] = str(DATA_DIR)
    os.environ["CERTGRAPH_RATE_LIMIT_PER_MINUTE"] = "0"
    # read only: no reminder sweep from the app's dispatcher (it would write reminders)
    os.environ["CERTGRAPH_SWEEP_INTERVAL_SECONDS"] = "0"
    import base64

    from gql.app import create_app

    asgi = Asgi(create_app())
    await asgi.start()
    found: dict[int, dict[str, Any]] = {}
    try:
        for learner in learner_ids:
            headers = [
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {plain_token(seed, learner)}".encode()),
            ]
            after = None
            while True:
                body = json.dumps({"query": ENROLLMENTS, "variables": {"after": after}})
                status, raw = await asgi.post(body.encode(), headers)
                answer = json.loads(raw)
                if status != 200 or answer.get("errors"):
                    raise RuntimeError(f"learner {learner}: {status} {raw[:300]!r}")
                page = answer["data"]["viewer"]["certifications"]
                for edge in page["edges"]:
                    node = edge["node"]
                    pk = int(base64.b64decode(node["id"]).decode().split(":")[1])
                    found[pk] = node
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
    finally:
        await asgi.stop()
    return found


def differences(url: str, seed: int, learner_ids: list[int]) -> list[str]:
    stored = stored_rows(url, learner_ids)
    answered = asyncio.run(answers(url, seed, learner_ids))
    now = datetime.now(UTC)
    problems = []
    if not stored:
        problems.append("no enrollments to check")
    if set(stored) != set(answered):
        problems.append(
            f"enrollments stored but not answered: {sorted(set(stored) - set(answered))}"
        )
    for pk, row in sorted(stored.items()):
        node = answered.get(pk)
        if node is None:
            continue
        status = stored_status(row, now)
        if node["status"] != status:
            problems.append(
                f"enrollment {pk}: stored columns say {status}, certgraph {node['status']}"
            )
        opens = parse_time(row["window_opens_at"])
        progress = round(float(row["verdict_progress"]) * 100)
        if (opens is None or now < opens) and node["progressPercent"] != progress:
            problems.append(
                f"enrollment {pk}: stored progress {progress}%,"
                f" certgraph {node['progressPercent']}%"
            )
        if status == "COMPLETED":
            for column, field in (
                ("last_awarded_at", "completedAt"),
                ("last_expires_at", "expiresAt"),
            ):
                if parse_time(row[column]) != parse_time(node[field]):
                    problems.append(
                        f"enrollment {pk}: {column} {row[column]}, certgraph {node[field]}"
                    )
    return problems


def report(learners: int, problems: list[str]) -> int:
    print(json.dumps({"learners": learners, "differences": len(problems)}))
    for line in problems[:50]:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--learners", type=int, default=200, help="how many to sample")
    parser.add_argument("--learner-ids", help="check these learners (comma-separated) instead")
    args = parser.parse_args(argv)
    meta = read_meta_sync(args.db)
    if args.learner_ids:
        ids = sorted({int(x) for x in args.learner_ids.split(",") if x.strip()})
    else:
        learners = [
            r[0]
            for r in db_query(
                args.db,
                "SELECT id FROM \"user\" WHERE role = 'LEARNER' AND deactivated_at IS NULL",
            )
        ]
        rng = random.Random(meta["seed"])
        picked = set(rng.sample(sorted(learners), min(args.learners, len(learners))))
        picked |= {p["id"] for p in meta["workload"]["heavy_learners"][:2]}
        ids = sorted(picked)
    return report(len(ids), differences(args.db, int(meta["seed"]), ids))


if __name__ == "__main__":
    raise SystemExit(main())
