"""README's tour (issue 13): its GraphQL documents run in order, each with the token its
step names, against freshly made demo data through the app, and each claim is checked: the
answer excerpt under each document (a JSON subset of `data`), the IDs fed from earlier answers
as the README says, the demo's people and counts, and the few claims made only in words."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql.app import create_app
from gql.demo import DemoResult, load_demo
from gql.domain.calendar import add_months
from gql.files import LocalBlobStore
from gql.plugins import PluginHost
from gql.settings import Settings
from tests.api.conftest import GraphQLClient

README = Path(__file__).resolve().parent.parent / "README.md"

# A step: `<!-- tour step N, as Name -->`, then its ```graphql document, then (before the next
# step) a ```json excerpt of the answer's `data`.
STEP = re.compile(r"<!-- tour step (\d+), as (\w+) -->")
GRAPHQL = re.compile(r"```graphql\n(.*?)```", re.S)
ANSWER = re.compile(r"```json\n(.*?)```", re.S)
PLACEHOLDER = re.compile(r'"<the id of (.+?) from step (\d+)>"')
# In an excerpt: any value but null; inside a text, any part; as a list's last item: more
# items may follow.
ANY = "…"
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


@dataclass(frozen=True)
class Step:
    number: int
    who: str
    document: str
    answer: Any


def tour_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## A 5-minute tour")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def tour_steps() -> list[Step]:
    section = tour_section()
    markers = list(STEP.finditer(section))
    steps = []
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        body = section[marker.end() : following.start() if following else len(section)]
        document = GRAPHQL.search(body)
        assert document and body[: document.start()].strip() == "", (
            f"step {marker[1]}: its marker must be followed by a ```graphql block"
        )
        answer = ANSWER.search(body, document.end())
        assert answer, f"step {marker[1]}: no ```json answer excerpt"
        steps.append(
            Step(int(marker[1]), marker[2], document[1], json.loads(answer[1])),
        )
    return steps


def test_the_tour_shows_each_query_it_names_in_order() -> None:
    steps = tour_steps()
    assert [s.number for s in steps] == list(range(3, 3 + len(steps)))
    documents = "\n".join(s.document for s in steps)
    for name in (
        "viewer",
        "recordCourseProgress",
        "evidenceReviewQueue",
        "reviewEvidence",
        "users",
        "certificationReport",
    ):
        assert re.search(rf"\b{name}\b", documents), name
    # the README shows no GraphQL outside the checked steps' blocks
    assert tour_section().count("```graphql") == len(steps)


def matches(expected: Any, actual: Any, path: str = "data") -> None:
    """`actual` has every field of `expected`; lists match item by item (a last item `…`
    allows more), `…` matches any value but null, and inside a text any part of it."""
    if expected == ANY:
        assert actual is not None, f"{path}: null, the README shows a value"
    elif isinstance(expected, str) and ANY in expected:
        pattern = ".+?".join(re.escape(part) for part in expected.split(ANY))
        assert isinstance(actual, str) and re.fullmatch(pattern, actual, re.S), (
            f"{path}: {actual!r}, the README says {expected!r}"
        )
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{path}: no field {key!r} in {actual!r}"
            matches(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        more = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if more else expected
        if more:
            assert len(actual) >= len(items), f"{path}: {len(actual)} items, README shows more"
        else:
            assert len(actual) == len(items), f"{path}: {len(actual)} items, README shows {items}"
        for index, item in enumerate(items):
            matches(item, actual[index], f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r}, the README says {expected!r}"


def ids_named(answer: Any, name: str) -> set[str]:
    """The `id`s of the objects in an answer that have `name` as one of their values."""
    found: set[str] = set()
    if isinstance(answer, dict):
        if "id" in answer and name in answer.values():
            found.add(answer["id"])
        for value in answer.values():
            found |= ids_named(value, name)
    elif isinstance(answer, list):
        for item in answer:
            found |= ids_named(item, name)
    return found


def with_ids(step: Step, answers: dict[int, Any]) -> str:
    def resolve(placeholder: re.Match[str]) -> str:
        name, source = placeholder[1], int(placeholder[2])
        assert source in answers, f"step {step.number} needs step {source}, not run before it"
        ids = ids_named(answers[source], name)
        assert len(ids) == 1, f"step {step.number}: step {source} has ids {ids} for {name!r}"
        return json.dumps(ids.pop())

    return PLACEHOLDER.sub(resolve, step.document)


def test_the_excerpt_check_can_fail() -> None:
    matches({"a": [{"b": 1}, ANY]}, {"a": [{"b": 1, "c": 2}, {"b": 3}], "d": 4})
    matches(
        {"e": "valid until …, next cycle in … days"},
        {"e": "valid until May 3, next cycle in 20 days"},
    )
    for expected, actual in (
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {}),
        ({"a": [1]}, {"a": [1, 2]}),
        ({"a": [1, 2, ANY]}, {"a": [1]}),
        ({"a": ANY}, {"a": None}),
        ({"a": "until …"}, {"a": "since May 3"}),
        ({"a": "until …"}, {"a": None}),
    ):
        with pytest.raises(AssertionError):
            matches(expected, actual)


@pytest_asyncio.fixture
async def demo(db: None, data_dir: Path, plugin_host: PluginHost) -> DemoResult:
    return await load_demo(LocalBlobStore(data_dir), data_dir=data_dir)


@pytest_asyncio.fixture
async def api(
    demo: DemoResult, data_dir: Path, plugin_host: PluginHost
) -> AsyncIterator[GraphQLClient]:
    # As `make run` serves it: debug mode, GraphiQL's.
    app = create_app(Settings(data_dir=data_dir, debug=True), plugins=plugin_host)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tour.test") as http:
        yield GraphQLClient(http)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def node_named(connection: dict[str, Any], name: str) -> dict[str, Any]:
    [node] = [
        edge["node"]
        for edge in connection["edges"]
        if name in (edge["node"].get("name"), edge["node"].get("certification", {}).get("name"))
    ]
    return node


async def test_the_demo_has_the_people_and_counts_of_step_one(demo: DemoResult) -> None:
    section = tour_section()
    counts = re.search(r"four people, (\w+) courses and (\w+) certifications", section)
    assert counts, "step 1 no longer says what the demo holds"
    assert (
        f"Demo data loaded: 4 people, {NUMBERS[counts[1]]} courses, "
        f"{NUMBERS[counts[2]]} certifications" in demo.summary
    )
    listed = re.findall(r"^ +(ADMIN|MANAGER|LEARNER) +(.+?) <(\S+)> +cg_…$", section, re.M)
    assert listed == [(t.role.value, t.name, t.email) for t in demo.tokens]


async def test_the_tour_runs_as_the_readme_says(api: GraphQLClient, demo: DemoResult) -> None:
    tokens = {token.name.split()[0]: token.token for token in demo.tokens}
    start = datetime.now(UTC)
    answers: dict[int, Any] = {}
    for step in tour_steps():
        assert step.who in tokens, f"step {step.number}: nobody called {step.who}"
        result = await api.run(with_ids(step, answers), token=tokens[step.who])
        assert "errors" not in result, (step.number, result["errors"])
        matches(step.answer, result["data"], f"step {step.number}")
        answers[step.number] = result["data"]

    # The claims made only in words.
    # Step 3: Security Champion is due in three weeks.
    leo = answers[3]["viewer"]["certifications"]
    due = at(node_named(leo, "Security Champion")["dueAt"])
    assert start + timedelta(days=20) < due < datetime.now(UTC) + timedelta(days=22)
    # Step 6: dated the day Leo earned it (step 5's completedOn), valid 24 months from then.
    [queued] = answers[5]["evidenceReviewQueue"]["edges"]
    earned = datetime.fromisoformat(queued["node"]["completedOn"]).replace(tzinfo=UTC)
    approved = answers[6]["reviewEvidence"]["evidence"]["enrollment"]
    assert at(approved["completedAt"]) == earned
    assert at(approved["expiresAt"]) == add_months(earned, 24)
    # Step 7: Lena's Security Champion expires in ten days (so its 30-day window is open);
    # Maya's certificate was earned a little over two years ago.
    lena, _, maya = (edge["node"] for edge in answers[7]["users"]["edges"])
    expires = at(node_named(lena["certifications"], "Security Champion")["expiresAt"])
    assert start + timedelta(days=9) < expires < datetime.now(UTC) + timedelta(days=11)
    assert maya["name"] == "Maya Manager"
    [maya_proof] = node_named(maya["certifications"], "Certified Cloud Architect")["evidence"]
    earned = datetime.fromisoformat(maya_proof["completedOn"]).replace(tzinfo=UTC)
    assert add_months(start, -26) < earned < add_months(start, -24)
