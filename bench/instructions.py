"""Instructions per request, counted rather than timed: bench.inprocess's worker run under
valgrind's cachegrind, which counts every instruction the process executes (its threads
included, SQLite's among them; not the PostgreSQL server's). The count is the same for the
same code and data whatever else the machine does, where times on a shared 2-core machine
move by ±50% from one minute to the next, so a change of a few per cent shows.

    python -m bench.instructions --db URL [--db URL] [--ops Q1,Q0] [--floor] [--base TREE]

Each operation runs twice in a fresh worker, with --short and --long measured requests after
the same start-up and warm-up (a write operation starts from the generated state each time);
the difference over (long - short) is the count per request. --floor counts the floor's app
(bench/floor.py) on the same requests; --base counts another checkout's code too (as
bench.inprocess --base). certgraph runs with the garbage collector tuned as `certgraph serve`
tunes it. Under cachegrind a worker runs about 50 times slower: a row takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.inprocess import ROOT, build_job

I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(job: dict[str, Any], tree: Path) -> int:
    """The instructions of one worker process running `job` on `tree`'s code."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, str(ROOT / "bench" / "inprocess.py"), "--worker", handle.name,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    found = I_REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"worker on {tree} failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    for op, result in answer.items():
        if result["errors"]:
            raise RuntimeError(f"{op} on {tree}: {result['first_error']}")
    return int(found.group(1).replace(",", ""))


def per_request(
    url: str, op: str, tree: Path, short: int, long: int, *, floor: bool, stack: str = ""
) -> float:
    counts = []
    for iterations in (short, long):
        job = build_job(url, [op], iterations)
        job["served_gc"] = True
        job["floor"] = floor
        job["stack"] = stack
        counts.append(count(job, tree))
    return (counts[1] - counts[0]) / (long - short)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--db", action="append", required=True, help="a bench.generate dataset")
    parser.add_argument("--ops", default="Q1")
    parser.add_argument("--floor", action="store_true", help="count the floor's app too")
    parser.add_argument("--base", type=Path, help="count this checkout's code too")
    parser.add_argument(
        "--stack",
        action="store_true",
        help="Q0 and Q1: count strawberry alone too, answering from memory (bench/stack.py), "
        "on its own executor and on FastExecutionContext",
    )
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=50)
    parser.add_argument("--output", type=Path, help="write the rows as JSON here too")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.long <= args.short:
        parser.error("--long must be more than --short")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    rows = []
    for url in args.db:
        db = url.split(":")[0].replace("postgresql", "postgres")
        for op in ops:
            row: dict[str, Any] = {"op": op, "db": db}
            sizes = (args.short, args.long)
            row["certgraph"] = per_request(url, op, ROOT, *sizes, floor=False)
            if args.base is not None:
                row["base"] = per_request(url, op, args.base.resolve(), *sizes, floor=False)
            if args.floor:
                row["floor"] = per_request(url, op, ROOT, *sizes, floor=True)
            if args.stack and op in ("Q0", "Q1"):
                for executor in ("stock", "fast"):
                    row[f"stack_{executor}"] = per_request(
                        url, op, ROOT, *sizes, floor=False, stack=executor
                    )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print("| op | db | certgraph (M instructions / request) | base | change | floor | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cg, base, floor = row["certgraph"], row.get("base"), row.get("floor")
        print(
            f"| {row['op']} | {row['db']} | {cg / 1e6:.2f}"
            f" | {'-' if base is None else f'{base / 1e6:.2f}'}"
            f" | {'-' if base is None else f'{(cg - base) / base:+.1%}'}"
            f" | {'-' if floor is None else f'{floor / 1e6:.2f}'}"
            f" | {'-' if floor is None else f'{cg / floor:.2f}'} |"
        )
    for row in rows:
        if "stack_stock" in row:
            print(
                f"{row['op']} ({row['db']} dataset): strawberry alone, answers from memory:"
                f" {row['stack_stock'] / 1e6:.2f} M on its own executor,"
                f" {row['stack_fast'] / 1e6:.2f} M on FastExecutionContext"
            )
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
