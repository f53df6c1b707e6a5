"""Where certgraph's in-process time goes for one operation, by package.

    python -m bench.profile --db sqlite://./var/bench/bench-0.1.sqlite3 --op Q1 --iterations 100

Runs the operation through bench.run's in-process harness (`schema.execute`, no HTTP) under
pyinstrument and prints the share of wall-clock samples per package (each sample counts for
the innermost frame that belongs to a known package; builtins count for their caller), then
pyinstrument's call tree. Wall clock, so on PostgreSQL "event loop" includes waiting for the
server. docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from pyinstrument import Profiler

from bench import run

# (substring of a frame's file path, group); the first match wins
PACKAGES = (
    ("tortoise", "Tortoise ORM + pypika"),
    ("pypika", "Tortoise ORM + pypika"),
    ("/graphql/", "GraphQL execution"),
    ("strawberry", "GraphQL execution"),
    ("asyncpg", "driver (sqlite3/aiosqlite, asyncpg)"),
    ("aiosqlite", "driver (sqlite3/aiosqlite, asyncpg)"),
    ("sqlite3", "driver (sqlite3/aiosqlite, asyncpg)"),
    # graphql-core, strawberry and certgraph's own executor (FastExecutionContext)
    ("/gql/api/execution.py", "GraphQL execution"),
    ("/gql/", "certgraph (gql/)"),
    ("asyncio", "event loop, threads"),
    ("selectors", "event loop, threads"),
    ("threading", "event loop, threads"),
)
OTHER = "other (stdlib, json, pydantic)"


def package_of(path: str | None) -> str:
    for key, name in PACKAGES:
        if key in (path or ""):
            return name
    return OTHER


def shares(root: Any) -> Counter[str]:
    totals: Counter[str] = Counter()

    def walk(frame: Any, caller: str) -> None:
        group = package_of(frame.file_path)
        if group == OTHER and not (frame.file_path or "").endswith(".py"):
            group = caller  # a builtin, or pyinstrument's [self] frame: its caller's time
        own = frame.time - sum(child.time for child in frame.children)
        totals[group] += max(0.0, own)
        for child in frame.children:
            walk(child, group)

    walk(root, OTHER)
    return totals


async def profile(url: str, op_name: str, iterations: int) -> None:
    # imported before profiling so that module loading is not in the samples
    import gql.api.context
    import gql.api.schema  # noqa: F401

    data = run.load_dataset(url)
    [op] = [o for o in run.operations(data) if o.name == op_name]
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    cpu = time.process_time()
    profiler.start()
    result = await run.in_process(data, [op], iterations)
    profiler.stop()
    cpu = time.process_time() - cpu
    session = profiler.last_session
    assert session is not None
    totals = shares(session.root_frame())
    total = sum(totals.values()) or 1.0
    print(f"{op_name} on {data.dialect}: {result[op_name]}; {cpu:.2f} s CPU for {iterations}")
    for group, seconds in totals.most_common():
        print(f"  {group:40s} {100 * seconds / total:5.1f}%")
    print(profiler.output_text(unicode=False, color=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="a database made by bench.generate")
    parser.add_argument("--op", default="Q1", help="Q0, Q1, Q2, M1, PAGE1 or PAGE500")
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(profile(args.db, args.op, args.iterations))


if __name__ == "__main__":
    main()
