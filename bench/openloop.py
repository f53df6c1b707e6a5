"""An open-loop (constant arrival rate) HTTP load generator for the latency runs.

    python -m bench.openloop --port 8000 --rate 200 --duration 5 --requests FILE.json

wrk is closed-loop: a slow response delays the next request, so its latencies leave out the
time requests would have waited (coordinated omission). Here request i is due at
start + i / rate whatever happened before, and its latency is measured from that due time:
when the server falls behind, the queueing shows in the percentiles. Requests go over
keep-alive HTTP/1.1 connections on loopback, opened as needed up to --connections.

FILE.json is a list of [body, bearer token] pairs, sent in turn. The summary is one JSON line
on stdout: sent, ok, errors, achieved rate, p50/p90/p99/max latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, payload: bytes) -> int:
        """Send one request and read the whole response; return the HTTP status."""
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        if length is None:
            raise ValueError("response without Content-Length")
        await self.reader.readexactly(length)
        return status


def build_requests(host: str, port: int, pairs: list[list[str]]) -> list[bytes]:
    built = []
    for body, token in pairs:
        data = body.encode()
        built.append(
            (
                f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\n"
                + (f"Authorization: Bearer {token}\r\n" if token else "")
                + f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    return built


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(
    host: str, port: int, rate: float, duration: float, requests: list[bytes], connections: int
) -> dict[str, Any]:
    total = max(1, int(rate * duration))
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    idle: list[Connection] = []
    open_count = 0
    lock = asyncio.Lock()

    async def connection() -> Connection:
        nonlocal open_count
        if idle:
            return idle.pop()
        open_count += 1
        reader, writer = await asyncio.open_connection(host, port)
        return Connection(reader, writer)

    async def worker() -> None:
        nonlocal errors
        while True:
            item = await queue.get()
            if item is None:
                return
            index, due = item
            async with lock:
                conn = await connection()
            try:
                status = await conn.send(requests[index % len(requests)])
            except (OSError, ValueError, asyncio.IncompleteReadError):
                errors += 1
                conn.writer.close()
                continue
            latencies.append(time.perf_counter() - due)
            if status != 200:
                errors += 1
            idle.append(conn)

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in workers:
        queue.put_nowait(None)
    # Whatever is still queued when the schedule ends is waited for: its latency counts.
    await asyncio.wait_for(asyncio.gather(*workers), timeout=max(30.0, duration * 4))
    elapsed = time.perf_counter() - start
    for conn in idle:
        conn.writer.close()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "sent": total,
        "ok": len(latencies) - errors,
        "errors": errors,
        "rate": rate,
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "connections": open_count,
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p90_ms": round(percentile(ms, 0.90), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(ms[-1], 3) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 3) if ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.openloop", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of schedule")
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=64, help="most connections open")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    pairs = json.loads(args.requests.read_text())
    if not pairs:
        parser.error("--requests holds no requests")
    requests = build_requests(args.host, args.port, pairs)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # the standard loop measures the same, with more overhead
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        summary = runner.run(
            run(args.host, args.port, args.rate, args.duration, requests, args.connections)
        )
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
