"""Fixtures for the API tests: the app over ASGITransport on the `db` fixture's event loop,
a GraphQL client, a world seeded through the domain, and a SQL query counter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from gql import clock
from gql.api.ids import encode_id
from gql.app import create_app
from gql.domain import certifications, courses, users
from gql.domain.access import Actor
from gql.domain.certifications import CertificationData, CourseLink
from gql.plugins import PluginHost
from gql.settings import Settings
from gql.store import models
from gql.store.models import (
    CertificationKind,
    CertificationType,
    Enrollment,
    Evidence,
    EvidenceStatus,
    Role,
    User,
)

SYSTEM = Actor.system()


class GraphQLClient:
    """POSTs GraphQL documents to /graphql the way an SPA does."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=sent)

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        """Execute and return the whole GraphQL response (data and errors), HTTP 200 asserted."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        """Execute and return `data`, asserting there were no errors at all."""
        result = await self.run(query, variables, token=token)
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data


def graphql_post_scope(body: bytes, token: str) -> dict[str, Any]:
    """The ASGI scope of a JSON POST to /graphql, for a test that drives the app by hand (its
    own receive and send: a client that trickles, goes away, or is watched mid-request)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"certgraph.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("certgraph.test", 80),
        "state": {},
    }


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # The app's blob store and signing key live in its data dir: the test's own.
    return Settings(data_dir=data_dir)


@pytest.fixture
def app(settings: Settings, plugin_host: PluginHost) -> Starlette:
    """The app of the test's settings and plugin host (the host the domain falls back to in
    direct calls too, so extras a test registers on it are seen both ways)."""
    return create_app(settings, plugins=plugin_host)


@pytest_asyncio.fixture
async def http(db: None, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    # ASGITransport runs no lifespan: the `db` fixture has set up the ORM on this loop.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://certgraph.test") as client:
        yield client


@pytest.fixture
def graphql_client(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@dataclass
class Person:
    user: User
    token: str

    @property
    def id(self) -> str:
        return encode_id("User", self.user.id)

    @property
    def actor(self) -> Actor:
        return Actor.of(self.user)


@dataclass
class World:
    admin: Person
    manager: Person
    learner: Person  # reports to manager
    other: Person  # another learner, not the manager's report
    course_ids: list[int] = field(default_factory=list)

    def course_gid(self, index: int) -> str:
        return encode_id("Course", self.course_ids[index])


async def make_person(name: str, role: Role, manager: User | None = None) -> Person:
    email = name.lower().replace(" ", ".") + "@example.com"
    user = await users.create_user(
        SYSTEM, name=name, email=email, role=role, manager_id=manager.id if manager else None
    )
    token = await users.create_api_token(SYSTEM, user.id)
    return Person(user, token)


async def make_certification(
    name: str,
    course_ids: list[int],
    *,
    mandatory: list[bool] | None = None,
    kind: CertificationKind = CertificationKind.INTERNAL,
    type_: CertificationType = CertificationType.PERPETUAL,
    publish: bool = True,
    **extra: Any,
) -> int:
    data = CertificationData(name=name, kind=kind, type=type_, **extra)
    cert = await certifications.create_certification(SYSTEM, data)
    flags = mandatory if mandatory is not None else [True] * len(course_ids)
    if course_ids:
        links = [
            CourseLink(course_id=c, mandatory=m) for c, m in zip(course_ids, flags, strict=True)
        ]
        await certifications.set_certification_courses(SYSTEM, cert.id, links)
    if publish:
        await certifications.publish_certification(SYSTEM, cert.id)
    return cert.id


@pytest_asyncio.fixture
async def world(db: None) -> World:
    admin = await make_person("Ada Admin", Role.ADMIN)
    manager = await make_person("Max Manager", Role.MANAGER)
    learner = await make_person("Lea Learner", Role.LEARNER, manager=manager.user)
    other = await make_person("Otto Other", Role.LEARNER)
    course_ids = []
    for i in range(4):
        course = await courses.create_course(SYSTEM, name=f"Course {i}", duration_minutes=30 + i)
        course_ids.append(course.id)
    return World(admin, manager, learner, other, course_ids)


async def add_evidence(
    enrollment_id: int,
    status: EvidenceStatus,
    *,
    reviewer: User | None = None,
    comment: str | None = None,
) -> Evidence:
    """A submission row written directly: submitting and reviewing come with file storage.

    The certification's enrollments are then re-evaluated through an admin use case (setting
    the same courses again), the way a submission or a review will.
    """
    enrollment = await Enrollment.get(id=enrollment_id)
    now = clock.now()
    row = await Evidence.create(
        enrollment_id=enrollment.id,
        sha256="ab" * 32,
        filename="proof.pdf",
        content_type="application/pdf",
        size_bytes=1234,
        status=status,
        submitted_at=now,
        completed_on=date(2026, 1, 15),
        note="passed the exam",
        reviewed_by_id=reviewer.id if reviewer and status != EvidenceStatus.PENDING else None,
        reviewed_at=now if status != EvidenceStatus.PENDING else None,
        review_comment=comment,
    )
    cert_id: int = enrollment.certification_id
    links = (await certifications.course_links([cert_id])).get(cert_id, [])
    await certifications.set_certification_courses(
        SYSTEM,
        cert_id,
        [CourseLink(course_id=link.course_id, mandatory=link.mandatory) for link in links],
    )
    return row


async def table_counts(*, audit: bool = False) -> dict[str, int]:
    """How many rows each table holds (the audit log too, when asked): what a refused
    request must leave as it was."""
    tables: list[Any] = [
        models.User,
        models.ApiToken,
        models.Course,
        models.Certification,
        models.CertificationCourse,
        models.Enrollment,
        models.CourseProgress,
        models.Evidence,
        models.Award,
    ]
    if audit:
        tables.append(models.AuditEvent)
    return {table.__name__: await table.all().count() for table in tables}
