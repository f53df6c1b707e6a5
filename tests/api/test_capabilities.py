"""viewerCan flags agree with refusals: for each flag, each role (the learner, their manager,
an unrelated manager, an admin) and the states that matter, the flag is read and the mutation
it names is called; it is refused exactly when the flag is false. Then the evidence
requirements against what submitEvidence does, and the flags' SQL statements under lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql import clock
from gql.api.ids import encode_id
from gql.domain import certifications, courses, enrollments
from gql.settings import Settings
from gql.store.models import CertificationKind, Enrollment, Evidence, EvidenceStatus, Role
from tests.conftest import QueryCounter
from tests.files.samples import HTML, jpeg, pdf, png

from .conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    add_evidence,
    make_certification,
    make_person,
)
from .uploads_support import FilePart, UploadClient

MAX_UPLOAD = 64 * 1024
ROLES = ("learner", "manager", "other_manager", "admin")
# The codes of a refusal for who the viewer is or what state things are in; any other code
# (bad input) would mean the test called the mutation wrongly.
REFUSALS = {"FORBIDDEN", "NOT_FOUND", "NOT_ALLOWED"}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, max_upload_bytes=MAX_UPLOAD)


@dataclass
class Scene:
    world: World
    other_manager: Person  # manages nobody the test looks at
    graphql: GraphQLClient
    uploads: UploadClient
    http: httpx.AsyncClient

    def person(self, role: str) -> Person:
        if role == "other_manager":
            return self.other_manager
        person: Person = getattr(self.world, role)
        return person


@pytest_asyncio.fixture
async def scene(world: World, graphql_client: GraphQLClient, http: httpx.AsyncClient) -> Scene:
    other_manager = await make_person("Mia Manager", Role.MANAGER)
    return Scene(world, other_manager, graphql_client, UploadClient(http), http)


def refusal_codes(result: dict[str, Any], field: str) -> list[str] | None:
    """The codes the call was refused with, or None when it was taken."""
    codes = [e.get("extensions", {}).get("code", "") for e in result.get("errors", [])]
    payload = (result.get("data") or {}).get(field)
    if payload is not None:
        codes += [e["code"] for e in payload.get("errors", [])]
    if codes:
        return codes
    return None if payload is not None else ["NULL"]


def disagreement(flag: bool | None, result: dict[str, Any], field: str) -> str | None:
    """What is wrong when the call's answer does not fit the flag; None when it does. `flag`
    None: the object is not visible to the viewer (no flag to read), so the call must be
    refused as for a missing one."""
    codes = refusal_codes(result, field)
    if flag and codes is not None:
        return f"{field}: refused although the flag is true: {result}"
    if not flag and codes is None:
        return f"{field}: taken although the flag is {flag}"
    if codes is not None and not set(codes) <= REFUSALS | {"NULL"}:
        return f"{field}: refused for its input, not the rules: {result}"
    return None


@dataclass
class Table:
    """Each (state, role) checked with the flag's value, and every disagreement found."""

    values: dict[tuple[str, str], bool | None]
    problems: list[str]

    def check(self, state: str, role: str, flag: bool | None, calls: list[tuple[str, Any]]) -> None:
        self.values[(state, role)] = flag
        for field, result in calls:
            problem = disagreement(flag, result, field)
            if problem is not None:
                self.problems.append(f"{state} / {role}: {problem}")

    def assert_agreed(self) -> None:
        assert self.problems == []
        # a table of nothing but false flags would agree with any refusal
        assert {True, False} <= set(self.values.values()), self.values


# -- certifications -----------------------------------------------------------------------

CERT_FLAGS = """
query Flags($id: ID!) {
  certification(id: $id) {
    state
    viewerCan { start submitEvidence edit publish retire assign unassign uploadBadge viewReport }
  }
}"""


