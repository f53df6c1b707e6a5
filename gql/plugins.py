"""The plugin host: built-in policies plus every entry point of group ``certgraph``, one per app.

A plugin that fails to load is recorded as a `PluginFailure` and left out; each hook is called
one plugin at a time, in pluggy's order, so one failing plugin never silences another.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from gql import hookspecs
from gql.events import Event
from gql.policy import PolicyFacts, UploadInfo, UploadRefusal, Verdict

log = logging.getLogger("certgraph.plugins")

ENTRY_POINT_GROUP = "certgraph"
BUILTIN_MODULES = ("plugins.mandatory_subset", "plugins.all_required", "plugins.external_evidence")


@dataclass(frozen=True, slots=True)
class InstalledPolicy:
    policy: Any  # a gql.CompletionPolicy, checked by _validate_policy
    plugin: str  # the module or distribution that provides it

    @property
    def name(self) -> str:
        return str(self.policy.name)

    @property
    def description(self) -> str:
        return str(self.policy.description)

    @property
    def config_model(self) -> type[BaseModel]:
        model: type[BaseModel] = self.policy.config_model
        return model

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema(by_alias=True)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    plugin: str
    reason: str


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    name: str  # the module, or `<distribution>:<entry point>`
    hooks: tuple[str, ...]  # the hooks it implements, sorted


class PolicyConfigError(ValueError):
    """A policy's config model rejected a config; the message is the model's."""


class PolicyUnavailable(RuntimeError):
    """The policy is not installed, its config no longer validates, or it raised."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _validate_policy(policy: Any) -> str | None:
    name = getattr(policy, "name", None)
    if not isinstance(name, str) or not name:
        return "policy has no string `name`"
    model = getattr(policy, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"policy {name!r}: `config_model` is not a pydantic model"
    if not callable(getattr(policy, "evaluate", None)):
        return f"policy {name!r}: no `evaluate(facts, config)` method"
    check = getattr(policy, "check_submission", None)
    if check is not None and not callable(check):
        return f"policy {name!r}: `check_submission` is not a method"
    if not isinstance(getattr(policy, "description", None), str):
        return f"policy {name!r}: no string `description`"
    return None


class PluginHost:
    """The plugins of one app: build it with `create_plugin_host`, then hand it down."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("certgraph")
        self.pm.add_hookspecs(hookspecs.CertgraphSpec)
        self.policies: dict[str, InstalledPolicy] = {}
        self.failures: list[PluginFailure] = []
        self._registered: list[str] = []  # labels, in registration order
        self._callers: dict[str, list[tuple[str, pluggy.HookCaller]]] = {}
        # Told when a transaction wrote events, so the local dispatcher sends them now
        # rather than at its next poll (set by the dispatcher while it runs).
        self.events_written: Callable[[], None] = lambda: None

    # -- loading -------------------------------------------------------------------------

    def register(self, plugin: object, label: str) -> bool:
        """Register one plugin object (usually a module); record a failure instead of raising."""
        try:
            hash(plugin)  # pluggy's per-plugin callers keep plugins in sets
            self.pm.register(plugin, name=label)
        except Exception as exc:  # a malformed hookimpl, a duplicate registration
            self.failures.append(PluginFailure(label, _describe(exc)))
            return False
        problems = self._unsupported_hooks(plugin)
        if problems:
            self.pm.unregister(plugin)
            self.failures.append(PluginFailure(label, "; ".join(problems)))
            return False
        self._registered.append(label)
        self._callers.clear()  # the per-plugin callers are built from the registered set
        return True

    def _unsupported_hooks(self, plugin: object) -> list[str]:
        """What pluggy accepts but this host cannot honour: wrappers, unknown hook names, a
        hook implemented twice."""
        problems: list[str] = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            impls = [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]
            if len(impls) > 1:  # possible through specname; each plugin is called once per hook
                problems.append(f"{caller.name}: implemented {len(impls)} times, once at most")
            for impl in impls:
                if impl.wrapper or impl.hookwrapper:
                    problems.append(
                        f"{caller.name}: hook wrappers (wrapper=True, hookwrapper=True) are "
                        "not supported; certgraph calls each plugin's implementation on its own"
                    )
                elif not caller.has_spec() and not impl.optionalhook:
                    problems.append(f"{caller.name}: no such hook (see gql/hookspecs.py)")
        return sorted(problems)

    def load_builtins(self) -> None:
        for module_name in BUILTIN_MODULES:
            self._import_and_register(module_name, module_name)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        seen: set[str] = set()
        for ep in sorted(
            entry_points(group=group), key=lambda e: (e.dist.name if e.dist else "", e.name)
        ):
            dist = ep.dist.name if ep.dist is not None else "?"
            label = f"{dist}:{ep.name}" if ep.dist is not None else ep.name
            if ep.value in BUILTIN_MODULES or label in seen:
                continue  # the built-ins are already registered first
            seen.add(label)
            try:
                plugin = ep.load()
            except BaseException as exc:  # an import may raise anything, SystemExit included
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.failures.append(PluginFailure(label, f"failed to import: {_describe(exc)}"))
                continue
            self.register(plugin, label)

    def _import_and_register(self, module_name: str, label: str) -> None:
        try:
            module: ModuleType = importlib.import_module(module_name)
        except Exception as exc:
            self.failures.append(PluginFailure(label, f"failed to import: {_describe(exc)}"))
            return
        self.register(module, label)

    def collect_policies(self) -> None:
        """Ask every plugin for its policies, one plugin at a time so one bad plugin is isolated.

        The hook is called in pluggy's order; a name goes to the plugin registered first
        (the built-ins), whatever its tryfirst or trylast.
        """
        self.policies.clear()
        offered: dict[str, list[Any]] = {}
        for label, caller in self._hook_callers("certgraph_completion_policies"):
            problem, items = _policies_of(caller)
            if problem is not None:
                self.failures.append(PluginFailure(label, problem))
            else:
                offered[label] = items
        for label in self._registered:
            for policy in offered.get(label, ()):
                problem = _validate_policy(policy)
                if problem is not None:
                    self.failures.append(PluginFailure(label, problem))
                    continue
                taken = self.policies.get(policy.name)
                if taken is not None:
                    self.failures.append(
                        PluginFailure(
                            label,
                            f"policy name {policy.name!r} is already provided by {taken.plugin}",
                        )
                    )
                    continue
                self.policies[policy.name] = InstalledPolicy(policy, label)

    def loaded_plugins(self) -> list[LoadedPlugin]:
        """Every registered plugin with the hooks it implements, in registration order."""
        loaded = []
        for label in self._registered:
            plugin = self.pm.get_plugin(label)
            callers = self.pm.get_hookcallers(plugin) or []
            loaded.append(LoadedPlugin(label, tuple(sorted(c.name for c in callers))))
        return loaded

    def _hook_callers(self, hook_name: str) -> list[tuple[str, pluggy.HookCaller]]:
        """One pluggy caller per plugin implementing the hook, in the order pluggy calls them.

        pluggy calls a hook's implementation list from its end: last registered first,
        tryfirst ones before and trylast ones after. Each caller holds one plugin, so a
        raising implementation is contained by its own call.
        """
        callers = self._callers.get(hook_name)
        if callers is None:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            plugins = [impl.plugin for impl in impls]
            callers = [
                (
                    impl.plugin_name,
                    self.pm.subset_hook_caller(
                        hook_name, [p for p in plugins if p is not impl.plugin]
                    ),
                )
                for impl in reversed(impls)
            ]
            self._callers[hook_name] = callers
        return callers

    # -- policies ------------------------------------------------------------------------

    def policy(self, name: str) -> InstalledPolicy | None:
        return self.policies.get(name)

    def validate_config(self, name: str, config: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a config with the policy's model; return it normalised (aliases, defaults).

        Raises KeyError for an unknown policy and PolicyConfigError with the model's message.
        """
        installed = self.policies.get(name)
        if installed is None:
            raise KeyError(name)
        try:
            parsed = installed.config_model.model_validate(config or {})
        except ValidationError as exc:
            message = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                for err in exc.errors()
            )
            raise PolicyConfigError(message) from None
        dumped: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True)
        return dumped

    def _call_policy(
        self, installed: InstalledPolicy, method: str, facts: PolicyFacts, config: dict[str, Any]
    ) -> Any:
        """Call one of a policy's methods; its config or its failure become PolicyUnavailable."""
        try:
            parsed = installed.config_model.model_validate(config)
        except ValidationError as exc:
            raise PolicyUnavailable(
                f"its stored config no longer validates ({exc.error_count()} error(s))"
            ) from None
        try:
            return getattr(installed.policy, method)(facts, parsed)
        except Exception as exc:
            log.exception("policy %s raised in %s", installed.name, method)
            raise PolicyUnavailable(f"policy {installed.name!r} failed: {_describe(exc)}") from None

    def evaluate(self, name: str, facts: PolicyFacts, config: dict[str, Any]) -> Verdict:
        """Run a policy; PolicyUnavailable says in one line why there is no verdict."""
        installed = self.policies.get(name)
        if installed is None:
            raise PolicyUnavailable(f"policy {name!r} is not installed")
        verdict = self._call_policy(installed, "evaluate", facts, config)
        if not isinstance(verdict, Verdict):
            raise PolicyUnavailable(
                f"policy {name!r} returned {type(verdict).__name__}, not a Verdict"
            )
        if verdict.completed_at is not None and verdict.completed_at.tzinfo is None:
            # an award date must be an instant; a naive one would fail when stored
            raise PolicyUnavailable(f"policy {name!r} returned a completed_at without a timezone")
        return verdict

    def check_submission(self, name: str, facts: PolicyFacts, config: dict[str, Any]) -> str | None:
        """Why the policy refuses new proof now, or None; PolicyUnavailable when it cannot say.

        A policy without `check_submission`, or one not installed (its enrollments wait for
        it), accepts.
        """
        installed = self.policies.get(name)
        if installed is None or getattr(installed.policy, "check_submission", None) is None:
            return None
        reason = self._call_policy(installed, "check_submission", facts, config)
        if reason is not None and not (isinstance(reason, str) and reason.strip()):
            raise PolicyUnavailable(
                f"policy {name!r}: check_submission returned {type(reason).__name__} "
                f"{reason!r}, not a reason or None"
            )
        return reason

    # -- the other hooks -----------------------------------------------------------------

    async def _call(self, caller: pluggy.HookCaller, **kwargs: Any) -> tuple[Any, Exception | None]:
        """One plugin's implementation, awaited if async: its value, or what it raised."""
        try:
            results: list[Any] = caller(**kwargs)
            value = results[0] if results else None
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            return None, exc
        return value, None

    def event_targets(self) -> list[str]:
        """The delivery targets of the plugins implementing certgraph_event ("plugin:<label>")."""
        return [f"plugin:{label}" for label, _ in self._hook_callers("certgraph_event")]

    async def deliver(
        self,
        target: str,
        event: Event,
        *,
        threads: Executor,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Hand `event` to one plugin's certgraph_event; raise what it raised (or
        TimeoutError, or LookupError when this process has no such plugin).

        An ``async def`` hook runs on the loop; a plain ``def`` hook on `threads`, so a
        blocking one never holds the loop (a hook past `timeout` counts as failed; its thread
        runs on until it returns).
        """
        for label, caller in self._hook_callers("certgraph_event"):
            if f"plugin:{label}" != target:
                continue
            impl = caller.get_hookimpls()[0]
            call = functools.partial(caller, event=event)
            async with asyncio.timeout(timeout):
                if inspect.iscoroutinefunction(impl.function):
                    results: list[Any] = call()
                    value = results[0] if results else None
                    if inspect.isawaitable(value):
                        await value
                else:
                    loop = asyncio.get_running_loop()
                    value = await loop.run_in_executor(threads, call)
                    for item in value or ():  # a sync hook that returned a coroutine anyway
                        if inspect.iscoroutine(item):
                            await item
            return
        raise LookupError(f"no plugin {target!r} implements certgraph_event in this process")

    async def check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        for label, caller in self._hook_callers("certgraph_check_upload"):
            value, exc = await self._call(caller, upload=upload)
            if exc is not None:
                log.error("plugin %s failed checking an upload: %s", label, _describe(exc))
                return UploadRefusal(reason=f"the upload check of {label} failed")
            if isinstance(value, UploadRefusal):
                return value
        return None


def _policies_of(caller: pluggy.HookCaller) -> tuple[str | None, list[Any]]:
    """Call one plugin's certgraph_completion_policies: (why it failed, or None; its list)."""
    try:
        results: list[Any] = caller()
        provided = results[0] if results else None
        if inspect.isawaitable(provided):
            if inspect.iscoroutine(provided):
                provided.close()  # never run: an unawaited coroutine would warn
            return "certgraph_completion_policies must not be async", []
        if provided is not None and (
            isinstance(provided, str | bytes | dict) or not isinstance(provided, Iterable)
        ):
            return (
                f"certgraph_completion_policies returned {type(provided).__name__}, not a list",
                [],
            )
        return None, list(provided or [])
    except Exception as exc:
        return f"certgraph_completion_policies raised {_describe(exc)}", []


def create_plugin_host(
    load_entry_points: bool = True, *, extra: Iterable[tuple[str, object]] = ()
) -> PluginHost:
    """A loaded host: the built-ins, the installed entry points, then `extra` (label, plugin).

    Build one per app; every failure is in `host.failures` and logged as a warning.
    """
    host = PluginHost()
    host.load_builtins()
    if load_entry_points:
        host.load_entry_points()
    for label, plugin in extra:
        host.register(plugin, label)
    host.collect_policies()
    for failure in host.failures:
        log.warning("plugin %s not loaded: %s", failure.plugin, failure.reason)
    return host


_host: PluginHost | None = None


def get_plugin_host() -> PluginHost:
    """The process-wide host, built on first use (for code not yet handed a host)."""
    global _host
    if _host is None:
        _host = create_plugin_host()
    return _host


def set_plugin_host(host: PluginHost | None) -> None:
    """Install a host (tests register extra plugins this way); None resets to lazy loading."""
    global _host
    _host = host
