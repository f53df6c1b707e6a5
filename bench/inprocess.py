"""certgraph's own time per operation, without a network: its ASGI app called in process.

    python -m bench.inprocess --db URL [--db URL] [--ops Q0,Q1,Q2,Q3,M1,M2] [--iterations 100]
    python -m bench.inprocess --db URL --base /tmp/ab-base [--runs 4]   # A/B against a checkout

The app is `gql.app.create_app()` configured by CERTGRAPH_* variables, as `certgraph serve`
builds it; each request goes through its middleware, GraphQL view and database like an HTTP
one, and the SQL statements it sends are counted on Tortoise's connection classes. Only
certgraph's public surfaces are used (the app factory and the database), so the same worker
runs any checkout's code: with --base, runs alternate between the working tree's code and
the checkout's, each in a fresh process whose `gql` and `plugins` come from that tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "var" / "bench" / "in-process"
DEFAULT_OPS = ("Q0", "Q1", "Q2", "Q3", "M1", "M2")

# --- the worker: runs in a process of its own, importing nothing from bench ------------------


class Counter:
    """Statements sent through Tortoise's connection classes (transaction control not counted).

    The event dispatcher's (its loop's task and its deliveries', by the names certgraph gives
    them) are counted apart, in `background`: it runs beside the requests, not for one.
    """

    METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many")
    BACKGROUND_TASKS = ("certgraph-dispatcher", "deliver-")

    def __init__(self) -> None:
        self.count = 0
        self.refreshes = 0
        self.background = 0

    def install(self) -> None:
        from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
        from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionWrapper

        for cls in (SqliteClient, SqliteTransactionWrapper, AsyncpgDBClient, TransactionWrapper):
            for name in self.METHODS:
                original = cls.__dict__.get(name)
                if original is not None:
                    setattr(cls, name, self.wrap(original))

    def wrap(self, original: Any) -> Any:
        counter = self

        async def counted(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is not None and task.get_name().startswith(counter.BACKGROUND_TASKS):
                counter.background += 1
                return await original(*args, **kwargs)
            counter.count += 1
            sql = str(args[1] if len(args) > 1 else kwargs.get("query", ""))
            if sql.startswith('UPDATE "api_token"'):
                counter.refreshes += 1  # a token's last_used_at, refreshed once a minute
            return await original(*args, **kwargs)

        return counted


class Asgi:
    """Drives an ASGI app: its lifespan, and one HTTP request at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(
            self.app(scope, self.lifespan_in.get, self.lifespan_out.put)
        )
        await self.lifespan_in.put({"type": "lifespan.startup"})
        message = await self.lifespan_out.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {message}")
        self.state = scope["state"]

    async def stop(self) -> None:
        await self.lifespan_in.put({"type": "lifespan.shutdown"})
        await self.lifespan_out.get()
        if self.task is not None:
            await self.task

    async def post(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self.state),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client stays connected
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def request_bytes(
    payload: str, token: str, upload: bytes | None, boundary: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    if upload is None:
        return payload.encode(), [(b"content-type", b"application/json"), *headers]
    files_map = json.dumps({"0": ["variables.file"]})
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{payload}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{files_map}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="certificate.pdf"'
        "\r\nContent-Type: application/pdf\r\n\r\n"
    ).encode()
    content_type = f"multipart/form-data; boundary={boundary}".encode()
    return head + upload + f"\r\n--{boundary}--\r\n".encode(), [
        (b"content-type", content_type),
        *headers,
    ]


