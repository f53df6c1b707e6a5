"""What a request loads is freed by reference counting once it is answered, not left to the
cyclic garbage collector: the loaders' functions refer back to their Loaders, so without the
view's release at the end of a request the whole read model (records, views, policy facts)
waited for a collection, which made the collections frequent and long (docs/performance.md,
"The tail")."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator

import pytest
from strawberry.dataloader import DataLoader

from gql.api.loaders import Loaders
from gql.domain.status import EnrollmentView
from gql.store.records import CertificationRecord, CourseLinkRecord, EnrollmentRecord
from tests.api.conftest import SYSTEM, GraphQLClient, World
from tests.api.test_query_counts import LEARNER_LIST, seed

# what the answer is made of: none of it may need the collector to be freed
LOADED = (EnrollmentView, EnrollmentRecord, CertificationRecord, CourseLinkRecord)


@pytest.fixture
def cyclic_garbage() -> Iterator[list[object]]:
    """Objects freed only by the cyclic collector while the test runs (the collector off)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


def collect(found: list[object]) -> Counter[str]:
    gc.collect()
    found.extend(gc.garbage)
    gc.garbage.clear()
    return Counter(type(o).__name__ for o in found if isinstance(o, LOADED))


async def test_a_learner_list_leaves_its_read_model_to_reference_counting(
    graphql_client: GraphQLClient, world: World, cyclic_garbage: list[object]
) -> None:
    await seed(world, 5)
    token = world.learner.token
    await graphql_client.data(LEARNER_LIST, {"first": 5}, token=token)  # warm caches
    collect(cyclic_garbage)
    cyclic_garbage.clear()

    data = await graphql_client.data(LEARNER_LIST, {"first": 5}, token=token)

    assert len(data["viewer"]["certifications"]["edges"]) == 5
    assert collect(cyclic_garbage) == Counter()


async def test_a_write_leaves_its_read_model_to_reference_counting(
    graphql_client: GraphQLClient, world: World, cyclic_garbage: list[object]
) -> None:
    await seed(world, 3)
    token = world.learner.token
    record = """
    mutation Rec($course: ID!) {
      recordCourseProgress(input: {courseId: $course, percent: 60}) {
        enrollments { status progressPercent certification { name } }
      }
    }"""
    await graphql_client.data(record, {"course": world.course_gid(2)}, token=token)
    collect(cyclic_garbage)
    cyclic_garbage.clear()

    data = await graphql_client.data(record, {"course": world.course_gid(3)}, token=token)

    assert data["recordCourseProgress"]["enrollments"]
    assert collect(cyclic_garbage) == Counter()


async def test_release_empties_every_loader() -> None:
    """What the view's release relies on: afterwards no loader holds a result."""
    loaders = Loaders(SYSTEM)
    loaders.course_links.prime(1, [])
    assert await loaders.course_links.load(1) == []

    loaders.release()

    for loader in vars(loaders).values():
        if isinstance(loader, DataLoader):
            assert loader.cache_map.cache_map == {}  # type: ignore[attr-defined]
            assert loader.batch is None