async def cert_flags(scene: Scene, viewer: Person, cert: int) -> dict[str, bool] | None:
    data = await scene.graphql.data(
        CERT_FLAGS, {"id": encode_id("Certification", cert)}, token=viewer.token
    )
    found = data["certification"]
    return None if found is None else dict(found["viewerCan"])


async def start_for(person: Person, cert: int) -> None:
    await enrollments.start_certification(person.actor, cert)


async def end_for(person: Person, cert: int) -> None:
    await enrollments.unassign_certification(SYSTEM, cert, [person.user.id])


async def enrollment_of(person: Person, cert: int) -> Enrollment:
    return await Enrollment.get(learner_id=person.user.id, certification_id=cert)


async def with_evidence(person: Person, cert: int, status: EvidenceStatus) -> None:
    await start_for(person, cert)
    await add_evidence((await enrollment_of(person, cert)).id, status)


async def internal(scene: Scene, publish: bool = True, courses: int = 2) -> int:
    return await make_certification(
        "Secure Coding", scene.world.course_ids[:courses], publish=publish
    )


async def external(scene: Scene, publish: bool = True, **config: Any) -> int:
    """An EXTERNAL certification; one that wants its mandatory courses first has a course of
    its own, so what one state completes leaves the others as they were."""
    own = []
    if config.get("requireMandatoryCourses"):
        own.append((await courses.create_course(SYSTEM, name="Cloud Basics")).id)
    return await make_certification(
        "Cloud Architect",
        own,
        kind=CertificationKind.EXTERNAL,
        issuer="Example Board",
        publish=publish,
        policy_config=config or None,
    )


async def retire(cert: int) -> int:
    await certifications.retire_certification(SYSTEM, cert)
    return cert


# Each state: a certification, and where the viewer (and the other learner, Otto, whom the
# admin mutations name) stand in it.
Setup = Callable[[Scene, Person], Awaitable[int]]


async def _draft_internal(s: Scene, v: Person) -> int:
    return await internal(s, publish=False)


async def _draft_empty(s: Scene, v: Person) -> int:
    return await internal(s, publish=False, courses=0)


async def _draft_external(s: Scene, v: Person) -> int:
    return await external(s, publish=False)


async def _published(s: Scene, v: Person) -> int:
    cert = await internal(s)
    await start_for(s.world.other, cert)
    return cert


async def _published_started(s: Scene, v: Person) -> int:
    cert = await _published(s, v)
    await start_for(v, cert)
    return cert


async def _published_ended(s: Scene, v: Person) -> int:
    cert = await _published_started(s, v)
    await end_for(v, cert)
    return cert


async def _retired(s: Scene, v: Person) -> int:
    return await retire(await _published(s, v))


async def _retired_started(s: Scene, v: Person) -> int:
    return await retire(await _published_started(s, v))


async def _retired_ended(s: Scene, v: Person) -> int:
    return await retire(await _published_ended(s, v))


async def _external(s: Scene, v: Person) -> int:
    return await external(s)


async def _external_pending(s: Scene, v: Person) -> int:
    cert = await external(s)
    await with_evidence(v, cert, EvidenceStatus.PENDING)
    return cert


async def _external_rejected(s: Scene, v: Person) -> int:
    cert = await external(s)
    await with_evidence(v, cert, EvidenceStatus.REJECTED)
    return cert


async def _external_completed(s: Scene, v: Person) -> int:
    cert = await external(s)
    await with_evidence(v, cert, EvidenceStatus.APPROVED)
    return cert


async def _external_completed_ended(s: Scene, v: Person) -> int:
    cert = await _external_completed(s, v)
    await end_for(v, cert)  # ended, in a PUBLISHED certification: its COMPLETED view counts
    return cert


async def _external_ended(s: Scene, v: Person) -> int:
    cert = await external(s)
    await start_for(v, cert)
    await end_for(v, cert)
    return cert


async def _external_retired_started(s: Scene, v: Person) -> int:
    cert = await external(s)
    await start_for(v, cert)
    return await retire(cert)


