"""The plugin host: discovery through real distributions, isolation of broken plugins, pluggy's
call order, the event and upload-check hooks (sync and async), `certgraph plugins`, the docs."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from gql import (
    CertificationRef,
    CompletionPolicy,
    CourseFacts,
    Event,
    Person,
    PolicyFacts,
    Started,
    UploadInfo,
    UploadRefusal,
    Verdict,
    VerdictStatus,
    hookimpl,
)
from gql.cli import main
from gql.domain.errors import ErrorCode, NotAllowed
from gql.domain.evidence import submit_evidence
from gql.hookspecs import CertgraphSpec
from gql.plugins import (
    LoadedPlugin,
    PluginHost,
    PolicyConfigError,
    PolicyUnavailable,
    create_plugin_host,
    set_plugin_host,
)
from gql.store.models import CertificationKind, Enrollment, Evidence
from plugins.all_required import AllRequiredConfig
from tests.domain.factories import Factory
from tests.files.conftest import blob_store
from tests.files.samples import BytesStream, pdf

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUORUM = REPO / "examples" / "certgraph-quorum"
BROKEN = FIXTURES / "broken-import"
RAISING = FIXTURES / "raising-policy"
DUPLICATE = FIXTURES / "duplicate-name"
SCANNER = FIXTURES / "upload-scanner"
WRAPPER = FIXTURES / "wrapper-check"
BUILTINS = {
    "mandatory-subset": "plugins.mandatory_subset",
    "all-required": "plugins.all_required",
    "external-evidence": "plugins.external_evidence",
}
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def install_distribution(project: Path, site: Path) -> None:
    """Lay a project out in `site` the way pip does: its modules plus a .dist-info directory
    with METADATA and entry_points.txt, so importlib.metadata discovers it like any install."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    for item in (project / "src").iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            shutil.copytree(item, site / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, site / item.name)
    dist_info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    lines: list[str] = []
    for group, entries in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path to install fixture distributions into; their modules are
    forgotten afterwards so no other test sees them."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith("certgraph_"):
            del sys.modules[name]


def host_with(site: Path, *projects: Path) -> PluginHost:
    for project in projects:
        install_distribution(project, site)
    return create_plugin_host()


def facts(*courses: CourseFacts) -> PolicyFacts:
    return PolicyFacts(
        certification_id=7,
        kind="INTERNAL",
        now=NOW,
        cycle=1,
        cycle_started_at=None,
        courses=courses,
    )


def course(course_id: int, completed: bool) -> CourseFacts:
    return CourseFacts(
        course_id=course_id,
        position=course_id,
        mandatory=True,
        percent=100 if completed else 0,
        completed=completed,
        completed_at=NOW if completed else None,
        last_activity_at=NOW if completed else None,
    )


# -- discovery ------------------------------------------------------------------------------


def test_only_the_builtins_without_installed_plugins() -> None:
    host = create_plugin_host()
    assert {name: p.plugin for name, p in host.policies.items()} == BUILTINS
    assert host.failures == []


def test_an_installed_distribution_is_discovered_by_its_entry_point(site: Path) -> None:
    host = host_with(site, QUORUM)
    assert host.failures == []
    quorum = host.policy("quorum")
    assert quorum is not None
    assert quorum.plugin == "certgraph-quorum:quorum"
    assert quorum.description == "Complete any N of the courses."
    assert quorum.config_schema()["properties"]["minCourses"]["minimum"] == 1
    for name, module in BUILTINS.items():
        assert host.policies[name].plugin == module

    verdict = host.evaluate("quorum", facts(course(1, True), course(2, False)), {"minCourses": 1})
    assert verdict.status is VerdictStatus.COMPLETE
    assert verdict.completed_at == NOW


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_still_load(site: Path) -> None:
    host = host_with(site, BROKEN, QUORUM)
    assert [f.plugin for f in host.failures] == ["certgraph-broken-import:broken"]
    reason = host.failures[0].reason
    assert reason.startswith("failed to import: ModuleNotFoundError")
    assert "certgraph_dependency_that_is_not_installed" in reason
    assert set(host.policies) == {*BUILTINS, "quorum"}


