"""Fixtures of the file tests: people, certifications, the blob store of the settings (the data
directory per test, the small upload limit and the event log are tests/conftest.py's)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from gql import files
from gql.domain import certifications, courses, users
from gql.domain.access import Actor
from gql.files import (
    ByteSource,
    CheckReport,
    GcReport,
    LocalBlobStore,
    Purpose,
    StagedUpload,
)
from gql.files.maintenance import DEFAULT_GC_GRACE_SECONDS
from gql.settings import get_settings
from gql.store.file_references import StoredFileReferences
from gql.store.models import (
    Certification,
    CertificationKind,
    CertificationType,
    Course,
    Role,
)


def blob_store() -> LocalBlobStore:
    """The blob store of the process settings, which the data_dir and upload_limit fixtures
    set (the app factory builds one the same way from its settings)."""
    settings = get_settings()
    return LocalBlobStore(settings.data_dir, max_bytes=settings.max_upload_bytes)


def blob_path(sha256: str) -> Path:
    return blob_store().path(sha256)


def tmp_dir() -> Path:
    return blob_store().tmp_dir


def receive_upload(
    source: ByteSource, purpose: Purpose, **options: Any
) -> AbstractAsyncContextManager[StagedUpload]:
    """`gql.files.receive_upload` into `blob_store()`."""
    return files.receive_upload(blob_store(), source, purpose, **options)


async def collect_garbage(*, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcReport:
    """`certgraph gc` in process: `blob_store()` against the test database."""
    return await files.collect_garbage(
        blob_store(), StoredFileReferences(), grace_seconds=grace_seconds
    )


async def check_storage() -> CheckReport:
    """`certgraph check` in process: `blob_store()` against the test database."""
    return await files.check_storage(blob_store(), StoredFileReferences())


@dataclass
class World:
    admin: Actor
    manager: Actor
    learner: Actor  # reports to `manager`
    other_manager: Actor
    other_learner: Actor  # reports to `other_manager`
    course: Course

    async def external(
        self,
        *,
        policy_config: dict[str, Any] | None = None,
        type: CertificationType = CertificationType.PERPETUAL,
        validity_months: int | None = None,
        courses: list[Course] | None = None,
        publish: bool = True,
    ) -> Certification:
        cert = await certifications.create_certification(
            self.admin,
            certifications.CertificationData(
                name="Cloud Architect",
                kind=CertificationKind.EXTERNAL,
                type=type,
                issuer="Example Board",
                validity_months=validity_months,
                policy_config=policy_config,
            ),
        )
        if courses:
            await certifications.set_certification_courses(
                self.admin,
                cert.id,
                [certifications.CourseLink(course_id=c.id, mandatory=True) for c in courses],
            )
        if publish:
            cert = await certifications.publish_certification(self.admin, cert.id)
        return cert

    async def internal(self, *course_list: Course) -> Certification:
        cert = await certifications.create_certification(
            self.admin,
            certifications.CertificationData(
                name="Internal Basics",
                kind=CertificationKind.INTERNAL,
                type=CertificationType.PERPETUAL,
            ),
        )
        await certifications.set_certification_courses(
            self.admin,
            cert.id,
            [certifications.CourseLink(course_id=c.id, mandatory=True) for c in course_list],
        )
        return await certifications.publish_certification(self.admin, cert.id)


async def _person(name: str, role: Role, manager: Actor | None = None) -> Actor:
    user = await users.create_user(
        Actor.system(),
        name=name,
        email=f"{name.lower().replace(' ', '.')}@example.com",
        role=role,
        manager_id=None if manager is None else manager.user_id,
    )
    return Actor.of(user)


@pytest_asyncio.fixture
async def world(db: None) -> World:
    admin = await _person("Ada Admin", Role.ADMIN)
    manager = await _person("Max Manager", Role.MANAGER)
    other_manager = await _person("Olga Manager", Role.MANAGER)
    return World(
        admin=admin,
        manager=manager,
        learner=await _person("Lea Learner", Role.LEARNER, manager),
        other_manager=other_manager,
        other_learner=await _person("Otto Learner", Role.LEARNER, other_manager),
        course=await courses.create_course(admin, name="Networking 101"),
    )