async def _external_retired_ended(s: Scene, v: Person) -> int:
    return await retire(await _external_ended(s, v))


async def _external_mandatory_first(s: Scene, v: Person) -> int:
    return await external(s, requireMandatoryCourses=True)


async def _external_mandatory_done(s: Scene, v: Person) -> int:
    cert = await external(s, requireMandatoryCourses=True)
    await start_for(v, cert)
    [link] = (await certifications.course_links([cert])).get(cert, [])
    await enrollments.record_course_progress(v.actor, course_id=link.course_id, completed=True)
    return cert


async def _external_dated(s: Scene, v: Person) -> int:
    return await external(s, completionDate="learner")


CERT_STATES: dict[str, Setup] = {
    "draft-internal": _draft_internal,
    "draft-internal-no-courses": _draft_empty,
    "draft-external": _draft_external,
    "published": _published,
    "published-started": _published_started,
    "published-ended": _published_ended,
    "retired": _retired,
    "retired-started": _retired_started,
    "retired-ended": _retired_ended,
    "external": _external,
    "external-pending": _external_pending,
    "external-rejected": _external_rejected,
    "external-completed": _external_completed,
    "external-completed-ended": _external_completed_ended,
    "external-ended": _external_ended,
    "external-retired-started": _external_retired_started,
    "external-retired-ended": _external_retired_ended,
    "external-mandatory-first": _external_mandatory_first,
    "external-mandatory-done": _external_mandatory_done,
    "external-dated": _external_dated,
}

START_STATES = [
    "draft-internal",
    "published",
    "published-started",
    "published-ended",
    "retired",
    "retired-started",
    "retired-ended",
]
SUBMIT_STATES = [
    "published",  # INTERNAL: no proof
    "draft-external",
    "external",
    "external-pending",
    "external-rejected",
    "external-completed",
    "external-completed-ended",
    "external-ended",
    "external-retired-started",
    "external-retired-ended",
    "external-mandatory-first",
    "external-mandatory-done",
    "external-dated",
]
ADMIN_STATES = [
    "draft-internal",
    "draft-internal-no-courses",
    "draft-external",
    "published",
    "retired",
]


async def _call(scene: Scene, viewer: Person, query: str, variables: dict[str, Any]) -> Any:
    return await scene.graphql.run(query, variables, token=viewer.token)