def test_a_policy_claiming_a_taken_name_is_refused_and_reported(site: Path) -> None:
    host = host_with(site, DUPLICATE)
    assert len(host.failures) == 1
    failure = host.failures[0]
    assert failure.plugin == "certgraph-duplicate-name:impostor"
    assert failure.reason == (
        "policy name 'all-required' is already provided by plugins.all_required"
    )
    # the built-in keeps its name and its behaviour; the plugin's other policy still loads
    assert host.policies["all-required"].plugin == "plugins.all_required"
    verdict = host.evaluate("all-required", facts(course(1, False)), {})
    assert verdict.status is VerdictStatus.NOT_STARTED
    assert host.policies["lenient"].plugin == "certgraph-duplicate-name:impostor"


def test_a_hook_that_raises_or_offers_malformed_policies_is_reported() -> None:
    class RaisingHook:
        @hookimpl
        def certgraph_completion_policies(self) -> list[object]:
            raise ValueError("no policies today")

    class NoConfigModel:
        name = "no-config-model"
        description = "missing its config model"

        def evaluate(self, facts: PolicyFacts, config: Any) -> Verdict:
            raise AssertionError("never called")

    class MalformedPolicies:
        @hookimpl
        def certgraph_completion_policies(self) -> list[object]:
            return [NoConfigModel(), object()]

    host = PluginHost()
    host.load_builtins()
    host.register(RaisingHook(), "raising-hook")
    host.register(MalformedPolicies(), "malformed")
    host.collect_policies()
    reasons = {(f.plugin, f.reason) for f in host.failures}
    assert reasons == {
        ("raising-hook", "certgraph_completion_policies raised ValueError: no policies today"),
        ("malformed", "policy 'no-config-model': `config_model` is not a pydantic model"),
        ("malformed", "policy has no string `name`"),
    }
    assert set(host.policies) == set(BUILTINS)


# -- evaluation through the host -------------------------------------------------------------


def test_a_policy_that_raises_becomes_policy_unavailable(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_with(site, RAISING)
    with (
        caplog.at_level(logging.ERROR, logger="certgraph.plugins"),
        pytest.raises(PolicyUnavailable) as raised,
    ):
        host.evaluate("always-raises", facts(course(1, True)), {})
    assert str(raised.value) == (
        "policy 'always-raises' failed: RuntimeError: cannot decide certification 7"
    )
    # the traceback goes to the log for the operator; the one line goes to the learner
    [record] = [r for r in caplog.records if r.name == "certgraph.plugins"]
    assert record.exc_info is not None


def test_a_policy_that_returns_something_else_becomes_policy_unavailable(site: Path) -> None:
    host = host_with(site, RAISING)
    with pytest.raises(PolicyUnavailable, match="returned dict, not a Verdict"):
        host.evaluate("returns-nonsense", facts(), {})


def test_an_unknown_policy_or_an_invalid_stored_config_is_unavailable(site: Path) -> None:
    host = host_with(site, QUORUM)
    with pytest.raises(PolicyUnavailable, match="policy 'gone' is not installed"):
        host.evaluate("gone", facts(), {})
    with pytest.raises(PolicyUnavailable, match="stored config no longer validates"):
        host.evaluate("quorum", facts(), {"minCourses": 0})


def test_configs_are_validated_by_the_policys_model(site: Path) -> None:
    host = host_with(site, QUORUM)
    assert host.validate_config("quorum", {"min_courses": 2}) == {"minCourses": 2}
    with pytest.raises(PolicyConfigError) as refused:
        host.validate_config("quorum", {"minCourses": 0})
    assert str(refused.value) == "minCourses: Input should be greater than or equal to 1"
    with pytest.raises(KeyError):
        host.validate_config("no-such-policy", {})


# -- the event and upload-check hooks ---------------------------------------------------------


class SyncEvents:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def certgraph_event(self, event: Event) -> None:
        self.seen.append(event.type)


class AsyncEvents:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    async def certgraph_event(self, event: Event) -> None:
        self.seen.append(event.type)


class RaisingEvents:
    @hookimpl
    def certgraph_event(self, event: Event) -> None:
        raise ConnectionError("webhook endpoint unreachable")


def event(name: str) -> Event:
    person = Person(id="VXNlcjox", name="Ada", email="ada@example.com")
    return Event(
        id=uuid4(),
        type=name,
        occurred_at=NOW,
        actor_id="VXNlcjox",
        data=Started(
            learner=person,
            enrollment_id="RW5yb2xsbWVudDoz",
            certification=CertificationRef(id="Q2VydGlmaWNhdGlvbjox", name="Fire safety"),
            due_at=None,
        ),
    )


async def deliver_to_all(host: PluginHost, sent: Event) -> dict[str, str | None]:
    """Each event plugin's outcome, as the dispatcher would see it: None or what it raised."""
    outcomes: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=1) as threads:
        for target in host.event_targets():
            try:
                await host.deliver(target, sent, threads=threads, timeout=5)
                outcomes[target] = None
            except Exception as exc:
                outcomes[target] = f"{type(exc).__name__}: {exc}"
    return outcomes


