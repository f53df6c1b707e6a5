"""What a request loads and executes is freed by reference counting once it is answered, not
left to the cyclic garbage collector: the loaders' functions refer back to their Loaders, and
graphql-core's execution context to itself, so without the view's release and the weak
helpers (gql/api/execution.py) the whole read model (records, views, policy facts) and the
request's context waited for a collection, which made the collections frequent and long
(docs/performance.md, "The tail")."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from strawberry.dataloader import DataLoader

from gql.api import execution
from gql.api.loaders import Loaders
from gql.domain.status import EnrollmentView
from gql.store.records import CertificationRecord, CourseLinkRecord, EnrollmentRecord
from tests.api.conftest import SYSTEM, GraphQLClient, World
from tests.api.test_query_counts import LEARNER_LIST, seed

# what the answer is made of, and what executes it: none of it may need the collector
LOADED = (EnrollmentView, EnrollmentRecord, CertificationRecord, CourseLinkRecord)
MADE_FOR_A_REQUEST = ("gql.", "strawberry.", "graphql.execution", "starlette.")

RECORD = """
mutation Rec($course: ID!) {
  recordCourseProgress(input: {courseId: $course, percent: 60}) {
    enrollments { status progressPercent certification { name } }
  }
}"""


@pytest.fixture
def collector_off() -> Iterator[None]:
    if execution.STOCK_ONLY:
        pytest.skip("strawberry's own executor keeps graphql-core's self-referencing helpers")
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def left_to_the_collector(
    client: GraphQLClient, token: str, document: str, variables: dict[str, Any]
) -> tuple[Counter[str], dict[str, Any]]:
    """What one request made that only the cyclic collector could free, by type, and its
    answer's data."""
    gc.collect()
    before = gc.get_objects()  # held, so that no id of theirs is reused by a new object
    known = {id(o) for o in before}
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        data = await client.data(document, variables, token=token)
        gc.collect()
        found = [o for o in gc.garbage if id(o) not in known]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    left = Counter(
        f"{type(o).__module__}.{type(o).__qualname__}"
        for o in found
        if isinstance(o, LOADED) or type(o).__module__.startswith(MADE_FOR_A_REQUEST)
    )
    return left, data


@pytest.mark.usefixtures("collector_off")
async def test_a_learner_list_leaves_nothing_to_the_collector(
    graphql_client: GraphQLClient, world: World
) -> None:
    await seed(world, 5)
    token = world.learner.token
    await graphql_client.data(LEARNER_LIST, {"first": 5}, token=token)  # validated, cached

    left, data = await left_to_the_collector(graphql_client, token, LEARNER_LIST, {"first": 5})

    assert left == Counter()
    assert len(data["viewer"]["certifications"]["edges"]) == 5


@pytest.mark.usefixtures("collector_off")
async def test_a_write_leaves_nothing_to_the_collector(
    graphql_client: GraphQLClient, world: World
) -> None:
    await seed(world, 3)
    token = world.learner.token
    await graphql_client.data(RECORD, {"course": world.course_gid(2)}, token=token)

    left, data = await left_to_the_collector(
        graphql_client, token, RECORD, {"course": world.course_gid(3)}
    )

    assert left == Counter()
    assert data["recordCourseProgress"]["enrollments"]


async def test_release_empties_every_loader_and_ends_it() -> None:
    """What the view's release relies on: afterwards no loader holds a result, and at the
    request's end none can load again."""
    loaders = Loaders(SYSTEM)
    loaders.course_links.prime(1, [])
    assert await loaders.course_links.load(1) == []

    loaders.release()  # before a mutation's writes: emptied, still usable
    assert all(
        not loader.cache_map.cache_map and loader.batch is None  # type: ignore[attr-defined]
        for loader in vars(loaders).values()
        if isinstance(loader, DataLoader)
    )
    loaders.course_links.prime(2, [])
    assert await loaders.course_links.load(2) == []

    loaders.release(end=True)
    with pytest.raises(RuntimeError, match="after its request ended"):
        await loaders.courses.load(7)
