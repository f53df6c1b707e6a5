"""The stack's own cost: strawberry on Starlette answering Q0 and Q1 from objects in memory.

No database, no sign-in, no middleware, no rules: the answers have Q1's shape (20 enrollments
with their certification and 7 courses each, about 1,130 fields) and are built once at
start-up, and documents are parsed and validated once (certgraph's ParserCache and
ValidationCache), so what a request costs here is what strawberry and graphql-core cost to
read the body, run the document and encode the answer. `python -m bench.instructions --stack`
counts it beside certgraph and the floor (docs/performance.md, "What the stack costs").
`BENCH_STACK_EXECUTOR=fast` runs it on certgraph's FastExecutionContext instead of
strawberry's own executor.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from enum import Enum

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.enum
class Status(Enum):
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"


@strawberry.enum
class Kind(Enum):
    INTERNAL = "INTERNAL"


@strawberry.enum
class Type(Enum):
    ONCE = "ONCE"


@strawberry.type
class Course:
    id: strawberry.ID
    name: str


@strawberry.type
class CourseProgress:
    course: Course
    status: Status
    percent: int
    completed_at: datetime | None


@strawberry.type
class Certification:
    id: strawberry.ID
    name: str
    kind: Kind
    type_: Type = strawberry.field(name="type")


@strawberry.type
class Enrollment:
    id: strawberry.ID
    status: Status
    progress_percent: int
    due_at: datetime | None
    overdue: bool
    completed_at: datetime | None
    expires_at: datetime | None
    certification: Certification
    courses: list[CourseProgress]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge:
    node: Enrollment


@strawberry.type
class Connection:
    total_count: int
    page_info: PageInfo
    edges: list[Edge]


def page() -> Connection:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    edges = []
    for e in range(20):
        courses = [
            CourseProgress(
                course=Course(id=strawberry.ID(f"Q291cnNlOj{e}{c}"), name=f"Course {e}.{c}"),
                status=Status.COMPLETED if c % 2 else Status.STARTED,
                percent=100 if c % 2 else 40,
                completed_at=now - timedelta(days=c) if c % 2 else None,
            )
            for c in range(7)
        ]
        certification = Certification(
            id=strawberry.ID(f"Q2VydGlmaWNhdGlvbjo{e}"),
            name=f"Certification {e}",
            kind=Kind.INTERNAL,
            type_=Type.ONCE,
        )
        node = Enrollment(
            id=strawberry.ID(f"RW5yb2xsbWVudDo{e}"),
            status=Status.STARTED,
            progress_percent=57,
            due_at=now + timedelta(days=e),
            overdue=False,
            completed_at=None,
            expires_at=None,
            certification=certification,
            courses=courses,
        )
        edges.append(Edge(node=node))
    return Connection(
        total_count=20, page_info=PageInfo(has_next_page=False, end_cursor="WzIwXQ"), edges=edges
    )


PAGE = page()


@strawberry.type
class Viewer:
    id: strawberry.ID

    @strawberry.field
    def certifications(self, first: int | None = None) -> Connection:
        return PAGE


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self) -> Viewer:
        return Viewer(id=strawberry.ID("VXNlcjox"))


def create_app() -> Starlette:
    executor = None
    if os.environ.get("BENCH_STACK_EXECUTOR") == "fast":
        from gql.api.execution import FastExecutionContext

        executor = FastExecutionContext
    # certgraph's caches of parsed and validated documents, so that a request pays neither
    schema = strawberry.Schema(
        query=Query,
        execution_context_class=executor,
        extensions=[ParserCache(maxsize=100), ValidationCache(maxsize=100)],
    )
    return Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None))])
