"""Fuzzing a real server (debug config, so schemathesis can introspect it): valid operations
generated from the schema (schemathesis, positive mode), invalid ones (hypothesis-graphql's
negative mode through schemathesis), and raw bodies that are not GraphQL at all. Bounded in
examples and time. Zero 5xx, and no masked internal error either: a resolver that crashes
answers 200 with INTERNAL_SERVER_ERROR, which is a bug just the same."""

from __future__ import annotations

import asyncio
import json
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes

from tests.proof.live import (
    Client,
    Deployment,
    create_certification,
    create_course,
    create_person,
    record_figures,
)

POSITIVE_EXAMPLES = 12  # per operation
NEGATIVE_EXAMPLES = 8  # per operation
RAW_EXAMPLES = 150
TIME_BUDGET_SECONDS = 150.0  # for the whole fuzz run; examples stop being drawn after it

# Strategies for the schema's custom scalars: valid and invalid values alike.
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
        st.datetimes().map(lambda d: nodes.String(d.isoformat())),  # naive: refused
        st.text(max_size=20).map(nodes.String),
    ),
)
schemathesis.graphql.scalar(
    "Date",
    st.one_of(
        st.dates().map(lambda d: nodes.String(d.isoformat())),
        st.text(max_size=12).map(nodes.String),
    ),
)
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.just(nodes.Object([])),
        st.integers().map(nodes.Int),
        st.text(max_size=20).map(nodes.String),
    ),
)
# An Upload travels as a file part, never inline: any literal is refused.
schemathesis.graphql.scalar("Upload", st.text(max_size=10).map(nodes.String))


@dataclass
class Tally:
    examples: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    deadline: float = 0.0

    def note(self, kind: str, status: int, body: str, sent: str) -> None:
        self.examples[kind] = self.examples.get(kind, 0) + 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.failures.append(f"{kind}: HTTP {status} for {sent[:300]}: {body[:300]}")
        elif "INTERNAL_SERVER_ERROR" in body:
            self.failures.append(f"{kind}: internal error for {sent[:300]}: {body[:500]}")

    @property
    def total(self) -> int:
        return sum(self.examples.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    suppress_health_check=list(HealthCheck),
)


def send(tally: Tally, kind: str, sent: str, call: Callable[[], requests.Response]) -> None:
    """One request; a dropped connection counts as a server error (the server crashed)."""
    try:
        response = call()
    except requests.ConnectionError as exc:
        tally.note(kind, 599, f"connection failed: {exc}", sent)
        return
    tally.note(kind, response.status_code, response.text, sent)


def operation_test(
    operation: Any, mode: GenerationMode, examples: int, url: str, token: str, tally: Tally
) -> Callable[[], None]:
    headers = {"Authorization": f"Bearer {token}"}
    kind = f"schemathesis {mode.value}"

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if time.monotonic() > tally.deadline:
            return
        send(
            tally,
            kind,
            json.dumps(case.body),
            lambda: case.call(base_url=url, headers=headers, timeout=30),
        )

    return run


def fuzz_operations(url: str, token: str, tally: Tally) -> None:
    """schemathesis over every Query and Mutation field, positive then negative."""
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.graphql.from_url(f"{url}/graphql", headers=headers, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20, [op.label for op in operations]
    for mode, examples in (
        (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
        (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
    ):
        for operation in operations:
            if time.monotonic() > tally.deadline:
                return
            operation_test(operation, mode, examples, url, token, tally)()


def fuzz_raw_bodies(url: str, token: str, tally: Tally) -> None:
    """Bodies a parser has to survive: bytes, broken JSON, JSON of the wrong shape."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    graphqlish = st.text(alphabet=string.printable + "{}()[]$@!:…", max_size=200)
    bodies = st.one_of(
        st.binary(max_size=300),
        graphqlish.map(lambda text: json.dumps({"query": text}).encode()),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["query", "variables", "operationName", "x"]),
                    children,
                    max_size=3,
                )
            ),
            max_leaves=8,
        ).map(lambda value: json.dumps(value).encode()),
    )

    @settings(FUZZ_SETTINGS, max_examples=RAW_EXAMPLES)
    @given(body=bodies)
    def run(body: bytes) -> None:
        if time.monotonic() > tally.deadline:
            return
        send(
            tally,
            "raw body",
            repr(body),
            lambda: requests.post(f"{url}/graphql", data=body, headers=headers, timeout=30),
        )

    run()


async def seed(url: str, admin_token: str) -> None:
    """Some rows, so generated IDs and lists have something to find."""
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        admin = Client(http, admin_token)
        courses = [await create_course(admin, f"Fuzz course {i}") for i in range(3)]
        await create_certification(admin, "Fuzz internal", courses)
        await create_certification(admin, "Fuzz external", [], kind="EXTERNAL")
        await create_person(admin, "Fuzz Learner")


async def test_fuzzing_finds_no_server_error(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_DEBUG="true").start()
    await seed(server.url, admin_token)
    tally = Tally(deadline=time.monotonic() + TIME_BUDGET_SECONDS)
    started = time.monotonic()
    await asyncio.to_thread(fuzz_operations, server.url, admin_token, tally)
    await asyncio.to_thread(fuzz_raw_bodies, server.url, admin_token, tally)
    elapsed = time.monotonic() - started

    assert server.running, server.log()
    assert tally.failures == [], "\n".join(tally.failures[:10])
    assert tally.server_errors == 0
    assert tally.examples.get("schemathesis positive", 0) >= 100
    assert tally.examples.get("schemathesis negative", 0) >= 50
    assert tally.examples.get("raw body", 0) >= 50
    record_figures(
        "fuzzing",
        examples=tally.total,
        **{kind.replace(" ", "_"): count for kind, count in sorted(tally.examples.items())},
        statuses=dict(sorted(tally.statuses.items())),
        http_5xx=tally.server_errors,
        seconds=round(elapsed, 1),
    )