async def test_every_event_reaches_sync_and_async_plugins_past_one_that_raises() -> None:
    host = create_plugin_host(load_entry_points=False)
    sync, async_ = SyncEvents(), AsyncEvents()
    host.register(sync, "sync-events")
    host.register(RaisingEvents(), "raising-events")
    host.register(async_, "async-events")
    for name in ("enrolled", "certification_completed"):
        assert await deliver_to_all(host, event(name)) == {
            "plugin:async-events": None,
            "plugin:raising-events": "ConnectionError: webhook endpoint unreachable",
            "plugin:sync-events": None,
        }
    assert sync.seen == ["enrolled", "certification_completed"]
    assert async_.seen == ["enrolled", "certification_completed"]
    with ThreadPoolExecutor(max_workers=1) as threads, pytest.raises(LookupError):
        await host.deliver("plugin:not-installed", event("enrolled"), threads=threads, timeout=5)


def upload(filename: str = "proof.pdf") -> UploadInfo:
    return UploadInfo(
        purpose="evidence",
        filename=filename,
        content_type="application/pdf",
        size_bytes=1234,
        sha256="ab" * 32,
        path="/nonexistent/tmp-upload",
        uploader_id=5,
    )


class AcceptsEverything:
    def __init__(self) -> None:
        self.checked: list[str] = []

    @hookimpl
    def certgraph_check_upload(self, upload: UploadInfo) -> None:
        self.checked.append(upload.filename)


class AsyncScanner:
    """Refuses files named like the EICAR test file, after 'scanning' asynchronously."""

    @hookimpl
    async def certgraph_check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        if "eicar" in upload.filename:
            return UploadRefusal(reason="the virus scanner found EICAR-Test-File")
        return None


class BrokenScanner:
    @hookimpl
    async def certgraph_check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        raise TimeoutError("scanner did not answer")


async def test_uploads_pass_when_every_check_accepts() -> None:
    host = create_plugin_host(load_entry_points=False)
    accepts = AcceptsEverything()
    host.register(accepts, "accepts")
    host.register(AsyncScanner(), "scanner")
    assert await host.check_upload(upload("proof.pdf")) is None
    assert accepts.checked == ["proof.pdf"]


async def test_an_async_check_can_refuse_an_upload() -> None:
    host = create_plugin_host(load_entry_points=False)
    host.register(AcceptsEverything(), "accepts")
    host.register(AsyncScanner(), "scanner")
    refusal = await host.check_upload(upload("eicar.pdf"))
    assert refusal == UploadRefusal(reason="the virus scanner found EICAR-Test-File")


async def test_a_check_that_raises_refuses_the_upload(caplog: pytest.LogCaptureFixture) -> None:
    host = create_plugin_host(load_entry_points=False)
    host.register(AcceptsEverything(), "accepts")
    host.register(BrokenScanner(), "broken-scanner")
    with caplog.at_level(logging.ERROR, logger="certgraph.plugins"):
        refusal = await host.check_upload(upload("proof.pdf"))
    assert refusal == UploadRefusal(reason="the upload check of broken-scanner failed")
    assert "TimeoutError: scanner did not answer" in caplog.text


# -- `certgraph plugins` with a package installed by pip --------------------------------------