async def run_start(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    result = await _call(
        scene,
        viewer,
        "mutation S($id: ID!) { startCertification(certificationId: $id) {"
        " enrollment { id } errors { code message } } }",
        {"id": encode_id("Certification", cert)},
    )
    return [("startCertification", result)]


SUBMIT = """
mutation Submit($cert: ID!, $file: Upload!, $on: Date, $note: String) {
  submitEvidence(certificationId: $cert, file: $file, completedOn: $on, note: $note) {
    evidence { id } errors { code message field }
  }
}"""


async def submit(
    scene: Scene, viewer: Person, cert: int, file: FilePart | None = None, **variables: Any
) -> dict[str, Any]:
    response = await scene.uploads.post(
        SUBMIT,
        {"cert": encode_id("Certification", cert), "on": "2026-01-15", **variables},
        {"variables.file": file or FilePart(pdf())},
        token=viewer.token,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def run_submit(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    return [("submitEvidence", await submit(scene, viewer, cert))]


async def run_edit(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    gid = encode_id("Certification", cert)
    update = await _call(
        scene,
        viewer,
        'mutation U($id: ID!) { updateCertification(id: $id, changes: {overview: "new"}) {'
        " certification { id } errors { code message } } }",
        {"id": gid},
    )
    links = (await certifications.course_links([cert])).get(cert, [])
    same = [
        {"courseId": encode_id("Course", link.course_id), "mandatory": link.mandatory}
        for link in links
    ]
    set_courses = await _call(
        scene,
        viewer,
        "mutation C($id: ID!, $courses: [CertificationCourseInput!]!) {"
        " setCertificationCourses(certificationId: $id, courses: $courses) {"
        " certification { id } errors { code message } } }",
        {"id": gid, "courses": same},
    )
    return [("updateCertification", update), ("setCertificationCourses", set_courses)]


def _by_id(mutation: str) -> Callable[[Scene, Person, int], Awaitable[list[tuple[str, Any]]]]:
    async def run(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
        result = await _call(
            scene,
            viewer,
            f"mutation M($id: ID!) {{ {mutation}(id: $id) {{"
            " certification { id } errors { code message } } }",
            {"id": encode_id("Certification", cert)},
        )
        return [(mutation, result)]

    return run


def _naming_otto(mutation: str) -> Callable[[Scene, Person, int], Awaitable[list[tuple[str, Any]]]]:
    async def run(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
        result = await _call(
            scene,
            viewer,
            f"mutation M($id: ID!, $who: [ID!]!) {{ {mutation}(certificationId: $id,"
            " learnerIds: $who) { enrollments { id } errors { code message field } } }",
            {"id": encode_id("Certification", cert), "who": [scene.world.other.id]},
        )
        return [(mutation, result)]

    return run


async def run_upload_badge(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    response = await scene.uploads.post(
        "mutation B($id: ID!, $file: Upload!) { uploadCertificationBadge(certificationId: $id,"
        " file: $file) { certification { id } errors { code message } } }",
        {"id": encode_id("Certification", cert)},
        {"variables.file": FilePart(png(), "badge.png", "image/png")},
        token=viewer.token,
    )
    assert response.status_code == 200, response.text
    return [("uploadCertificationBadge", response.json())]


async def run_report(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    result = await _call(
        scene,
        viewer,
        "query R($id: ID!) { certificationReport(certificationId: $id) { enrolled } }",
        {"id": encode_id("Certification", cert)},
    )
    return [("certificationReport", result)]


CERT_CALLS = {
    "start": run_start,
    "submitEvidence": run_submit,
    "edit": run_edit,
    "publish": _by_id("publishCertification"),
    "retire": _by_id("retireCertification"),
    "assign": _naming_otto("assignCertification"),
    "unassign": _naming_otto("unassignCertification"),
    "uploadBadge": run_upload_badge,
    "viewReport": run_report,
}

CERT_CASES = {
    "start": START_STATES,
    "submitEvidence": SUBMIT_STATES,
    "edit": ADMIN_STATES,
    "publish": ADMIN_STATES,
    "retire": ADMIN_STATES,
    "assign": ADMIN_STATES,
    "unassign": ["published", "retired"],  # Otto is enrolled: unassigning him is valid input
    "uploadBadge": ADMIN_STATES,
    "viewReport": ADMIN_STATES,
}


@pytest.mark.parametrize("flag", list(CERT_CASES))
async def test_certification_flags_agree_with_refusals(scene: Scene, flag: str) -> None:
    """Each state is a certification of its own, made afresh for each role."""
    table = Table({}, [])
    for state in CERT_CASES[flag]:
        for role in ROLES:
            viewer = scene.person(role)
            cert = await CERT_STATES[state](scene, viewer)
            flags = await cert_flags(scene, viewer, cert)
            value = None if flags is None else flags[flag]
            table.check(state, role, value, await CERT_CALLS[flag](scene, viewer, cert))
    table.assert_agreed()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("published", {"start": True, "submitEvidence": False}),
        ("external", {"start": True, "submitEvidence": True}),
        ("external-pending", {"start": True, "submitEvidence": False}),
        ("external-completed-ended", {"start": True, "submitEvidence": False}),
        ("retired-ended", {"start": False, "submitEvidence": False}),
    ],
)
async def test_a_learners_own_flags_say_what_domain_md_says(
    scene: Scene, state: str, expected: dict[str, bool]
) -> None:
    """The agreement above could hold with every flag false: these are the values."""
    learner = scene.world.learner
    flags = await cert_flags(scene, learner, await CERT_STATES[state](scene, learner))
    assert flags is not None
    assert {key: flags[key] for key in expected} == expected
    others = ("edit", "publish", "retire", "assign", "unassign", "uploadBadge", "viewReport")
    assert not any(flags[key] for key in others)


async def test_an_admins_flags_follow_the_state(scene: Scene) -> None:
    admin = scene.world.admin
    draft = await cert_flags(scene, admin, await internal(scene, publish=False))
    published = await cert_flags(scene, admin, await internal(scene))
    retired = await cert_flags(scene, admin, await retire(await internal(scene)))
    keys = ("publish", "retire", "assign", "edit", "start")
    assert draft is not None and published is not None and retired is not None
    assert [draft[k] for k in keys] == [True, False, False, True, False]
    assert [published[k] for k in keys] == [False, True, True, True, True]
    assert [retired[k] for k in keys] == [False, False, False, True, False]
    manager = await cert_flags(scene, scene.world.manager, await internal(scene))
    assert manager is not None and manager["viewReport"] and not manager["edit"]


# -- enrollments --------------------------------------------------------------------------

ENROLLMENT_FLAGS = """
query Flags($id: ID!) {
  node(id: $id) { ... on Enrollment { viewerCan { start recordProgress submitEvidence unassign } } }
}"""


async def enrollment_flags(
    scene: Scene, viewer: Person, enrollment_id: int
) -> dict[str, bool] | None:
    data = await scene.graphql.data(
        ENROLLMENT_FLAGS, {"id": encode_id("Enrollment", enrollment_id)}, token=viewer.token
    )
    found = data["node"]
    return None if found is None else dict(found["viewerCan"])


async def run_record(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    result = await _call(
        scene,
        viewer,
        "mutation R($course: ID!, $learner: ID!) { recordCourseProgress(input:"
        " {courseId: $course, learnerId: $learner, percent: 10}) {"
        " progress { percent } errors { code message } } }",
        {"course": scene.world.course_gid(0), "learner": scene.world.learner.id},
    )
    return [("recordCourseProgress", result)]


async def run_unassign_learner(scene: Scene, viewer: Person, cert: int) -> list[tuple[str, Any]]:
    result = await _call(
        scene,
        viewer,
        "mutation M($id: ID!, $who: [ID!]!) { unassignCertification(certificationId: $id,"
        " learnerIds: $who) { enrollments { id } errors { code message field } } }",
        {"id": encode_id("Certification", cert), "who": [scene.world.learner.id]},
    )
    return [("unassignCertification", result)]


ENROLLMENT_CALLS = {
    "start": run_start,
    "submitEvidence": run_submit,
    "recordProgress": run_record,
    "unassign": run_unassign_learner,
}

OWN_STATES = ["published-started", "published-ended", "retired-started", "retired-ended"]
ENROLLMENT_CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    # startCertification and submitEvidence act on the viewer's own enrollment: by anyone
    # else they would not be about this one (their flags are false for them, checked below)
    "start": (OWN_STATES, ("learner",)),
    "submitEvidence": (
        [
            *OWN_STATES,
            "external-pending",
            "external-rejected",
            "external-completed",
            "external-completed-ended",
            "external-ended",
            "external-retired-ended",
            "external-mandatory-done",
        ],
        ("learner",),
    ),
    "recordProgress": (["published-started", "published-ended", "retired-started"], ROLES),
    "unassign": (["published-started", "published-ended"], ROLES),
}


@pytest.mark.parametrize("flag", list(ENROLLMENT_CASES))
async def test_enrollment_flags_agree_with_refusals(scene: Scene, flag: str) -> None:
    """The learner's enrollment, as each role sees it."""
    learner = scene.world.learner
    states, roles = ENROLLMENT_CASES[flag]
    table = Table({}, [])
    for state in states:
        for role in roles:
            viewer = scene.person(role)
            cert = await CERT_STATES[state](scene, learner)
            enrollment = await enrollment_of(learner, cert)
            flags = await enrollment_flags(scene, viewer, enrollment.id)
            value = None if flags is None else flags[flag]
            table.check(state, role, value, await ENROLLMENT_CALLS[flag](scene, viewer, cert))
    table.assert_agreed()


@pytest.mark.parametrize("role", ["manager", "admin"])
async def test_nobody_starts_or_submits_for_someone_else(scene: Scene, role: str) -> None:
    learner = scene.world.learner
    cert = await _external(scene, learner)
    await start_for(learner, cert)
    flags = await enrollment_flags(
        scene, scene.person(role), (await enrollment_of(learner, cert)).id
    )
    assert flags is not None
    assert not flags["start"] and not flags["submitEvidence"]
    own = await enrollment_flags(scene, learner, (await enrollment_of(learner, cert)).id)
    assert own == {
        "start": True,
        "recordProgress": False,
        "submitEvidence": True,
        "unassign": False,
    }


# -- evidence -----------------------------------------------------------------------------

EVIDENCE_FLAGS = """
query Flags($id: ID!) {
  node(id: $id) { ... on Evidence { downloadUrl viewerCan { review download } } }
}"""


async def evidence_of(scene: Scene, owner: Person, status: EvidenceStatus) -> int:
    cert = await external(scene)
    await start_for(owner, cert)
    row = await add_evidence((await enrollment_of(owner, cert)).id, status)
    return int(row.id)


EVIDENCE_CASES = [
    *[
        ("learner", status, role)
        for status in (EvidenceStatus.PENDING, EvidenceStatus.APPROVED, EvidenceStatus.REJECTED)
        for role in ROLES
    ],
    ("admin", EvidenceStatus.PENDING, "admin"),  # nobody reviews their own, admins included
    ("manager", EvidenceStatus.PENDING, "manager"),
]


async def test_evidence_flags_agree_with_refusals(scene: Scene) -> None:
    """Each case is evidence of its own, of a certification of its own."""
    table = Table({}, [])
    for owner, status, role in EVIDENCE_CASES:
        viewer = scene.person(role)
        gid = encode_id("Evidence", await evidence_of(scene, scene.person(owner), status))
        data = await scene.graphql.data(EVIDENCE_FLAGS, {"id": gid}, token=viewer.token)
        found = data["node"]
        if found is not None:  # whoever sees it downloads it (the bytes: the test below)
            assert found["viewerCan"]["download"] is True
        review = await _call(
            scene,
            viewer,
            "mutation V($id: ID!) { reviewEvidence(evidenceId: $id, decision: APPROVE) {"
            " evidence { id } errors { code message } } }",
            {"id": gid},
        )
        flag = None if found is None else found["viewerCan"]["review"]
        table.check(f"{owner}'s {status}", role, flag, [("reviewEvidence", review)])
    table.assert_agreed()


async def test_a_submitted_file_downloads_for_whoever_may(scene: Scene) -> None:
    learner = scene.world.learner
    cert = await external(scene)
    result = await submit(scene, learner, cert)
    gid = result["data"]["submitEvidence"]["evidence"]["id"]
    for role in ROLES:
        data = await scene.graphql.data(EVIDENCE_FLAGS, {"id": gid}, token=scene.person(role).token)
        found = data["node"]
        if role == "other_manager":
            assert found is None
            continue
        assert found["viewerCan"]["download"] is True
        response = await scene.http.get(found["downloadUrl"])
        assert response.status_code == 200 and response.content == pdf()
        assert found["viewerCan"]["review"] is (role in ("manager", "admin"))


# -- evidence requirements ----------------------------------------------------------------

REQUIREMENTS = """
query R($id: ID!) {
  certification(id: $id) {
    evidenceRequirements { completionDateRequired maxBytes acceptedContentTypes maxNoteLength }
  }
}"""


async def requirements(scene: Scene, cert: int) -> dict[str, Any] | None:
    data = await scene.graphql.data(
        REQUIREMENTS, {"id": encode_id("Certification", cert)}, token=scene.world.learner.token
    )
    found: dict[str, Any] | None = data["certification"]["evidenceRequirements"]
    return found


async def test_a_certification_earned_by_courses_takes_no_evidence(scene: Scene) -> None:
    assert await requirements(scene, await internal(scene)) is None


@pytest.mark.parametrize("dated", [False, True])
async def test_the_completion_date_is_required_exactly_when_it_says(
    scene: Scene, dated: bool
) -> None:
    cert = await (external(scene, completionDate="learner") if dated else external(scene))
    found = await requirements(scene, cert)
    assert found is not None and found["completionDateRequired"] is dated
    without = await submit(scene, scene.world.learner, cert, on=None)
    codes = refusal_codes(without, "submitEvidence")
    assert codes == (["INVALID_INPUT"] if dated else None), without


async def test_max_bytes_and_types_are_what_intake_takes(scene: Scene) -> None:
    found = await requirements(scene, await external(scene))
    assert found is not None
    assert found["maxBytes"] == MAX_UPLOAD
    assert found["acceptedContentTypes"] == ["application/pdf", "image/png", "image/jpeg"]
    samples = {"application/pdf": pdf(), "image/png": png(), "image/jpeg": jpeg()}
    learner = scene.world.learner
    for content_type in found["acceptedContentTypes"]:
        cert = await external(scene)
        file = FilePart(samples[content_type], "proof", content_type)
        assert refusal_codes(await submit(scene, learner, cert, file), "submitEvidence") is None

    at_limit = pdf() + b"\n" * (found["maxBytes"] - len(pdf()))
    cert = await external(scene)
    assert (
        refusal_codes(await submit(scene, learner, cert, FilePart(at_limit)), "submitEvidence")
        is None
    )
    over = await submit(scene, learner, await external(scene), FilePart(at_limit + b"\n"))
    assert refusal_codes(over, "submitEvidence") == ["FILE_TOO_LARGE"]
    html = await submit(
        scene, learner, await external(scene), FilePart(HTML, "a.html", "text/html")
    )
    assert refusal_codes(html, "submitEvidence") == ["UNSUPPORTED_FILE_TYPE"]


async def test_the_note_may_be_as_long_as_it_says(scene: Scene) -> None:
    found = await requirements(scene, await external(scene))
    assert found is not None
    limit = found["maxNoteLength"]
    learner = scene.world.learner
    longest = await submit(scene, learner, await external(scene), note="n" * limit)
    assert refusal_codes(longest, "submitEvidence") is None
    longer = await submit(scene, learner, await external(scene), note="n" * (limit + 1))
    assert refusal_codes(longer, "submitEvidence") == ["INVALID_INPUT"]


# -- no N+1: the flags under lists --------------------------------------------------------

CATALOG = """
query Catalog($first: Int!) {
  certifications(first: $first, sort: PUBLISHED_NEWEST) {
    edges { node { name
      viewerCan { start submitEvidence edit publish retire assign unassign uploadBadge viewReport }
      evidenceRequirements { completionDateRequired maxBytes acceptedContentTypes }
    } }
  }
}"""

CATALOG_START = """
query Catalog($first: Int!) {
  certifications(first: $first, sort: PUBLISHED_NEWEST) {
    edges { node { name viewerCan { start } } }
  }
}"""

CATALOG_PLAIN = """
query Catalog($first: Int!) {
  certifications(first: $first, sort: PUBLISHED_NEWEST) { edges { node { name } } }
}"""

ENROLLMENTS = """
query All($first: Int!) {
  enrollments(first: $first) {
    edges { node { status viewerCan { start recordProgress submitEvidence unassign }
      evidence { viewerCan { review download } } } }
  }
}"""

MINE = """
query Mine($first: Int!) {
  viewer { certifications(first: $first) {
    edges { node { viewerCan { start recordProgress submitEvidence unassign }
      certification { viewerCan { start submitEvidence } } } }
  } }
}"""

QUEUE = """
query Queue($first: Int!) {
  evidenceReviewQueue(first: $first) { edges { node { status viewerCan { review download } } } }
}"""


async def crowd(scene: Scene, count: int) -> None:
    """A catalog of `count` certifications in a cycle of four (INTERNAL and EXTERNAL, each
    once with the viewers started in it and once not), so that a page of 4 holds one of each
    kind as a page of 20 does; and `count` learners reporting to the manager, each started
    on the first two with proof waiting for review."""
    world = scene.world
    viewers = (world.learner, world.admin, world.manager)
    made = []
    for i in range(count):
        if i % 2:
            cert = await make_certification(
                f"Proof {i:02}", [], kind=CertificationKind.EXTERNAL, issuer="Board"
            )
        else:
            cert = await make_certification(f"Courses {i:02}", world.course_ids[:2])
        if i % 4 < 2:
            for viewer in viewers:
                await start_for(viewer, cert)
        made.append(cert)
    for i in range(count):
        person = await make_person(f"Learner {i:02}", Role.LEARNER, manager=world.manager.user)
        await start_for(person, made[0])
        await start_for(person, made[1])
        await pending_proof(await enrollment_of(person, made[1]))


async def pending_proof(enrollment: Enrollment) -> None:
    """A row of proof waiting for review, written directly: the reads derive the enrollment's
    status from it, and add_evidence's re-evaluation of every enrollment would cost this
    test its minutes."""
    await Evidence.create(
        enrollment_id=enrollment.id,
        sha256="ab" * 32,
        filename="proof.pdf",
        content_type="application/pdf",
        size_bytes=1234,
        status=EvidenceStatus.PENDING,
        submitted_at=clock.now(),
    )


async def statements(
    scene: Scene, counter: QueryCounter, viewer: Person, query: str, first: int
) -> tuple[int, int]:
    """(rows listed, SQL statements made) for one request, after a warm-up one."""
    await scene.graphql.data("{ viewer { id } }", token=viewer.token)  # token bookkeeping
    counter.reset()
    data = await scene.graphql.data(query, {"first": first}, token=viewer.token)
    root = data["viewer"]["certifications"] if "viewer" in data else next(iter(data.values()))
    return len(root["edges"]), counter.count


LISTS = [
    ("catalog", CATALOG, "learner"),
    ("catalog", CATALOG, "admin"),
    ("enrollments", ENROLLMENTS, "admin"),
    ("enrollments", ENROLLMENTS, "manager"),
    ("viewer.certifications", MINE, "learner"),
    ("evidenceReviewQueue", QUEUE, "manager"),
    ("evidenceReviewQueue", QUEUE, "admin"),
]


async def test_flags_under_lists_cost_the_same_for_4_rows_as_for_20(
    scene: Scene, sql_queries: QueryCounter
) -> None:
    """Each list with every flag under it: the statements of a page of 4 and of 20 (the
    reads only, so one crowd serves them all)."""
    await crowd(scene, 20)
    grew = []
    for name, query, role in LISTS:
        viewer = scene.person(role)
        small_rows, small = await statements(scene, sql_queries, viewer, query, 4)
        small_statements = list(sql_queries.statements)
        large_rows, large = await statements(scene, sql_queries, viewer, query, 20)
        assert small_rows == 4 and large_rows >= 10, (name, role, small_rows, large_rows)
        if small != large:
            grew.append((name, role, small, large, small_statements, sql_queries.statements))
    assert grew == []

    # viewerCan { start } on the whole catalog: one batched read, and nothing unless asked
    learner = scene.world.learner
    _, plain = await statements(scene, sql_queries, learner, CATALOG_PLAIN, 20)
    _, flagged = await statements(scene, sql_queries, learner, CATALOG_START, 20)
    assert flagged == plain + 1, sql_queries.statements
