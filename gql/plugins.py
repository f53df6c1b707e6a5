"""The plugin manager: built-in policies plus every entry point of group ``certgraph``.

Built-ins are registered first, through the same hook a third party implements, so they keep
their names. A plugin that fails to import, a hook that raises, a malformed policy or a policy
name already taken is recorded as a `PluginFailure` and skipped; the service keeps working
with the rest.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from gql import hookspecs
from gql.policy import Event, PolicyFacts, UploadInfo, UploadRefusal, Verdict

log = logging.getLogger("certgraph.plugins")

ENTRY_POINT_GROUP = "certgraph"
BUILTIN_MODULES = ("plugins.mandatory_subset", "plugins.all_required", "plugins.external_evidence")


@dataclass(frozen=True, slots=True)
class InstalledPolicy:
    policy: Any
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
    if not isinstance(getattr(policy, "description", None), str):
        return f"policy {name!r}: no string `description`"
    return None


class PluginHost:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("certgraph")
        self.pm.add_hookspecs(hookspecs.CertgraphSpec)
        self.policies: dict[str, InstalledPolicy] = {}
        self.failures: list[PluginFailure] = []
        self._plugin_labels: dict[int, str] = {}

    # -- loading -------------------------------------------------------------------------

    def register(self, plugin: object, label: str) -> bool:
        """Register one plugin object (usually a module); record a failure instead of raising."""
        try:
            self.pm.register(plugin, name=label)
        except Exception as exc:  # a malformed hookimpl, a duplicate registration
            self.failures.append(PluginFailure(label, _describe(exc)))
            return False
        self._plugin_labels[id(plugin)] = label
        return True

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
        """Ask every plugin for its policies, one plugin at a time so one bad plugin is isolated."""
        self.policies.clear()
        for impl in self.pm.hook.certgraph_completion_policies.get_hookimpls():
            label = impl.plugin_name
            try:
                provided: Any = impl.function()
                items: Iterable[Any] = list(provided or [])
            except Exception as exc:
                self.failures.append(
                    PluginFailure(label, f"certgraph_completion_policies raised {_describe(exc)}")
                )
                continue
            for policy in items:
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

    def _parsed_config(self, installed: InstalledPolicy, config: dict[str, Any]) -> BaseModel:
        try:
            return installed.config_model.model_validate(config)
        except ValidationError as exc:
            raise PolicyUnavailable(
                f"its stored config no longer validates ({exc.error_count()} error(s))"
            ) from None

    def evaluate(self, name: str, facts: PolicyFacts, config: dict[str, Any]) -> Verdict:
        """Run a policy; PolicyUnavailable says in one line why there is no verdict."""
        installed = self.policies.get(name)
        if installed is None:
            raise PolicyUnavailable(f"policy {name!r} is not installed")
        parsed = self._parsed_config(installed, config)
        try:
            verdict = installed.policy.evaluate(facts, parsed)
        except Exception as exc:
            log.exception("policy %s raised", name)
            raise PolicyUnavailable(f"policy {name!r} failed: {_describe(exc)}") from None
        if not isinstance(verdict, Verdict):
            raise PolicyUnavailable(
                f"policy {name!r} returned {type(verdict).__name__}, not a Verdict"
            )
        if verdict.completed_at is not None and verdict.completed_at.tzinfo is None:
            # an award date must be an instant; a naive one would fail when stored
            raise PolicyUnavailable(f"policy {name!r} returned a completed_at without a timezone")
        return verdict

    def check_submission(self, name: str, facts: PolicyFacts, config: dict[str, Any]) -> str | None:
        """Ask a policy's optional `check_submission(facts, config)` whether to refuse proof now."""
        installed = self.policies.get(name)
        check = getattr(installed.policy, "check_submission", None) if installed else None
        if installed is None or check is None:
            return None
        reason = check(facts, self._parsed_config(installed, config))
        return None if reason is None else str(reason)

    # -- the other hooks -----------------------------------------------------------------

    async def _call_each(
        self, hook_name: str, **kwargs: Any
    ) -> list[tuple[str, Any, BaseException | None]]:
        """Call every implementation separately, awaiting awaitables; keep going past errors."""
        results: list[tuple[str, Any, BaseException | None]] = []
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                value = impl.function(**args)
                if inspect.isawaitable(value):
                    value = await value
                results.append((impl.plugin_name, value, None))
            except Exception as exc:
                results.append((impl.plugin_name, None, exc))
        return results

    async def emit(self, event: Event) -> None:
        for plugin, _, exc in await self._call_each("certgraph_event", event=event):
            if exc is not None:
                log.error("plugin %s failed on event %s: %s", plugin, event.name, _describe(exc))

    async def check_upload(self, upload: UploadInfo) -> UploadRefusal | None:
        for plugin, value, exc in await self._call_each("certgraph_check_upload", upload=upload):
            if exc is not None:
                log.error("plugin %s failed checking an upload: %s", plugin, _describe(exc))
                return UploadRefusal(reason=f"the upload check of {plugin} failed")
            if isinstance(value, UploadRefusal):
                return value
        return None


def create_plugin_host(load_entry_points: bool = True) -> PluginHost:
    host = PluginHost()
    host.load_builtins()
    if load_entry_points:
        host.load_entry_points()
    host.collect_policies()
    for failure in host.failures:
        log.warning("plugin %s not loaded: %s", failure.plugin, failure.reason)
    return host


_host: PluginHost | None = None


def get_plugin_host() -> PluginHost:
    global _host
    if _host is None:
        _host = create_plugin_host()
    return _host


def set_plugin_host(host: PluginHost | None) -> None:
    """Install a host (tests register extra plugins this way); None resets to lazy loading."""
    global _host
    _host = host