@pytest.mark.slow
@pytest.mark.database_independent  # pip and `certgraph plugins`: no database
def test_certgraph_plugins_lists_a_pip_installed_policy(tmp_path: Path) -> None:
    target = tmp_path / "target"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(QUORUM),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "certgraph_quorum" / "__init__.py").is_file()
    certgraph = Path(sys.executable).with_name("certgraph")
    path = [str(target), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    result = subprocess.run(
        [str(certgraph), "plugins"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed = {
        line.split()[0]: line.split("from ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("  ") and " from " in line
    }
    assert listed == {**BUILTINS, "quorum": "certgraph-quorum:quorum"}
    assert re.search(
        r"^  certgraph-quorum:quorum +certgraph_completion_policies$", result.stdout, re.M
    )
    assert "every plugin loaded" in result.stdout
    assert result.stderr == ""


# -- pluggy's call order ------------------------------------------------------------------------


class Recorder:
    """An event plugin that notes its own name in a shared list, with pluggy's order options."""

    def __init__(self, name: str, calls: list[str], **order: bool) -> None:
        self.name = name
        self.calls = calls

        @hookimpl(**order)
        def certgraph_event(event: Event) -> None:
            calls.append(name)

        self.certgraph_event = certgraph_event


async def test_hooks_are_called_in_pluggys_order() -> None:
    calls: list[str] = []
    host = PluginHost()
    for name, order in [
        ("first-registered", {}),
        ("wants-first", {"tryfirst": True}),
        ("wants-last", {"trylast": True}),
        ("last-registered", {}),
    ]:
        assert host.register(Recorder(name, calls, **order), name)

    # Each plugin is its own destination (one failing never holds back another); the
    # dispatcher fans out, and so first tries, them in pluggy's order: last registered
    # first, tryfirst before everyone, trylast after.
    assert host.event_targets() == [
        "plugin:wants-first",
        "plugin:last-registered",
        "plugin:first-registered",
        "plugin:wants-last",
    ]
    await deliver_to_all(host, event("enrolled"))
    assert calls == ["wants-first", "last-registered", "first-registered", "wants-last"]

    # and exactly the order pluggy itself calls them in
    calls.clear()
    host.pm.hook.certgraph_event(event=event("enrolled"))
    assert calls == ["wants-first", "last-registered", "first-registered", "wants-last"]


class Refuses:
    def __init__(self, reason: str, asked: list[str], **order: bool) -> None:
        @hookimpl(**order)
        def certgraph_check_upload(upload: UploadInfo) -> UploadRefusal:
            asked.append(reason)
            return UploadRefusal(reason=reason)

        self.certgraph_check_upload = certgraph_check_upload


async def test_a_tryfirst_upload_check_decides_before_the_others() -> None:
    asked: list[str] = []
    host = create_plugin_host(load_entry_points=False)
    host.register(Refuses("tryfirst scanner", asked, tryfirst=True), "tryfirst")
    host.register(Refuses("plain scanner", asked), "plain")
    host.register(Refuses("trylast scanner", asked, trylast=True), "trylast")
    assert await host.check_upload(upload()) == UploadRefusal(reason="tryfirst scanner")
    assert asked == ["tryfirst scanner"]  # the first refusal ends the round


def test_a_policy_name_goes_to_the_plugin_registered_first_whatever_its_order() -> None:
    class Impostor:
        name = "all-required"
        description = "claims a built-in name"
        config_model = AllRequiredConfig

        def evaluate(self, facts: PolicyFacts, config: Any) -> Verdict:
            raise AssertionError("never called")

    class Eager:
        @hookimpl(tryfirst=True)
        def certgraph_completion_policies(self) -> list[object]:
            return [Impostor()]

    host = create_plugin_host(load_entry_points=False, extra=[("eager", Eager())])
    assert host.policies["all-required"].plugin == "plugins.all_required"
    assert [(f.plugin, f.reason) for f in host.failures] == [
        ("eager", "policy name 'all-required' is already provided by plugins.all_required")
    ]


# -- what pluggy accepts but this host cannot honour --------------------------------------------


class WrapperCheck:
    """The issue's case: a new-style wrapper whose upload check refuses."""

    def __init__(self) -> None:
        self.ran = False

    @hookimpl(wrapper=True)
    def certgraph_check_upload(self, upload: UploadInfo) -> Generator[None, Any, UploadRefusal]:
        self.ran = True
        yield
        return UploadRefusal(reason="refused by the wrapper")


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def certgraph_event(self, event: Event) -> Generator[None, Any, None]:
        yield


async def test_hook_wrappers_are_refused_at_load_never_called_as_plain_functions() -> None:
    host = create_plugin_host(load_entry_points=False)
    wrapper = WrapperCheck()
    assert not host.register(wrapper, "wrapper-check")
    assert not host.register(OldStyleWrapper(), "old-style")
    assert [(f.plugin, f.reason) for f in host.failures] == [
        (
            "wrapper-check",
            "certgraph_check_upload: hook wrappers (wrapper=True, hookwrapper=True) are not "
            "supported; certgraph calls each plugin's implementation on its own",
        ),
        (
            "old-style",
            "certgraph_event: hook wrappers (wrapper=True, hookwrapper=True) are not "
            "supported; certgraph calls each plugin's implementation on its own",
        ),
    ]
    assert host.pm.get_plugin("wrapper-check") is None
    assert [p.name for p in host.loaded_plugins()] == list(BUILTINS.values())
    assert await host.check_upload(upload()) is None
    assert host.event_targets() == []
    await deliver_to_all(host, event("enrolled"))
    assert not wrapper.ran


def test_an_installed_wrapper_plugin_is_reported_as_failed(site: Path) -> None:
    host = host_with(site, WRAPPER)
    assert [f.plugin for f in host.failures] == ["certgraph-wrapper-check:wrapper"]
    assert "hook wrappers" in host.failures[0].reason


def test_an_implementation_of_no_known_hook_is_refused() -> None:
    class Misspelt:
        @hookimpl
        def certgraph_events(self, event: Event) -> None: ...

    host = PluginHost()
    assert not host.register(Misspelt(), "misspelt")
    assert [(f.plugin, f.reason) for f in host.failures] == [
        ("misspelt", "certgraph_events: no such hook (see gql/hookspecs.py)")
    ]


def test_a_hook_implemented_twice_by_one_plugin_is_refused() -> None:
    class Twice:
        @hookimpl(specname="certgraph_event")
        def notify(self, event: Event) -> None: ...

        @hookimpl(specname="certgraph_event")
        def notify_again(self, event: Event) -> None: ...

    host = PluginHost()
    assert not host.register(Twice(), "twice")
    assert [(f.plugin, f.reason) for f in host.failures] == [
        ("twice", "certgraph_event: implemented 2 times, once at most")
    ]


def test_an_async_or_non_list_policies_hook_is_a_load_failure() -> None:
    class AsyncPolicies:
        @hookimpl
        async def certgraph_completion_policies(self) -> list[object]:
            return []

    class StringPolicies:
        @hookimpl
        def certgraph_completion_policies(self) -> str:
            return "quorum"

    host = create_plugin_host(
        load_entry_points=False, extra=[("async", AsyncPolicies()), ("string", StringPolicies())]
    )
    assert sorted((f.plugin, f.reason) for f in host.failures) == [
        ("async", "certgraph_completion_policies must not be async"),
        ("string", "certgraph_completion_policies returned str, not a list"),
    ]
    assert set(host.policies) == set(BUILTINS)


# -- one host per app ---------------------------------------------------------------------------


def test_each_host_keeps_its_own_plugins() -> None:
    calls: list[str] = []
    with_recorder = create_plugin_host(
        load_entry_points=False, extra=[("recorder", Recorder("recorder", calls))]
    )
    plain = create_plugin_host(load_entry_points=False)
    assert [p.name for p in with_recorder.loaded_plugins()][-1] == "recorder"
    assert "recorder" not in [p.name for p in plain.loaded_plugins()]
    assert with_recorder.loaded_plugins()[-1] == LoadedPlugin("recorder", ("certgraph_event",))


# -- check_submission, isolated like evaluate ---------------------------------------------------


def test_check_submission_is_part_of_the_policy_protocol() -> None:
    class Minimal(CompletionPolicy):
        name = "minimal"
        description = "inherits the accepting check_submission"
        config_model = AllRequiredConfig

        def evaluate(self, facts: PolicyFacts, config: Any) -> Verdict:
            return Verdict(status=VerdictStatus.NOT_STARTED, progress=0.0)

    assert "check_submission" in dir(CompletionPolicy)
    assert Minimal().check_submission(facts(), AllRequiredConfig()) is None
    host = create_plugin_host(load_entry_points=False, extra=[("minimal", PolicyPlugin(Minimal()))])
    assert host.check_submission("minimal", facts(), {}) is None


class PolicyPlugin:
    def __init__(self, *policies: object) -> None:
        self.policies = list(policies)

    @hookimpl
    def certgraph_completion_policies(self) -> list[object]:
        return self.policies


def test_a_raising_check_submission_becomes_policy_unavailable_and_is_logged(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_with(site, RAISING)
    with (
        caplog.at_level(logging.ERROR, logger="certgraph.plugins"),
        pytest.raises(PolicyUnavailable) as raised,
    ):
        host.check_submission("raising-check", facts(), {})
    assert str(raised.value) == (
        "policy 'raising-check' failed: LookupError: no rule for certification 7"
    )
    [record] = [r for r in caplog.records if r.name == "certgraph.plugins"]
    assert record.exc_info is not None


def test_a_check_submission_returning_no_reason_is_unavailable() -> None:
    class Answers:
        name = "answers"
        description = "returns whatever it was built with"
        config_model = AllRequiredConfig

        def __init__(self, answer: object) -> None:
            self.answer = answer

        def evaluate(self, facts: PolicyFacts, config: Any) -> Verdict:
            return Verdict(status=VerdictStatus.NOT_STARTED, progress=0.0)

        def check_submission(self, facts: PolicyFacts, config: Any) -> object:
            return self.answer

    for answer, refusal in [(None, None), ("finish the course first", "finish the course first")]:
        host = create_plugin_host(
            load_entry_points=False, extra=[("a", PolicyPlugin(Answers(answer)))]
        )
        assert host.check_submission("answers", facts(), {}) == refusal
    for answer in (True, "  "):
        host = create_plugin_host(
            load_entry_points=False, extra=[("a", PolicyPlugin(Answers(answer)))]
        )
        with pytest.raises(PolicyUnavailable, match="not a reason or None"):
            host.check_submission("answers", facts(), {})
    # not installed: the enrollment waits for its policy, as for evaluation
    assert host.check_submission("gone", facts(), {}) is None


async def test_a_raising_check_submission_refuses_the_proof_with_not_allowed(
    db: None, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    set_plugin_host(host_with(site, RAISING))
    make = Factory()
    cert = await make.certification(kind=CertificationKind.EXTERNAL, policy="raising-check")
    learner = await make.learner()
    with (
        caplog.at_level(logging.ERROR, logger="certgraph.plugins"),
        pytest.raises(NotAllowed) as raised,
    ):
        await submit_evidence(
            learner, cert.id, BytesStream(pdf()), blobs=blob_store(), filename="proof.pdf"
        )
    assert raised.value.code is ErrorCode.NOT_ALLOWED
    assert raised.value.message == (
        "proof cannot be taken now: "
        "policy 'raising-check' failed: LookupError: no rule for certification "
        f"{cert.id}"
    )
    assert "policy raising-check raised in check_submission" in caplog.text
    assert not await Evidence.exists()
    assert not await Enrollment.exists()


# -- `certgraph plugins`, in process ------------------------------------------------------------


@pytest.fixture
def plugins_command(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run `certgraph plugins` in process: (exit code, stdout, stderr)."""
    logger = logging.getLogger("certgraph.plugins")
    level = logger.level

    def run() -> tuple[int, str, str]:
        code = main(["plugins"])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    logger.setLevel(level)


def test_certgraph_plugins_lists_hook_only_plugins(site: Path, plugins_command: Any) -> None:
    install_distribution(SCANNER, site)
    code, out, err = plugins_command()
    assert (code, err) == (0, "")
    section = out.split("plugins:\n", 1)[1].splitlines()
    listed = dict(line.split() for line in section if line.startswith("  "))
    assert listed == {
        **{module: "certgraph_completion_policies" for module in BUILTINS.values()},
        "certgraph-upload-scanner:scanner": "certgraph_check_upload",
    }
    assert out.endswith("every plugin loaded\n")


def test_certgraph_plugins_fails_when_a_plugin_failed_to_load(
    site: Path, plugins_command: Any
) -> None:
    install_distribution(SCANNER, site)
    install_distribution(BROKEN, site)
    install_distribution(WRAPPER, site)
    code, out, err = plugins_command()
    assert code == 1
    assert err == "certgraph plugins: 2 plugin(s) failed to load (listed on stdout)\n"
    failed = out.split("plugins that failed to load:\n", 1)[1]
    assert [line.split(": ", 1)[0] for line in failed.splitlines()] == [
        "  certgraph-broken-import:broken",
        "  certgraph-wrapper-check:wrapper",
    ]
    assert "certgraph-upload-scanner:scanner" in out.split("plugins that failed")[0]
    assert "every plugin loaded" not in out


# -- the docs ------------------------------------------------------------------------------------


def test_every_hook_and_policy_member_is_documented() -> None:
    """docs/plugins.md has a section per hook and a row per member of CompletionPolicy."""
    docs = (REPO / "docs" / "plugins.md").read_text()
    headings = set(re.findall(r"^#+ `(\w+)\(", docs, re.M))
    hooks = {name for name in vars(CertgraphSpec) if name.startswith("certgraph_")}
    assert hooks - headings == set()
    rows = set(re.findall(r"^\| `(\w+)", docs, re.M))
    members = {
        name
        for name in (*CompletionPolicy.__annotations__, *vars(CompletionPolicy))
        if not name.startswith("_")
    }
    assert members - rows == set()