def reset(url: str, statements: list[str], data_dir: Path) -> None:
    """Back to the generated state: the dataset's restore statements, stored blobs removed."""
    if url.startswith("sqlite://"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite://") :].split("?")[0], isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
            try:
                async with conn.transaction():
                    for statement in statements:
                        await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())
    shutil.rmtree(data_dir / "blobs", ignore_errors=True)


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Every operation of the job through the app; p50 and statement counts per operation."""
    os.environ["CERTGRAPH_DATABASE_URL"] = job["db"]
    os.environ["CERTGRAPH_DATA_DIR"] = job["data_dir"]
    os.environ["CERTGRAPH_RATE_LIMIT_PER_MINUTE"] = "0"  # one token sends every request
    # periodic work, not a request's (as in bench.run): no reminder sweep at start-up
    os.environ["CERTGRAPH_SWEEP_INTERVAL_SECONDS"] = "0"
    if job.get("stock_executor"):
        from gql.api import execution

        if not hasattr(execution, "STOCK_ONLY"):
            raise SystemExit("this checkout has no stock-executor switch")
        execution.STOCK_ONLY = True
    if job.get("stack"):  # bench.instructions --stack: strawberry alone, answers from memory
        os.environ["BENCH_STACK_EXECUTOR"] = job["stack"]
        from bench.stack import create_app
    elif job.get("floor"):  # bench.instructions: the floor's app, on the same dataset
        os.environ["BENCH_FLOOR_DB"] = job["db"]
        os.environ["BENCH_FLOOR_DATA_DIR"] = job["data_dir"]
        from bench.floor import create_app
    else:
        from gql.app import create_app

    counter = Counter()
    counter.install()
    asgi = Asgi(create_app())
    data_dir = Path(job["data_dir"])
    loop = asyncio.get_running_loop()
    await asgi.start()
    if job.get("served_gc") and not job.get("floor"):
        # as `certgraph serve` tunes its process (bench.instructions counts what it runs)
        from gql.app import tune_garbage_collector

        tune_garbage_collector()
    results: dict[str, Any] = {}
    try:
        for op in job["ops"]:
            upload = op.get("upload_bytes")
            requests = op["requests"]
            if op["writes"]:
                await loop.run_in_executor(None, reset, job["db"], job["reset"], data_dir)
            warmup = 3 if op["writes"] else min(len(requests), 60)
            times: list[float] = []
            cpu: list[float] = []
            counts: list[int] = []
            failed: list[str] = []
            background = counter.background
            for i in range(job["iterations"] + warmup):
                if i == warmup:
                    background = counter.background
                payload, token = requests[i % len(requests)]
                body, headers = request_bytes(payload, token, upload, "certgraph-bench-9f4c2e71")
                before, refreshes = counter.count, counter.refreshes
                started, cpu_started = time.perf_counter(), time.process_time()
                status, answer = await asgi.post(body, headers)
                elapsed = time.perf_counter() - started
                cpu_used = time.process_time() - cpu_started
                parsed = json.loads(answer) if answer else {}
                payloads = (parsed.get("data") or {}).values()
                if (
                    status != 200
                    or parsed.get("errors")
                    or any(isinstance(p, dict) and p.get("errors") for p in payloads)
                ):
                    failed.append(f"{status} {answer[:300]!r}")
                if i >= warmup:
                    times.append(elapsed * 1000)
                    cpu.append(cpu_used * 1000)
                    counts.append(counter.count - before - (counter.refreshes - refreshes))
            background = counter.background - background
            if op["writes"]:
                await loop.run_in_executor(None, reset, job["db"], job["reset"], data_dir)
            results[op["name"]] = {
                "p50_ms": round(statistics.median(times), 3),
                # this process's CPU (all its threads): steadier than wall time on a busy machine
                "cpu_p50_ms": round(statistics.median(cpu), 3),
                "sql_queries": int(statistics.median(counts)),
                "sql_queries_range": [min(counts), max(counts)],
                # the dispatcher's, beside the requests (fan-out of their events)
                "background_sql_per_request": round(background / max(1, len(counts)), 2),
                "errors": len(failed),
                "first_error": failed[0] if failed else None,
            }
    finally:
        await asgi.stop()
    return results


def worker_main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    for op in job["ops"]:
        if op.get("upload"):
            op["upload_bytes"] = Path(op["upload"]).read_bytes()
    print(json.dumps(asyncio.run(run_job(job))))


# --- the driver: builds the jobs from the dataset, runs the workers --------------------------


def build_job(
    url: str, ops: list[str], iterations: int, stock_executor: bool = False
) -> dict[str, Any]:
    from bench import run

    data = run.load_dataset(url)
    if url.startswith("sqlite://"):  # the worker runs in the checkout's directory
        url = "sqlite://" + str(run.sqlite_path(url).resolve())
    job: dict[str, Any] = {
        "db": url,
        "data_dir": str(DATA_DIR),
        "iterations": iterations,
        "reset": run.restore_sql(data.meta["max_ids"]),
        "stock_executor": stock_executor,
        "ops": [],
    }
    upload_file = DATA_DIR.parent / "in-process-upload.pdf"
    for op in run.operations(data, ops):
        entry: dict[str, Any] = {"name": op.name, "requests": op.requests, "writes": op.writes}
        if op.upload is not None:
            upload_file.parent.mkdir(parents=True, exist_ok=True)
            upload_file.write_bytes(op.upload)
            entry["upload"] = str(upload_file)
        job["ops"].append(entry)
    return job


def run_worker(job: dict[str, Any], tree: Path = ROOT) -> dict[str, Any]:
    """One worker process on `tree`'s code (its gql and plugins first on the path)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    env = dict(os.environ, PYTHONPATH=str(tree))
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", handle.name],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise RuntimeError(f"in-process worker on {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(url: str, ops: list[str], iterations: int) -> dict[str, Any]:
    """One database, the working tree's code: what bench.run reports as in-process."""
    return run_worker(build_job(url, ops, iterations))


def compare(
    urls: list[str], ops: list[str], iterations: int, runs: int, sides: dict[str, Any]
) -> list[dict[str, Any]]:
    """Alternating runs (A, B, then B, A, ...) of each side's worker; medians of the runs."""
    rows = []
    for url in urls:
        jobs = {
            name: build_job(url, ops, iterations, stock_executor=stock)
            for name, (_, stock) in sides.items()
        }
        p50s: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
        cpus: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
        sql: dict[str, dict[str, int]] = {name: {} for name in sides}
        for rep in range(runs):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for name in order:
                result = run_worker(jobs[name], sides[name][0])
                for op, found in result.items():
                    if found["errors"]:
                        raise RuntimeError(f"{name} {op}: {found['first_error']}")
                    p50s[name].setdefault(op, []).append(found["p50_ms"])
                    cpus[name].setdefault(op, []).append(found["cpu_p50_ms"])
                    sql[name][op] = found["sql_queries"]
                print(f"   {url.split(':')[0]} run {rep + 1} {name}: "
                      + ", ".join(f"{op} {v['p50_ms']:.2f} ({v['cpu_p50_ms']:.2f} CPU)"
                                  for op, v in result.items()),
                      file=sys.stderr, flush=True)  # fmt: skip
        a, b = list(sides)
        for op in ops:
            ma, mb = statistics.median(p50s[a][op]), statistics.median(p50s[b][op])
            ca, cb = statistics.median(cpus[a][op]), statistics.median(cpus[b][op])
            rows.append(
                {"db": url.split(":")[0].replace("postgresql", "postgres"), "op": op,
                 a: round(ma, 2), b: round(mb, 2), "change": f"{(mb - ma) / ma:+.1%}",
                 f"{a}_cpu": round(ca, 2), f"{b}_cpu": round(cb, 2),
                 "cpu_change": f"{(cb - ca) / ca:+.1%}",
                 f"{a}_runs": p50s[a][op], f"{b}_runs": p50s[b][op],
                 f"{a}_cpu_runs": cpus[a][op], f"{b}_cpu_runs": cpus[b][op],
                 "sql": f"{sql[a][op]} -> {sql[b][op]}"}
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main(argv[1])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--db", action="append", required=True, help="a bench.generate dataset")
    parser.add_argument("--ops", default=",".join(DEFAULT_OPS))
    parser.add_argument("--iterations", type=int, default=100, help="requests per op and run")
    parser.add_argument("--base", type=Path, help="A/B: a checkout of the code to compare with")
    parser.add_argument(
        "--stock-executor",
        action="store_true",
        help="A/B: the working tree with FastExecutionContext against strawberry's executor",
    )
    parser.add_argument("--runs", type=int, default=4, help="A/B: runs per side, alternated")
    parser.add_argument("--output", type=Path, help="write the rows as JSON here too")
    args = parser.parse_args(argv)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if args.base is None and not args.stock_executor:
        for url in args.db:
            print(url, json.dumps(measure(url, ops, args.iterations), indent=1))
        return 0
    if args.base is not None:
        sides = {"base": (args.base.resolve(), False), "tree": (ROOT, False)}
    else:
        sides = {"stock": (ROOT, True), "fast": (ROOT, False)}
    rows = compare(args.db, ops, args.iterations, args.runs, sides)
    a, b = list(sides)
    print(f"| op | db | {a} p50 ms | {b} p50 ms | change | {a} CPU ms | {b} CPU ms | change"
          " | statements |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['op']} | {row['db']} | {row[a]:.2f} | {row[b]:.2f} | {row['change']}"
              f" | {row[f'{a}_cpu']:.2f} | {row[f'{b}_cpu']:.2f} | {row['cpu_change']}"
              f" | {row['sql']} |")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    # Run as a script (the worker), this directory comes first on the path: bench/profile.py
    # must not stand in for the standard library's profile module.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)
    raise SystemExit(main())
