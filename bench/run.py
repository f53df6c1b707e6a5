"""Run the benchmark: certgraph against its floor, over loopback, with a real load generator.

    python -m bench.run --db sqlite://./var/bench/bench-0.1.sqlite3 \
                        --db postgres://postgres@127.0.0.1:5432/certgraph_bench

Each --db must hold a dataset made by bench.generate. For each database and for 1 and 2
worker processes it starts `certgraph serve` and the floor (bench/floor.py) side by side and,
operation by operation, alternating certgraph and floor runs so that drift of a busy machine
falls on both:

1. checks that both answer the same JSON (and, for M1 and M2, that the rows the floor writes
   pass bench.verify and that both wrote the same audit rows and outbox events; for M2 also
   the same evidence and enrollment rows and the same blob);
2. measures peak throughput closed-loop with wrk (-t1, --connections at once);
3. measures p50/p99 open-loop at half of each one's peak (bench/openloop.py: constant
   arrival rate, latency from the intended send time, so queueing is not hidden), and the
   server processes' CPU time per request (/proc);
4. for M1 and M2 (--slow-webhook-ops), runs certgraph a third time, alternated with the
   other two, with a webhook endpoint configured whose receiver (in this process, SlowWebhook)
   answers after 10 s: open loop at the plain runs' rate, so that the p50s compare one load.
   certgraph's dispatcher sends to it off the request path; the ratio of the p50s (and of
   the CPU per request) says whether a slow receiver reaches the writes.

and separately runs every operation in process (bench.inprocess: the app called without a
network), for its p50 and the SQL statements certgraph sends, reported beside each ratio.
Write operations (M1, M2) start from the generated state every time: the rows a run added
are removed (outbox events, deliveries and webhook endpoints included), the enrollments it
re-evaluated restored (bench.generate.restore_sql) and the files M2 stored deleted. M2 (a
1 MB evidence upload, sent as a GraphQL multipart request) runs with 1 worker unless
--upload-workers says otherwise; Q3 (an admin's list of the enrollments of a certification
that are COMPLETED or EXPIRED, first page of 50) with 1 worker unless --q3-workers says
otherwise. certgraph runs without its reminder sweep (periodic work, left to `certgraph
sweep`) and with CERTGRAPH_WEBHOOK_ALLOW_PRIVATE=true (for the receiver).

Results go to bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from bench import inprocess
from bench import peer as peer_side
from bench.floor import add_months, encode_cursor
from bench.generate import dialect_of, restore_sql, sqlite_path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench" / "run"
VENV_BIN = Path(sys.executable).parent
CERTGRAPH_PORT = 18700
FLOOR_PORT = 18800

Q0 = "query Q0 { viewer { id } }"
Q1 = (
    "query Q1($first: Int) { viewer { certifications(first: $first) { totalCount"
    " pageInfo { hasNextPage endCursor } edges { node { id status progressPercent dueAt overdue"
    " completedAt expiresAt certification { id name kind type }"
    " courses { course { id name } status percent completedAt } } } } } }"
)
Q2 = (
    "query Q2($id: ID!) { certificationReport(certificationId: $id) { certification { id name }"
    " enrolled byStatus { status count } overdue expiringWithin(days: 30) completionRate } }"
)
M1 = (
    "mutation M1($course: ID!) { recordCourseProgress(input: {courseId: $course,"
    " completed: true}) { progress { status percent completedAt } enrollments { id status"
    " progressPercent completedAt expiresAt } errors { code message } } }"
)
M2 = (
    "mutation M2($cert: ID!, $file: Upload!) { submitEvidence(certificationId: $cert,"
    " file: $file) { evidence { id status filename contentType sizeBytes sha256 submittedAt"
    " completedOn enrollment { id status progressPercent } } errors { code message } } }"
)
# An admin's list of who holds (or held) a certification, as an export or a chase script
# reads it: the first page of 50, oldest enrollment first (docs/api.md, "Admin lists").
Q3 = (
    "query Q3($cert: ID!) { enrollments(filter: {certificationId: $cert,"
    " status: [COMPLETED, EXPIRED]}, first: 50) { totalCount pageInfo { hasNextPage endCursor }"
    " edges { node { id status dueAt overdue completedAt expiresAt completedLate"
    " learner { id name email } } } } }"
)
# Q3's certifications: those with the most enrollments Q3 lists.
Q3_CERTIFICATIONS = 10
PAGE = (
    "query PAGE($first: Int, $after: String) { courses(sort: NAME_ASC, first: $first,"
    " after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id name } } } }"
)
FLOOR_OPS = ("Q0", "Q1", "Q2", "Q3", "M1", "M2")
ALL_OPS = ("Q0", "Q1", "Q2", "Q3", "M1", "M2", "PAGE1", "PAGE500")
# issue 20's targets: p50 ratios to the floor; page 500 to page 1; Q1's p99/p50; Q1's p50
# to PostGraphile's (the peer, on PostgreSQL)
TARGETS = {"Q1": 2.0, "M1": 1.5}
PAGE_TARGET = 1.1
TAIL_TARGET = {"Q1": 2.0}
PEER_TARGET = {"Q1": 1.0}
# the wire count (bench.peer.WireCounter): requests sent one at a time after a warm-up
WIRE_WARMUP = 5
WIRE_REQUESTS = 20
# M2's file: "a 1 MB evidence upload" (quality.md), 10^6 bytes. Starlette's form parser keeps
# a part of up to 1 MiB in memory, so neither side spools it to disk before reading it.
UPLOAD_BYTES = 1_000_000
UPLOAD_NAME = "certificate.pdf"
BOUNDARY = "certgraph-bench-9f4c2e71"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
# Where certgraph (CERTGRAPH_DATA_DIR), the floor (BENCH_FLOOR_DATA_DIR) and the in-process
# runs keep the uploaded files; their blobs are removed whenever the database is reset.
DATA = WORK / "data"
DATA_DIRS = {"cg": DATA / "certgraph", "floor": DATA / "floor", "in-process": DATA / "in-process"}


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def body(operation: str, query: str, variables: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"operationName": operation, "query": query}
    if variables is not None:
        payload["variables"] = variables
    return json.dumps(payload, separators=(",", ":"))


def evidence_pdf(size: int = UPLOAD_BYTES) -> bytes:
    """A well-formed one-page PDF of exactly `size` bytes, the same for every request.

    certgraph sniffs the type from the bytes (`filetype`, which reads the `%PDF` signature);
    the content stream is padded with PDF comment lines to the size, and the cross-reference
    table points at the real offsets, so a PDF reader opens it too.
    """

    def build(padding: int) -> bytes:
        text = b"BT /F1 18 Tf 72 760 Td (certgraph benchmark evidence) Tj ET\n"
        line = b"% certgraph benchmark padding line, kept so the file is 1 MB\n"
        filler = (line * (padding // len(line) + 1))[:padding]
        if filler:
            filler = filler[:-1] + b"\n"
        stream = text + filler
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, content in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + content + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1,
            xref,
        )
        return bytes(out)

    padding = 0
    for _ in range(10):  # the /Length and startxref digits settle within a few rounds
        built = build(padding)
        if len(built) == size:
            return built
        padding += size - len(built)
    raise ValueError(f"no PDF of exactly {size} bytes")


def multipart(operations: str) -> tuple[bytes, bytes]:
    """The bytes around the file in a GraphQL multipart request: `operations` (the JSON body,
    the file variable null), `map`, then the file part `0`; (before the file, after it)."""
    files_map = json.dumps({"0": ["variables.file"]}, separators=(",", ":"))
    before = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{files_map}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="{UPLOAD_NAME}"'
        "\r\nContent-Type: application/pdf\r\n\r\n"
    )
    return before.encode(), f"\r\n--{BOUNDARY}--\r\n".encode()


# --- the database side ------------------------------------------------------------------------


def read_meta_sync(url: str) -> dict[str, Any]:
    rows = db_query(url, "SELECT key, value FROM bench_meta")
    return {key: json.loads(value) for key, value in rows}


def db_query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if dialect_of(url) == "sqlite":
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url))
        try:
            return list(conn.execute(sql.replace("$", "?"), args))
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn(url))
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return run_coroutine(fetch)


def run_coroutine(factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, also when an event loop is running here
    (the in-process runs reset the database from inside theirs)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def db_execute(url: str, statements: list[str]) -> None:
    if dialect_of(url) == "sqlite":
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn(url))
        try:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
        finally:
            await conn.close()

    run_coroutine(run)


def pg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@dataclass
class Dataset:
    url: str
    dialect: str
    meta: dict[str, Any]
    page_size: int = 1
    page500_after: str | None = None

    @property
    def workload(self) -> dict[str, Any]:
        return dict(self.meta["workload"])

    def reset(self) -> None:
        """Back to the generated state: remove what write runs added, restore enrollments,
        and remove the files uploads stored (no row refers to them any more)."""
        db_execute(self.url, restore_sql(self.meta["max_ids"]))
        for directory in DATA_DIRS.values():
            shutil.rmtree(directory / "blobs", ignore_errors=True)

    def settle(self, table: str, quiet: float = 0.3, limit: float = 30.0) -> None:
        """Wait until the requests a closed-loop run left in flight are done.

        wrk stops counting at the end of its run, but the server finishes the requests it has
        already received (up to one per connection; an upload takes a while): their rows,
        written after a reset, would take the next run's pool entries, whose requests would
        then be refused. Done when `table` has gained no row for `quiet` seconds.
        """
        deadline = time.monotonic() + limit
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.added_rows(table)
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)

    def added_rows(self, table: str) -> int:
        rows = db_query(
            self.url, f'SELECT COUNT(*) FROM "{table}" WHERE id > $1', self.meta["max_ids"][table]
        )
        return int(rows[0][0])


def load_dataset(url: str) -> Dataset:
    meta = read_meta_sync(url)
    data = Dataset(url, dialect_of(url), meta)
    courses = int(meta["counts"]["course"])
    data.page_size = max(1, courses // 500)
    offset = 499 * data.page_size - 1
    row = db_query(url, f"SELECT name, id FROM course ORDER BY name, id LIMIT 1 OFFSET {offset}")
    # a small dataset (under 500 courses) has no page 500: PAGE500 then reads page 1
    if row:
        data.page500_after = encode_cursor("courses:NAME_ASC", [row[0][0], row[0][1]])
    return data


# --- operations -------------------------------------------------------------------------------


@dataclass
class Operation:
    name: str
    requests: list[tuple[str, str]]  # (body, token); an upload's body is its `operations` part
    floor: bool
    writes: bool = False
    # write operations: each request's learner (for bench.verify), and the table whose new
    # rows per request a run reports (every request should add one: it did the whole write)
    learners: list[int] = field(default_factory=list)
    adds: str | None = None
    upload: bytes | None = None  # the file every request of an upload sends
    # PostgreSQL, Q0 and Q1: the peer's closest equivalent (bench/peer.py), no token
    peer_requests: list[tuple[str, str]] | None = None


def m2_pool(data: Dataset) -> list[dict[str, Any]]:
    """Learners' started EXTERNAL enrollments that take evidence now, one request each.

    Submitting makes the enrollment PENDING_APPROVAL, where no further proof is taken (domain.md
    "Evidence"), so every request needs an enrollment of its own. Taken from the generated
    rows: STARTED or REJECTED (no award, so no recertification cycle), already started (so
    certgraph writes no started event), in a PUBLISHED certification whose policy config takes
    a submission without completedOn and without courses done; not ended, of an active
    learner (a deactivated one's token is refused). Shuffled, so that consecutive
    requests are different learners, as the M1 pool is.
    """
    from bench.generate import plain_token

    rows = db_query(
        data.url,
        "SELECT e.learner_id, e.certification_id, e.id, c.policy_config FROM enrollment e"
        " JOIN certification c ON c.id = e.certification_id"
        ' JOIN "user" u ON u.id = e.learner_id'
        " WHERE c.kind = 'EXTERNAL' AND c.state = 'PUBLISHED' AND e.started_at IS NOT NULL"
        " AND e.last_awarded_at IS NULL AND e.verdict_status IN ('STARTED', 'REJECTED')"
        " AND e.ended_at IS NULL AND u.deactivated_at IS NULL"
        " AND e.id <= $1 ORDER BY e.id",
        data.meta["max_ids"]["enrollment"],
    )
    seed = int(data.meta["seed"])
    pool = []
    for learner_id, certification_id, enrollment_id, raw in rows:
        config = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        if config.get("completionDate") == "learner" or config.get("requireMandatoryCourses"):
            continue
        pool.append(
            {"learner_id": learner_id, "certification_id": certification_id,
             "enrollment_id": enrollment_id, "token": plain_token(seed, learner_id)}
        )  # fmt: skip
    random.Random(seed + 2).shuffle(pool)
    return pool


def q3_certifications(data: Dataset) -> list[int]:
    """The certifications with the most enrollments Q3 lists (COMPLETED or EXPIRED: an award,
    in force or not; not ended; an active learner's), most first."""
    rows = db_query(
        data.url,
        'SELECT e.certification_id, COUNT(*) FROM enrollment e JOIN "user" u'
        " ON u.id = e.learner_id WHERE e.last_awarded_at IS NOT NULL AND e.ended_at IS NULL"
        " AND u.deactivated_at IS NULL GROUP BY e.certification_id"
        f" ORDER BY COUNT(*) DESC, e.certification_id LIMIT {Q3_CERTIFICATIONS}",
    )
    return [int(row[0]) for row in rows]


def operations(data: Dataset, names: Iterable[str] = ALL_OPS) -> list[Operation]:
    wanted = set(names)
    w = data.workload
    learners = [p["token"] for p in w["learners"]]
    admin = w["admin"]["token"]
    ops = [
        Operation("Q0", [(body("Q0", Q0), t) for t in learners], True),
        Operation("Q1", [(body("Q1", Q1, {"first": 20}), t) for t in learners], True),
        Operation(
            "Q2",
            [
                (body("Q2", Q2, {"id": global_id("Certification", c)}), admin)
                for c in w["report_certifications"]
            ],
            True,
        ),
        Operation(
            "M1",
            [
                (body("M1", M1, {"course": global_id("Course", p["course_id"])}), p["token"])
                for p in w["m1_pool"]
            ],
            True,
            writes=True,
            learners=[int(p["learner_id"]) for p in w["m1_pool"]],
            adds="award",
        ),
        Operation(
            "PAGE1",
            [(body("PAGE", PAGE, {"first": data.page_size, "after": None}), t) for t in learners],
            False,
        ),
        Operation(
            "PAGE500",
            [
                (body("PAGE", PAGE, {"first": data.page_size, "after": data.page500_after}), t)
                for t in learners
            ],
            False,
        ),
    ]
    if "Q3" in wanted:  # its certifications are read from the database
        ops.insert(
            3,
            Operation(
                "Q3",
                [
                    (body("Q3", Q3, {"cert": global_id("Certification", c)}), admin)
                    for c in q3_certifications(data)
                ],
                True,
            ),
        )
    if "M2" in wanted:  # its pool is read from the database
        pool = m2_pool(data)
        ops.insert(
            [op.name for op in ops].index("M1") + 1,
            Operation(
                "M2",
                [
                    (
                        body("M2", M2, {"cert": global_id("Certification", p["certification_id"]),
                                        "file": None}),
                        p["token"],
                    )
                    for p in pool
                ],
                True,
                writes=True,
                learners=[int(p["learner_id"]) for p in pool],
                adds="evidence",
                upload=evidence_pdf(),
            ),
        )  # fmt: skip
    if data.dialect == "postgres":
        for op in ops:
            if op.name in peer_side.PEER_DOCUMENTS:
                op.peer_requests = [
                    (body(op.name, peer_side.PEER_DOCUMENTS[op.name],
                          {"id": int(p["id"]), **peer_side.PEER_VARIABLES[op.name]}), "")
                    for p in w["learners"]
                ]  # fmt: skip
    return [op for op in ops if op.name in wanted]


# --- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pin(cpus: str | None) -> list[str]:
    if cpus is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_server(name: str, command: list[str], env: dict[str, str], port: int) -> Server:
    # A server left running on the port (an earlier run cut short) would answer the health
    # check before the new one fails to bind, and be measured in its place.
    if not port_is_free(port):
        raise RuntimeError(f"port {port} is taken: another server is listening; stop it first")
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return Server(name, port, process, log)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{name} did not answer /healthz within 60 s; see {log}")


def start_pair(
    data: Dataset, workers: int, server_cpus: str | None, url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[Server, Server]:  # fmt: skip
    """certgraph and the floor on `data` (through `url`, the wire counter's, if given)."""
    env = dict(os.environ)
    env["CERTGRAPH_DATABASE_URL"] = url or data.url
    env["CERTGRAPH_DATA_DIR"] = str(DATA_DIRS["cg"])
    env["BENCH_FLOOR_DB"] = url or data.url
    env["BENCH_FLOOR_DATA_DIR"] = str(DATA_DIRS["floor"])
    # The per-token rate limit (gql/http/ratelimit.py) would turn a benchmark's load into 429s;
    # the floor has none. Off for the measurement, as a deployment behind its own limiter.
    env["CERTGRAPH_RATE_LIMIT_PER_MINUTE"] = "0"
    # The slow-webhook runs' receiver listens on 127.0.0.1 (SlowWebhook), a destination
    # certgraph refuses unless told otherwise; without a webhook row it changes nothing.
    env["CERTGRAPH_WEBHOOK_ALLOW_PRIVATE"] = "true"
    # The reminder sweep is periodic work (hourly by default, and once at start-up), not a
    # request's: left to `certgraph sweep`, so that it does not write reminders for the
    # whole dataset while a run is measured.
    env["CERTGRAPH_SWEEP_INTERVAL_SECONDS"] = "0"
    env.update(extra_env or {})
    certgraph = start_server(
        f"certgraph-{data.dialect}-{workers}w",
        [*pin(server_cpus), str(VENV_BIN / "certgraph"), "serve", "--port", str(CERTGRAPH_PORT),
         "--workers", str(workers)],
        env,
        CERTGRAPH_PORT,
    )  # fmt: skip
    floor = start_server(
        f"floor-{data.dialect}-{workers}w",
        [*pin(server_cpus), sys.executable, "-m", "uvicorn", "--factory",
         "bench.floor:create_app", "--port", str(FLOOR_PORT), "--workers", str(workers)],
        env,
        FLOOR_PORT,
    )  # fmt: skip
    return certgraph, floor


def start_peer(data: Dataset, server_cpus: str | None, url: str | None = None) -> Server:
    """PostGraphile (bench/peer/server.js) on `data`, one process, read-only."""
    env = dict(os.environ)
    env.setdefault("NODE_ENV", "production")
    return start_server(
        f"peer-{data.dialect}",
        [*pin(server_cpus), *peer_side.command(url or data.url, peer_side.PEER_PORT)],
        env,
        peer_side.PEER_PORT,
    )


def check_peer(op: Operation, peer: Server) -> dict[str, Any]:
    """The peer answers each of its requests without errors; its answer's size in fields."""

    def fields(value: Any) -> int:
        if isinstance(value, dict):
            return sum(1 + fields(v) for v in value.values())
        if isinstance(value, list):
            return sum(fields(v) for v in value)
        return 0

    sizes = []
    for payload, token in (op.peer_requests or [])[:5]:
        status, answer, _ = post(peer.port, payload, token)
        if status != 200 or "errors" in answer or not answer.get("data"):
            return {"ok": False, "difference": f"peer answered {status}: {answer}"}
        sizes.append(fields(answer["data"]))
    return {"ok": True, "fields": _median([float(n) for n in sizes])}


def count_statements(data: Dataset, ops: list[Operation], cfg: Settings) -> dict[str, Any]:
    """SQL sent per request on the wire (bench.peer.WireCounter), pool housekeeping included:
    certgraph (1 worker), the floor and the peer started again through the counter, each
    operation's requests sent one at a time (WIRE_WARMUP first, uncounted; then
    WIRE_REQUESTS). certgraph's event dispatcher polls once an hour here (its polls are not a
    request's); the work a write wakes it for is counted, as it is the write's."""
    counter = peer_side.WireCounter(data.url)
    url = peer_side.via(data.url, counter.port)
    found: dict[str, Any] = {}
    cg, floor = start_pair(data, 1, None, url, {"CERTGRAPH_EVENT_POLL_SECONDS": "3600"})
    peer = start_peer(data, None, url) if cfg.peer_skipped is None else None
    try:
        for op in ops:
            sides: list[tuple[str, Server, list[tuple[str, str]]]] = [("cg", cg, op.requests)]
            if op.floor:
                sides.append(("floor", floor, op.requests))
            if peer is not None and op.peer_requests:
                sides.append(("peer", peer, op.peer_requests))
            for side, server, requests in sides:
                if op.writes:
                    data.reset()
                wanted = WIRE_WARMUP + WIRE_REQUESTS
                # reads repeat their few requests if need be; every write needs its own
                sent = requests[:wanted] if op.writes else [
                    requests[i % len(requests)] for i in range(wanted)
                ]  # fmt: skip
                for payload, token in sent[:WIRE_WARMUP]:
                    post(server.port, payload, token, op.upload)
                time.sleep(0.2)
                before = counter.snapshot()
                for payload, token in sent[WIRE_WARMUP:]:
                    post(server.port, payload, token, op.upload)
                time.sleep(0.2)
                found.setdefault(op.name, {})[side] = peer_side.per_request(
                    before, counter.snapshot(), len(sent) - WIRE_WARMUP
                )
            if op.writes:
                data.reset()
    finally:
        cg.stop()
        floor.stop()
        if peer is not None:
            peer.stop()
        counter.stop()
    return found


def post(
    port: int, payload: str, token: str, upload: bytes | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST one request; with `upload`, as a multipart request with that file."""
    data, content_type = payload.encode(), "application/json"
    if upload is not None:
        before, after = multipart(payload)
        data, content_type = before + upload + after, MULTIPART_TYPE
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=data,
        headers={"Content-Type": content_type}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) so far of a process and its live descendants (a multi-worker
    server's workers), from /proc; None where there is no /proc."""
    try:
        entries = os.listdir("/proc")
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    children: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # after "(comm)": state, ppid, ..., utime and stime (fields 14 and 15 of proc(5))
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        used[int(entry)] = int(fields[11]) + int(fields[12])
    if pid not in used:
        return None
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += used.get(current, 0)
        stack += children.get(current, [])
    return total / ticks


# --- the slow webhook receiver ----------------------------------------------------------------


class SlowWebhook:
    """A webhook receiver in this process that answers each request after `delay` seconds
    (its signature checked with the `standardwebhooks` package first), and the endpoint row
    that points certgraph at it: `install` adds it after a reset (which removes it again).

    certgraph's dispatcher sends to it off the request path; the runs with it configured
    show whether a slow receiver reaches a write's latency or its server's CPU. `release`
    answers the requests it holds at once: called once a run's rows are gone, so that no
    send from one run is still open in the next (or holds a server's shutdown).
    """

    def __init__(self, delay: float) -> None:
        from standardwebhooks import Webhook, WebhookVerificationError

        self.delay = delay
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")
        self.received = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.released = threading.Condition(self.lock)
        self.generation = 0
        verifier = Webhook(self.secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    verifier.verify(payload, dict(self.headers.items()))
                    good = True
                except (WebhookVerificationError, ValueError):
                    good = False
                with receiver.lock:
                    receiver.received += 1
                    receiver.bad_signatures += 0 if good else 1
                    arrived = receiver.generation
                    receiver.released.wait_for(
                        lambda: receiver.generation != arrived, timeout=receiver.delay
                    )
                with contextlib.suppress(OSError):  # the sender may have given up by now
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # a dispatcher opens up to 16 connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def install(self, data: Dataset) -> None:
        """The endpoint, as createWebhook stores one: every event type, enabled."""
        at = str(datetime.now(UTC))
        description = f"bench.run: a receiver that answers after {self.delay:g} s"
        db_execute(
            data.url,
            [
                "INSERT INTO webhook (url, event_types, description, secret, enabled,"
                f" created_at, updated_at) VALUES ('{self.url}', '[]', '{description}',"
                f" '{self.secret}', TRUE, '{at}', '{at}')"
            ],
        )

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.received, self.bad_signatures

    def release(self) -> None:
        with self.lock:
            self.generation += 1
            self.released.notify_all()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def hook_outcome(data: Dataset, limit: float = 5.0) -> dict[str, Any]:
    """After a run with the slow webhook: the events the run wrote and the deliveries the
    dispatchers made of them for the endpoint, once every event is fanned out (or `limit`
    seconds have passed)."""
    unfanned = "SELECT COUNT(*) FROM outbox_event WHERE fanned_out_at IS NULL"
    deadline = time.monotonic() + limit
    while db_query(data.url, unfanned)[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    events = int(db_query(data.url, "SELECT COUNT(*) FROM outbox_event")[0][0])
    deliveries = db_query(
        data.url,
        "SELECT COUNT(*), COALESCE(SUM(attempts), 0) FROM event_delivery"
        " WHERE webhook_id IS NOT NULL",
    )[0]
    return {
        "events": events,
        "deliveries": int(deliveries[0]),
        "attempts": int(deliveries[1]),
        "not_fanned_out": int(db_query(data.url, unfanned)[0][0]),
    }


# --- load generators --------------------------------------------------------------------------


def lua_script(requests: list[tuple[str, str]], path: Path) -> Path:
    def long_string(text: str) -> str:
        level = "=" * 3
        while f"]{level}]" in text:
            level += "="
        return f"[{level}[{text}]{level}]"

    lines = ["local bodies = {"]
    lines += [f"  {long_string(b)}," for b, _ in requests]
    lines.append("}")
    lines.append("local tokens = {")
    lines += [f'  "{t}",' for _, t in requests]
    lines.append("}")
    lines.append(
        """
local reqs = {}
local i = 0
init = function(args)
  for k = 1, #bodies do
    local headers = {["Content-Type"] = "application/json"}
    if tokens[k] ~= "" then headers["Authorization"] = "Bearer " .. tokens[k] end
    reqs[k] = wrk.format("POST", "/graphql", headers, bodies[k])
  end
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""
        + _LUA_DONE
    )
    path.write_text("\n".join(lines))
    return path


_LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_quote(data: bytes) -> str:
    """A Lua string literal of exactly these bytes (a long bracket would turn CRLF into LF)."""
    return '"' + "".join(f"\\{b:03d}" if b < 32 or b > 126 or b in b'"\\' else chr(b)
                         for b in data) + '"'  # fmt: skip


def upload_lua_script(op: Operation, path: Path) -> Path:
    """wrk script for an upload: each request is its multipart head, the file, the closing
    boundary. The file is read once (init); the bodies are assembled per request, since a
    body per request held in memory would be a megabyte each. Every request writes, and a
    second pass over the pool would only be refused, so the thread stops when the pool is
    used up; wrk still reports the whole --duration, so measure() flags such a run."""
    assert op.upload is not None
    file_path = path.with_suffix(".upload")
    file_path.write_bytes(op.upload)
    after = multipart("")[1]
    lines = [f"local file_path = {lua_quote(str(file_path).encode())}"]
    lines.append(f"local tail = {lua_quote(after)}")
    lines.append("local heads = {")
    lines += [f"  {lua_quote(multipart(b)[0])}," for b, _ in op.requests]
    lines.append("}")
    lines.append("local tokens = {")
    lines += [f'  "{t}",' for _, t in op.requests]
    lines.append("}")
    lines.append(
        f"""
local file = nil
local i = 0
init = function(args)
  local f = assert(io.open(file_path, "rb"))
  file = f:read("*a")
  f:close()
end
request = function()
  i = i + 1
  if i > #heads then
    wrk.thread:stop()
    i = 1
  end
  return wrk.format("POST", "/graphql", {{
    ["Content-Type"] = "{MULTIPART_TYPE}",
    ["Authorization"] = "Bearer " .. tokens[i],
  }}, heads[i] .. file .. tail)
end
"""
        + _LUA_DONE
    )
    path.write_text("\n".join(lines))
    return path


def wrk(
    port: int, script: Path, seconds: float, connections: int, cpus: str | None
) -> dict[str, Any]:
    command = [
        *pin(cpus), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}/graphql",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"WRKJSON (\{.*\})", output)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    raw = json.loads(match.group(1))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "errors": errors,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def open_loop(
    port: int,
    op: Operation,
    rate: float,
    seconds: float,
    cpus: str | None,
    requests: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"openloop-{port}.json"
    path.write_text(json.dumps([[b, t] for b, t in (requests or op.requests)]))
    module = "bench.openloop"
    if op.upload is not None:
        # bench.openloop's schedule, fed multipart requests built as they are sent (see
        # UploadRequests); no more than the pool, as every request writes.
        module = "bench.run"
        path.with_suffix(".upload").write_bytes(op.upload)
        seconds = min(seconds, len(op.requests) / rate)
    command = [
        *pin(cpus), sys.executable, "-m", module, "--port", str(port),
        "--rate", f"{rate:.3f}", "--duration", str(seconds), "--requests", str(path),
    ]  # fmt: skip
    if op.upload is not None:
        command.append("--open-loop-upload")
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


class UploadRequests:
    """M2's requests for bench.openloop, each built when it is sent: the HTTP head and the
    multipart head are kept per request, the file once (held whole, a pool of them would take
    a megabyte a request)."""

    def __init__(self, host: str, port: int, pairs: list[list[str]], upload: bytes) -> None:
        self.upload = upload
        self.heads: list[bytes] = []
        for payload, token in pairs:
            before, self.tail = multipart(payload)
            length = len(before) + len(upload) + len(self.tail)
            self.heads.append(
                (
                    f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: {MULTIPART_TYPE}\r\n"
                    f"Authorization: Bearer {token}\r\n"
                    f"Content-Length: {length}\r\n\r\n"
                ).encode()
                + before
            )

    def __len__(self) -> int:
        return len(self.heads)

    def __getitem__(self, index: int) -> bytes:
        return self.heads[index] + self.upload + self.tail


def open_loop_upload(argv: list[str]) -> int:
    """`python -m bench.run --open-loop-upload ...`: bench.openloop's run with UploadRequests."""
    from bench import openloop

    parser = argparse.ArgumentParser(prog="python -m bench.run --open-loop-upload")
    parser.add_argument("--open-loop-upload", action="store_true", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    pairs = json.loads(args.requests.read_text())
    upload = args.requests.with_suffix(".upload").read_bytes()
    requests = cast(list[bytes], UploadRequests(args.host, args.port, pairs, upload))
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        summary = runner.run(
            openloop.run(args.host, args.port, args.rate, args.duration, requests,
                         args.connections)
        )  # fmt: skip
    print(json.dumps(summary))
    return 0


# --- checks: same answers, same rows ----------------------------------------------------------


_NEAR_NOW = timedelta(minutes=10)


def normalise(value: Any, now: datetime) -> Any:
    """Timestamps written by the request itself ("now") differ between two runs: mask them."""
    if isinstance(value, dict):
        return {k: normalise(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, now) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
        if at.tzinfo is None:
            return value
        # "now", or an expiry computed from it (now + validity months)
        for months in (0, 12, 24, 36):
            if abs(at - add_months(now, months)) < _NEAR_NOW:
                return f"<now+{months}m>"
    return value


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: present on one side only"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, float):
        return None if abs(a - b) < 1e-9 else f"{path}: {a!r} != {b!r}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


@dataclass
class Check:
    same_json: bool
    compared: int
    difference: str | None
    floor_sql: int | None
    rows_match_domain: bool | None = None
    # writes: the rows certgraph wrote (audit, outbox events; uploads: evidence, enrollment,
    # blob), the floor's
    same_rows: bool | None = None


def check_operation(op: Operation, data: Dataset, cg: Server, floor: Server) -> Check:
    now = datetime.now(UTC)
    sample = op.requests[:3] if op.writes else op.requests
    compared = 0
    floor_sql = None
    for index, (payload, token) in enumerate(sample):
        learner = op.learners[index] if op.writes else 0
        if op.writes:
            data.reset()
        status_a, answer_a, _ = post(cg.port, payload, token, op.upload)
        rows_a = written_rows(data, "cg", op, learner) if op.writes else None
        if op.writes:
            data.reset()
        status_b, answer_b, headers = post(floor.port, payload, token, op.upload)
        if status_b != 200:
            return Check(False, compared + 1, f"floor answered {status_b}: {answer_b}", floor_sql)
        floor_sql = int(headers.get("x-floor-sql", "0")) or floor_sql
        compared += 1
        if status_a != 200 or "errors" in answer_a:
            return Check(False, compared, f"certgraph answered {status_a}: {answer_a}", floor_sql)
        if op.upload is not None:
            # The evidence id comes from the database's sequence, which a reset does not
            # rewind on PostgreSQL; upload_rows checks that each side answered its own row.
            for answer in (answer_a, answer_b):
                evidence = answer["data"]["submitEvidence"]["evidence"]
                if evidence is not None:
                    evidence["id"] = "<id>"
        difference = first_difference(normalise(answer_a, now), normalise(answer_b, now))
        if difference:
            return Check(False, compared, difference, floor_sql)
        if op.writes:
            rows_b = written_rows(data, "floor", op, learner)
            difference = first_difference(normalise(rows_a, now), normalise(rows_b, now))
            if difference:
                return Check(False, compared, f"rows: {difference}", floor_sql, same_rows=False)
    check = Check(True, compared, None, floor_sql)
    if op.writes:
        check.same_rows = True
    if op.writes:
        # The rows the floor wrote (still in place): what certgraph answers from them.
        learners = sorted(set(op.learners[: len(sample)]))
        check.rows_match_domain = domain_agrees(data.url, learners)
        data.reset()
    return check


def plain_time(value: Any) -> Any:
    """A stored instant as ISO 8601 in UTC, whichever driver read it; anything else as is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        return datetime.fromisoformat(value).astimezone(UTC).isoformat()  # SQLite's text
    return value


def stored_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def written_rows(data: Dataset, side: str, op: Operation, learner: int) -> dict[str, Any]:
    """What one write by `learner` wrote beyond the answer, with new rows' ids replaced by
    references (a reset does not rewind PostgreSQL's sequences): the audit rows, the outbox
    events, the awards (with their calendar days), the learner's enrollments (their stored
    columns, startedAt included) and course progress; for an upload also the evidence row and
    the blob (its size and digest)."""
    max_ids = data.meta["max_ids"]
    evidence = []
    if op.upload is not None:
        evidence = db_query(
            data.url,
            "SELECT id, enrollment_id, sha256, filename, content_type, size_bytes, status,"
            " submitted_at, completed_on, note, reviewed_by_id, reviewed_at, review_comment"
            " FROM evidence WHERE id > $1 ORDER BY id",
            max_ids["evidence"],
        )
    audit = db_query(
        data.url,
        "SELECT at, actor_id, action, object_type, object_id, before, after, detail"
        " FROM audit_event WHERE id > $1 ORDER BY id",
        max_ids["audit_event"],
    )
    ids = {str(row[0]): f"<evidence {i}>" for i, row in enumerate(evidence)}
    global_ids = {global_id("Evidence", int(pk)): ref for pk, ref in ids.items()}
    awards = db_query(
        data.url,
        "SELECT enrollment_id, cycle, awarded_at, expires_at, earned_on, expires_on, created_at,"
        " expiry_noted_at FROM award WHERE id > $1 ORDER BY id",
        max_ids["award"],
    )
    enrollments = db_query(
        data.url,
        "SELECT id, started_at, verdict_status, verdict_progress, verdict_explanation,"
        " evaluated_cycle, last_awarded_at, last_expires_at, last_award_cycle, window_opens_at,"
        " updated_at FROM enrollment WHERE learner_id = $1 ORDER BY id",
        learner,
    )
    progress = db_query(
        data.url,
        "SELECT course_id, percent, status, started_at, completed_at, attempt_started_at,"
        " updated_at FROM course_progress WHERE learner_id = $1 ORDER BY course_id",
        learner,
    )
    written: dict[str, Any] = {
        "audit": [
            [plain_time(r[0]), *r[1:4], ids.get(str(r[4]), r[4]), r[5], stored_json(r[6]), r[7]]
            for r in audit
        ],
        "events": event_rows(data, global_ids),
        "awards": [[plain_time(v) for v in r] for r in awards],
        # window_opens_at as its distance before last_expires_at: both follow "now"
        "enrollments": [
            [*map(plain_time, r[:9]), window_before(r[7], r[9]), plain_time(r[10])]
            for r in enrollments
        ],
        "progress": [[plain_time(v) for v in r] for r in progress],
    }
    if op.upload is None:
        return written
    blobs = []
    for row in evidence:
        path = DATA_DIRS[side] / "blobs" / row[2][:2] / row[2]
        content = path.read_bytes() if path.is_file() else None
        blobs.append(
            None if content is None else [len(content), hashlib.sha256(content).hexdigest()]
        )
    written["evidence"] = [[ids[str(r[0])], *[plain_time(v) for v in r[1:]]] for r in evidence]
    written["blobs"] = blobs
    return written


def window_before(expires_at: Any, opens_at: Any) -> Any:
    """When a recertification window opens, as the time before the expiry it is counted from."""
    if expires_at is None or opens_at is None:
        return plain_time(opens_at)
    gap = datetime.fromisoformat(plain_time(expires_at)) - datetime.fromisoformat(
        plain_time(opens_at)
    )
    return f"<expiry - {gap}>"


def event_rows(data: Dataset, evidence_refs: dict[str, str]) -> list[list[Any]]:
    """The outbox's events (the generated dataset has none), in the order written: each id
    masked by its UUID version (each side makes its own; uuid4), an evidence's global ID
    replaced by its reference. fanned_out_at is left out: certgraph's dispatcher sets it
    moments after the commit; the floor has no dispatcher."""
    rows = db_query(
        data.url,
        "SELECT event_id, type, occurred_at, actor_id, ordering_key, data FROM outbox_event"
        " ORDER BY seq",
    )
    events = []
    for event_id, kind, occurred_at, actor_id, key, body in rows:
        try:
            masked = f"<uuid {uuid.UUID(str(event_id)).version}>"
        except ValueError:
            masked = f"<not a UUID: {event_id!r}>"
        payload = stored_json(body)
        if "evidenceId" in payload:
            payload["evidenceId"] = evidence_refs.get(payload["evidenceId"], "<other evidence>")
        events.append([masked, kind, plain_time(occurred_at), actor_id, key, payload])
    return events


def domain_agrees(url: str, learner_ids: list[int]) -> bool:
    """bench.verify on these learners (a process of its own): certgraph's answers agree with
    their stored rows."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.verify", "--db", url,
         "--learner-ids", ",".join(str(i) for i in learner_ids)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    # the differences it lists come first; a traceback's error comes last
    for line in lines if len(lines) <= 12 else [*lines[:6], "...", *lines[-6:]]:
        print("   floor rows:", line, file=sys.stderr)
    return done.returncode == 0


# --- one database, one worker count ----------------------------------------------------------


@dataclass
class Settings:
    duration: float
    open_duration: float
    repeats: int
    connections: int
    iterations: int
    ops: list[str]
    workers: list[int]
    upload_workers: list[int]
    profile: bool
    pin: bool
    # of `workers`, the worker counts Q3 (the admin list) runs with
    q3_workers: list[int] = field(default_factory=lambda: [1])
    # write operations also measured with a slow webhook receiver configured (cg+hook runs)
    hook_ops: list[str] = field(default_factory=list)
    hook_delay: float = 10.0
    # why PostGraphile (the peer, PostgreSQL only) does not run; None: it does
    peer_skipped: str | None = None


@dataclass
class Measured:
    closed: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"cg": [], "floor": [], "peer": []}
    )
    opened: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"cg": [], "floor": [], "peer": []}
    )


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


HOOKED = "cg+hook"  # certgraph with the slow webhook configured: the same server, another run


def measure(
    op: Operation,
    data: Dataset,
    servers: dict[str, Server],
    cfg: Settings,
    server_cpus: str | None,
    load_cpus: str | None,
    hook: SlowWebhook | None = None,
) -> Measured:
    """Warm-up, closed-loop and open-loop runs of each target, alternated (a, b, c, then c,
    b, a). With `hook`, certgraph runs a third time with the slow webhook configured
    (HOOKED), open-loop at the plain runs' rate, so that the two p50s compare one load."""
    script = (
        upload_lua_script(op, WORK / f"{op.name}.lua")
        if op.upload is not None
        else lua_script(op.requests, WORK / f"{op.name}.lua")
    )
    targets = ["cg", "floor"] if op.floor else ["cg"]
    scripts = {"cg": script, "floor": script, HOOKED: script}
    requests: dict[str, list[tuple[str, str]] | None] = {}
    if op.peer_requests and "peer" in servers:
        targets.append("peer")  # PostGraphile, with its own documents (bench/peer.py)
        scripts["peer"] = lua_script(op.peer_requests, WORK / f"{op.name}-peer.lua")
        requests["peer"] = op.peer_requests
    if hook is not None:
        targets.append(HOOKED)
    server_of = {"cg": servers["cg"], "floor": servers.get("floor"), HOOKED: servers["cg"],
                 "peer": servers.get("peer")}  # fmt: skip
    out = Measured()
    for target in targets:  # warm-up: JIT-free Python still fills caches, pools and pages
        if target == HOOKED:
            continue  # the server is certgraph's, warm already
        if op.writes:
            data.reset()
        wrk(servers[target].port, scripts[target], 1, cfg.connections, load_cpus)
        if op.adds is not None:
            data.settle(op.adds)

    def prepare(target: str) -> tuple[float | None, tuple[int, int] | None]:
        if op.writes:
            data.reset()
        if target == HOOKED and hook is not None:
            hook.install(data)
            return cpu_seconds(servers["cg"].process.pid), hook.counts()
        server = server_of[target]
        return (cpu_seconds(server.process.pid) if server else None), None

    def account(
        target: str, result: dict[str, Any], cpu_before: float | None,
        received_before: tuple[int, int] | None, count: int,
    ) -> None:  # fmt: skip
        server = server_of[target]
        cpu_after = cpu_seconds(server.process.pid) if server else None
        if cpu_before is not None and cpu_after is not None:
            result["server_cpu_ms_per_request"] = round(
                (cpu_after - cpu_before) * 1000 / max(1, count), 3
            )
        if op.adds is not None:
            # rows of requests still in flight at the end count too: up to a connection's
            # worth above 1.00
            data.settle(op.adds)
            result[f"{op.adds}_per_request"] = round(data.added_rows(op.adds) / max(1, count), 3)
        if target == HOOKED and hook is not None and received_before is not None:
            received, bad = hook.counts()
            outcome = hook_outcome(data)
            result["hook"] = {
                **outcome,
                "events_per_request": round(outcome["events"] / max(1, count), 3),
                "received": received - received_before[0],
                "bad_signatures": bad - received_before[1],
            }
            # the run's rows gone, the sends it left open are answered, and the dispatchers
            # settle them (on rows no longer there) now, between runs, not in the next one
            data.reset()
            hook.release()
            time.sleep(0.3)

    for rep in range(cfg.repeats):
        order = targets if rep % 2 == 0 else list(reversed(targets))
        for target in order:
            cpu_before, received_before = prepare(target)
            port = server_of[target].port  # type: ignore[union-attr]
            result = wrk(port, scripts[target], cfg.duration, cfg.connections, load_cpus)
            if op.upload is not None and result["requests"] + cfg.connections >= len(op.requests):
                result["pool_exhausted"] = True
                print(
                    f"   {op.name}: the pool of {len(op.requests)} requests ran out before"
                    f" {cfg.duration} s; its rps is too low (shorten --duration)",
                    file=sys.stderr,
                    flush=True,
                )
            account(target, result, cpu_before, received_before, result["requests"])
            out.closed.setdefault(target, []).append(result)
    peaks = {t: statistics.median(r["rps"] for r in out.closed[t]) for t in targets}
    # the slow-webhook runs at the plain runs' rate: the same load, with and without it
    rates = {t: max(1.0, peaks["cg" if t == HOOKED else t] / 2) for t in targets}
    for rep in range(cfg.repeats):
        order = targets if rep % 2 == 0 else list(reversed(targets))
        for target in order:
            cpu_before, received_before = prepare(target)
            port = server_of[target].port  # type: ignore[union-attr]
            result = open_loop(
                port, op, rates[target], cfg.open_duration, load_cpus, requests.get(target)
            )
            account(target, result, cpu_before, received_before, result["sent"])
            out.opened.setdefault(target, []).append(result)
    if op.writes:
        data.reset()
    return out


def measure_pages(
    pages: list[Operation], server: Server, cfg: Settings, load_cpus: str | None
) -> dict[str, Measured]:
    """PAGE1 and PAGE500 against the same server, alternated as certgraph and its floor are
    (first, second, then second, first), so drift of the machine falls on both sides of the
    ratio the page target compares; run one after the other, the later op took what the
    previous operations' writes left behind (checkpoints, autovacuum) alone."""
    scripts = {op.name: lua_script(op.requests, WORK / f"{op.name}.lua") for op in pages}
    out = {op.name: Measured() for op in pages}
    for op in pages:
        wrk(server.port, scripts[op.name], 1, cfg.connections, load_cpus)
    for rep in range(cfg.repeats):
        for op in pages if rep % 2 == 0 else list(reversed(pages)):
            result = wrk(server.port, scripts[op.name], cfg.duration, cfg.connections, load_cpus)
            out[op.name].closed["cg"].append(result)
    for rep in range(cfg.repeats):
        for op in pages if rep % 2 == 0 else list(reversed(pages)):
            peak = statistics.median(r["rps"] for r in out[op.name].closed["cg"])
            result = open_loop(server.port, op, peak / 2, cfg.open_duration, load_cpus)
            out[op.name].opened["cg"].append(result)
    return out


def summarise(op: Operation, data: Dataset, workers: int, m: Measured, check: Check | None,
              inproc: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    def stat(target: str, source: str, key: str) -> float | None:
        rows = (m.closed if source == "closed" else m.opened)[target]
        values = [r[key] for r in rows if r.get(key) is not None]
        return _median(values)

    row: dict[str, Any] = {
        "op": op.name,
        "db": data.dialect,
        "workers": workers,
        "rps": stat("cg", "closed", "rps"),
        "p50_ms": stat("cg", "open", "p50_ms"),
        "p99_ms": stat("cg", "open", "p99_ms"),
        "floor_rps": stat("floor", "closed", "rps"),
        "floor_p50_ms": stat("floor", "open", "p50_ms"),
        "floor_p99_ms": stat("floor", "open", "p99_ms"),
        "peer_rps": stat("peer", "closed", "rps"),
        "peer_p50_ms": stat("peer", "open", "p50_ms"),
        "peer_p99_ms": stat("peer", "open", "p99_ms"),
        "peer_cpu_ms": stat("peer", "open", "server_cpu_ms_per_request"),
        "ratio_p50_peer": None,
        "ratio_p50": None,
        "ratio_rps": None,
        "sql_queries": inproc["sql_queries"] if inproc else None,
        "floor_sql_queries": check.floor_sql if check else None,
        "in_process_p50_ms": inproc["p50_ms"] if inproc else None,
        # the server processes' CPU time per request in the open-loop runs (/proc)
        "cpu_ms": stat("cg", "open", "server_cpu_ms_per_request"),
        "floor_cpu_ms": stat("floor", "open", "server_cpu_ms_per_request"),
        "open_loop_rate": {t: round(m.opened[t][0]["rate"], 1) for t in m.opened if m.opened[t]},
        "errors": sum(r["errors"] for t in m.closed for r in m.closed[t])
        + sum(r["errors"] for t in m.opened for r in m.opened[t]),
        "same_json": check.same_json if check else None,
        # every run behind the medians above: wrk (closed) and openloop (open) summaries
        "closed_runs": m.closed,
        "open_runs": m.opened,
    }
    if row["p50_ms"] and row["floor_p50_ms"]:
        row["ratio_p50"] = round(row["p50_ms"] / row["floor_p50_ms"], 2)
    if row["rps"] and row["floor_rps"]:
        row["ratio_rps"] = round(row["floor_rps"] / row["rps"], 2)
    if row["p50_ms"] and row["peer_p50_ms"]:
        row["ratio_p50_peer"] = round(row["p50_ms"] / row["peer_p50_ms"], 2)
    if op.adds is not None:
        key = f"{op.adds}_per_request"
        row[key] = {
            t: _median([r[key] for r in m.closed[t] + m.opened[t]]) for t in m.closed if m.closed[t]
        }
    if op.upload is not None:
        row["pool"] = len(op.requests)
        row["pool_exhausted"] = any(r.get("pool_exhausted") for t in m.closed for r in m.closed[t])
    if op.writes and check is not None:
        row["floor_rows_match_domain"] = check.rows_match_domain
        if check.same_rows is not None:
            row["floor_same_rows"] = check.same_rows
    if check is not None and not check.same_json:
        row["difference"] = check.difference
    if m.closed.get(HOOKED):
        row["slow_webhook"] = slow_webhook_summary(row, m, stat)
    return row


def slow_webhook_summary(
    row: dict[str, Any], m: Measured, stat: Callable[[str, str, str], float | None]
) -> dict[str, Any]:
    """certgraph with the slow webhook configured against certgraph without (same server,
    alternated runs; open loop at the same rate): ratios above 1 are what the webhook cost."""
    runs = m.closed[HOOKED] + m.opened[HOOKED]
    outcomes = [r["hook"] for r in runs]
    found: dict[str, Any] = {
        "rps": stat(HOOKED, "closed", "rps"),
        "p50_ms": stat(HOOKED, "open", "p50_ms"),
        "p99_ms": stat(HOOKED, "open", "p99_ms"),
        "cpu_ms": stat(HOOKED, "open", "server_cpu_ms_per_request"),
        "ratio_p50": None,
        "ratio_rps": None,
        "ratio_cpu": None,
        "events_per_request": _median([o["events_per_request"] for o in outcomes]),
        "events": sum(o["events"] for o in outcomes),
        "deliveries": sum(o["deliveries"] for o in outcomes),
        "not_fanned_out": sum(o["not_fanned_out"] for o in outcomes),
        "received": sum(o["received"] for o in outcomes),
        "bad_signatures": sum(o["bad_signatures"] for o in outcomes),
        "errors": sum(r["errors"] for r in runs),
    }
    for key, plain in (("p50", row["p50_ms"]), ("rps", row["rps"]), ("cpu", row["cpu_ms"])):
        hooked = found["rps" if key == "rps" else f"{key}_ms"]
        if plain and hooked:
            found[f"ratio_{key}"] = round(hooked / plain, 2)
    problems = []
    if found["deliveries"] != found["events"]:
        problems.append(f"{found['events']} events, {found['deliveries']} webhook deliveries")
    if not found["received"]:
        problems.append("the receiver got no request")
    if found["bad_signatures"]:
        problems.append(f"{found['bad_signatures']} requests failed signature verification")
    found["problems"] = problems
    return found


def profile_server(server: Server, script: Path, seconds: float, connections: int, out: Path,
                   load_cpus: str | None) -> Path | None:  # fmt: skip
    """py-spy samples the (single) certgraph worker while wrk drives it; raw collapsed stacks."""
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(spy).exists():
        return None
    children = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    pid = children[-1] if children else str(server.process.pid)
    recorder = subprocess.Popen(
        [spy, "record", "--pid", pid, "--format", "raw", "--rate", "200", "--output", str(out),
         "--duration", str(int(seconds) + 1), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    wrk(server.port, script, seconds, connections, load_cpus)
    recorder.wait(timeout=60)
    return out if out.exists() else None


def run_database(
    url: str, cfg: Settings, hook: SlowWebhook | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    data = load_dataset(url)
    data.reset()
    ops = operations(data, cfg.ops)
    print(f"== {data.dialect}: scale {data.meta['scale']}, in-process runs", flush=True)
    inproc = inprocess.measure(url, cfg.ops, cfg.iterations)
    wire: dict[str, Any] = {}
    if data.dialect == "postgres":
        print(f"== {data.dialect}: SQL per request on the wire", flush=True)
        wire = count_statements(data, ops, cfg)
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"in_process": inproc, "profiles": {}, "wire": wire}
    for workers in cfg.workers:
        server_cpus = "0" if cfg.pin and workers == 1 else None
        load_cpus = "1" if cfg.pin and workers == 1 else None
        cg, floor = start_pair(data, workers, server_cpus)
        servers = {"cg": cg, "floor": floor}
        # the peer is one process: beside the 1-worker servers, on PostgreSQL
        peer = None
        if data.dialect == "postgres" and workers == 1 and cfg.peer_skipped is None:
            peer = start_peer(data, server_cpus)
            servers["peer"] = peer
        pages = [op for op in ops if op.name in ("PAGE1", "PAGE500")]
        paged: dict[str, Measured] = {}
        try:
            for op in ops:
                if not op.floor and workers > 1:
                    continue  # keyset cost is a property of one process: measured with 1 worker
                if op.upload is not None and workers not in cfg.upload_workers:
                    continue  # an upload row takes ~25 s at make bench's 2 s runs
                if op.name == "Q3" and workers not in cfg.q3_workers:
                    continue  # a row takes ~20 s at make bench's 2 s runs
                check = check_operation(op, data, cg, floor) if op.floor else None
                if check is not None:
                    checks.append(
                        {"op": op.name, "db": data.dialect, "workers": workers, **check.__dict__}
                    )
                    if not check.same_json:
                        print(
                            f"   {op.name}: floor and certgraph differ: {check.difference}",
                            flush=True,
                        )
                peer_check = None
                if peer is not None and op.peer_requests:
                    peer_check = check_peer(op, peer)
                    if not peer_check["ok"]:
                        print(f"   {op.name}: {peer_check['difference']}", flush=True)
                        servers.pop("peer", None)
                    else:
                        servers["peer"] = peer
                started = time.perf_counter()
                if op in pages and len(pages) == 2:
                    if not paged:
                        paged = measure_pages(pages, cg, cfg, load_cpus)
                    measured = paged[op.name]
                else:
                    hooked = hook if op.writes and op.name in cfg.hook_ops else None
                    measured = measure(op, data, servers, cfg, server_cpus, load_cpus, hooked)
                row = summarise(op, data, workers, measured, check, inproc.get(op.name))
                if peer_check is not None:
                    row["peer_check"] = peer_check
                if wire.get(op.name):
                    row["wire_sql"] = wire[op.name]
                rows.append(row)
                print(
                    f"   {workers}w {op.name:8s} rps {row['rps']} / floor {row['floor_rps']};"
                    f" p50 {row['p50_ms']} / {row['floor_p50_ms']} ms (x{row['ratio_p50']});"
                    + (
                        f" PostGraphile p50 {row['peer_p50_ms']} ms (x{row['ratio_p50_peer']});"
                        if row.get("peer_p50_ms") is not None
                        else ""
                    )
                    + f" {time.perf_counter() - started:.0f}s",
                    flush=True,
                )
                if "slow_webhook" in row:
                    slow = row["slow_webhook"]
                    print(
                        f"   {workers}w {op.name:8s} with a slow webhook: p50 {slow['p50_ms']} ms"
                        f" (x{slow['ratio_p50']} of {row['p50_ms']}), CPU/request"
                        f" x{slow['ratio_cpu']}; {slow['events']} events, {slow['received']}"
                        " sent to the receiver" + "".join(f"; {p}" for p in slow["problems"]),
                        flush=True,
                    )
                if cfg.profile and workers == 1 and op.name in ("Q1", "M1", "PAGE500"):
                    if op.writes:
                        data.reset()
                    out = WORK / f"profile-{op.name}-{data.dialect}.txt"
                    raw = profile_server(
                        cg,
                        WORK / f"{op.name}.lua",
                        max(cfg.duration, 5),
                        cfg.connections,
                        out,
                        load_cpus,
                    )
                    if op.adds is not None:
                        data.settle(op.adds)
                    if op.writes:
                        data.reset()
                    if raw is not None:
                        extra["profiles"][op.name] = str(raw.relative_to(ROOT))
        finally:
            cg.stop()
            floor.stop()
            if peer is not None:
                peer.stop()
    return rows, checks, extra


def pages_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        if row["op"] != "PAGE500":
            continue
        first = next(
            (
                r
                for r in rows
                if r["op"] == "PAGE1" and r["db"] == row["db"] and r["workers"] == row["workers"]
            ),
            None,
        )
        if first and first["p50_ms"] and row["p50_ms"]:
            found.append(
                {
                    "db": row["db"],
                    "workers": row["workers"],
                    "page1_p50_ms": first["p50_ms"],
                    "page500_p50_ms": row["p50_ms"],
                    "page1_rps": first["rps"],
                    "page500_rps": row["rps"],
                    "ratio_p50": round(row["p50_ms"] / first["p50_ms"], 2),
                    "target": PAGE_TARGET,
                }
            )
    return found


def verdicts(rows: list[dict[str, Any]], pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        target = TARGETS.get(row["op"])
        if target is not None and row["ratio_p50"] is not None:
            found.append(
                {"op": row["op"], "name": f"{row['op']} p50 vs floor", "db": row["db"],
                 "workers": row["workers"], "ratio_p50": row["ratio_p50"], "target": target,
                 "met": row["ratio_p50"] <= target}
            )  # fmt: skip
        target = PEER_TARGET.get(row["op"])
        if target is not None and row.get("ratio_p50_peer") is not None:
            found.append(
                {"op": row["op"], "name": f"{row['op']} p50 vs PostGraphile", "db": row["db"],
                 "workers": row["workers"], "ratio_p50": row["ratio_p50_peer"],
                 "target": target, "met": row["ratio_p50_peer"] <= target}
            )  # fmt: skip
        target = TAIL_TARGET.get(row["op"])
        if target is not None and row["p50_ms"] and row["p99_ms"] is not None:
            tail = round(row["p99_ms"] / row["p50_ms"], 2)
            found.append(
                {"op": row["op"], "name": f"{row['op']} p99/p50", "db": row["db"],
                 "workers": row["workers"], "ratio_p50": tail, "target": target,
                 "met": tail <= target}
            )  # fmt: skip
    for page in pages:
        found.append(
            {"op": "PAGE500/PAGE1", "name": "PAGE500/PAGE1 p50", "db": page["db"],
             "workers": page["workers"], "ratio_p50": page["ratio_p50"], "target": PAGE_TARGET,
             "met": page["ratio_p50"] <= PAGE_TARGET}
        )  # fmt: skip
    return found


def markdown(result: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}" if value < 100 else f"{value:.0f}"
        return str(value)

    def wire(counts: dict[str, Any] | None) -> str:
        if not counts:
            return "-"
        text = f"{counts['statements']:g}"
        return text + (f" +{counts['reset']:g} reset" if counts["reset"] else "")

    def sql(row: dict[str, Any]) -> str:
        counted = row.get("wire_sql")
        if counted:  # PostgreSQL: on the wire, pool housekeeping included
            sides = [wire(counted.get("cg")), wire(counted.get("floor"))]
            if counted.get("peer"):
                sides.append(wire(counted["peer"]))
            return " / ".join(sides)
        return f"{cell(row['sql_queries'])} / {cell(row['floor_sql_queries'])}"

    lines = [
        f"Scale {result['scale']}; {result['machine']['cpus']} CPUs; load average at start"
        f" {result['machine']['loadavg_start']}, at end {result['machine']['loadavg_end']}.",
        "",
        "| op | db | workers | rps | p50 ms | p99 ms | floor rps | floor p50 ms | floor p99 ms"
        " | p50 ratio | PostGraphile rps / p50 / p99 | p50 vs PostGraphile"
        " | SQL per request (certgraph / floor / PostGraphile)"
        " | server CPU ms/request (certgraph / floor / PostGraphile)"
        " | in-process p50 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["runs"]:
        cpu = f"{cell(row.get('cpu_ms'))} / {cell(row.get('floor_cpu_ms'))}"
        peer = "-"
        if row.get("peer_p50_ms") is not None:
            cpu += f" / {cell(row.get('peer_cpu_ms'))}"
            peer = (
                f"{cell(row['peer_rps'])} / {cell(row['peer_p50_ms'])} / {cell(row['peer_p99_ms'])}"
            )
        lines.append(
            f"| {row['op']} | {row['db']} | {row['workers']} | {cell(row['rps'])}"
            f" | {cell(row['p50_ms'])}"
            f" | {cell(row['p99_ms'])} | {cell(row['floor_rps'])} | {cell(row['floor_p50_ms'])}"
            f" | {cell(row['floor_p99_ms'])} | {cell(row['ratio_p50'])} | {peer}"
            f" | {cell(row.get('ratio_p50_peer'))} | {sql(row)} | {cpu}"
            f" | {cell(row['in_process_p50_ms'])} | {cell(row['errors'])} |"
        )
    lines += [
        "",
        "SQL per request: on PostgreSQL the statements each server sends on the wire (Execute"
        " and simple Query messages; `+n reset`: asyncpg's pool-reset round trips), on SQLite"
        " certgraph's in-process count and the floor's own (docs/performance.md).",
    ]
    if result.get("peer_skipped"):
        lines += ["", f"PostGraphile (the peer) skipped: {result['peer_skipped']}."]
    hooked = [row for row in result["runs"] if "slow_webhook" in row]
    if hooked:
        delay = result["settings"]["hook_delay"]
        lines += [
            "",
            f"With a webhook whose receiver answers after {delay:g} s (certgraph alone, runs"
            " alternated with the plain ones above, open loop at their rate):",
            "",
            "| op | db | workers | p50 ms plain / with webhook | p50 ratio"
            " | p99 ms plain / with | rps plain / with | server CPU ms/request plain / with"
            " | CPU ratio | events / request | events, webhook deliveries, sent | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in hooked:
            slow = row["slow_webhook"]
            lines.append(
                f"| {row['op']} | {row['db']} | {row['workers']}"
                f" | {cell(row['p50_ms'])} / {cell(slow['p50_ms'])} | {cell(slow['ratio_p50'])}"
                f" | {cell(row['p99_ms'])} / {cell(slow['p99_ms'])}"
                f" | {cell(row['rps'])} / {cell(slow['rps'])}"
                f" | {cell(row['cpu_ms'])} / {cell(slow['cpu_ms'])} | {cell(slow['ratio_cpu'])}"
                f" | {cell(slow['events_per_request'])}"
                f" | {slow['events']}, {slow['deliveries']}, {slow['received']}"
                f" | {cell(slow['errors'])}"
                + "".join(f"; **{p}**" for p in slow["problems"])
                + " |"
            )
    if result["pages"]:
        lines += [
            "",
            "| keyset | db | workers | page 1 p50 ms | page 500 p50 ms | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for page in result["pages"]:
            lines.append(
                f"| courses NAME_ASC, first {result['page_size']} | {page['db']}"
                f" | {page['workers']} | {cell(page['page1_p50_ms'])}"
                f" | {cell(page['page500_p50_ms'])} | {cell(page['ratio_p50'])} |"
            )
    if result["targets"]:
        lines += [
            "",
            "| target | db | workers | ratio | limit | met |",
            "|---|---|---|---|---|---|",
        ]
        for t in result["targets"]:
            lines.append(
                f"| {t.get('name', t['op'] + ' p50')} | {t['db']} | {t['workers']}"
                f" | {cell(t['ratio_p50'])}"
                f" | {t['target']}"
                f" | {'yes' if t['met'] else '**no**'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--open-loop-upload" in argv:
        return open_loop_upload(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db", action="append", required=True, help="a generated database; repeatable"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per target, interleaved")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--iterations", type=int, default=30, help="in-process executions per op")
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2")
    parser.add_argument(
        "--upload-workers",
        default="1",
        help="of those, the worker counts M2 (uploads) runs with; e.g. 1,2",
    )
    parser.add_argument(
        "--q3-workers",
        default="1",
        help="of those, the worker counts Q3 (the admin list) runs with; e.g. 1,2",
    )
    parser.add_argument("--ops", default=",".join(ALL_OPS))
    parser.add_argument("--profile", action="store_true", help="py-spy the 1-worker server")
    parser.add_argument("--no-pin", action="store_true", help="don't pin server and load to CPUs")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--open-duration", type=float, help="seconds per open-loop run (default: --duration)"
    )
    parser.add_argument(
        "--slow-webhook-ops",
        default="M1,M2",
        help="write operations also run with a slow webhook configured ('' for none)",
    )
    parser.add_argument(
        "--no-peer",
        metavar="REASON",
        help="don't run PostGraphile (the peer); the reason is written in the table",
    )
    parser.add_argument(
        "--slow-webhook-delay", type=float, default=10.0, help="seconds its receiver takes"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk; `make bench` does it)")
    if args.duration <= 0 or args.repeats < 1:
        parser.error("--duration must be positive and --repeats at least 1")
    cfg = Settings(
        duration=args.duration,
        open_duration=args.open_duration or args.duration,
        repeats=args.repeats,
        connections=args.connections,
        iterations=args.iterations,
        ops=[o.strip() for o in args.ops.split(",") if o.strip()],
        workers=[int(w) for w in args.workers.split(",")],
        upload_workers=[int(w) for w in args.upload_workers.split(",")],
        q3_workers=[int(w) for w in args.q3_workers.split(",") if w.strip()],
        profile=args.profile,
        pin=not args.no_pin and (os.cpu_count() or 1) >= 2,
        hook_ops=[o.strip() for o in args.slow_webhook_ops.split(",") if o.strip()],
        hook_delay=args.slow_webhook_delay,
        peer_skipped=None if args.no_peer is None else args.no_peer,
    )
    if cfg.peer_skipped is None and any(dialect_of(u) == "postgres" for u in args.db):
        cfg.peer_skipped = peer_side.unavailable()
        if cfg.peer_skipped:
            print(f"PostGraphile (the peer) skipped: {cfg.peer_skipped}", file=sys.stderr)
    unknown = set(cfg.ops) - set(ALL_OPS)
    if unknown:
        parser.error(f"unknown --ops: {', '.join(sorted(unknown))}")
    if set(cfg.hook_ops) - {"M1", "M2"}:
        parser.error("--slow-webhook-ops takes write operations: M1, M2")
    started = time.time()
    load_start = os.getloadavg()
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    scales = set()
    page_size = None
    hook = SlowWebhook(cfg.hook_delay) if set(cfg.hook_ops) & set(cfg.ops) else None
    try:
        measured = [run_database(url, cfg, hook) for url in args.db]
    finally:
        if hook is not None:
            hook.stop()
    for url, (data_rows, data_checks, extra) in zip(args.db, measured, strict=True):
        rows += data_rows
        checks += data_checks
        dataset = load_dataset(url)
        scales.add(dataset.meta["scale"])
        page_size = dataset.page_size
        extras[dataset.dialect] = extra
    pages = pages_summary(rows)
    result = {
        "scale": scales.pop() if len(scales) == 1 else sorted(scales),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "pinned": cfg.pin,
        },
        "settings": {k: v for k, v in cfg.__dict__.items()},
        "page_size": page_size,
        "peer_skipped": cfg.peer_skipped,
        "peer": peer_side.version(),
        "runs": rows,
        "pages": pages,
        "targets": verdicts(rows, pages),
        "checks": checks,
        "details": extras,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    failed = [r for r in rows if r.get("errors")]
    for row in failed:
        print(
            f"{row['op']} {row['db']} {row['workers']}w: {row['errors']} failed requests",
            file=sys.stderr,
        )
    hook_problems = [r for r in rows if r.get("slow_webhook", {}).get("problems")]
    for row in hook_problems:
        print(
            f"{row['op']} {row['db']} {row['workers']}w with the slow webhook:"
            f" {'; '.join(row['slow_webhook']['problems'])}",
            file=sys.stderr,
        )
    agree = all(c["same_json"] for c in checks)
    return 0 if agree and not failed and not hook_problems else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
