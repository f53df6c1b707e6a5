"""Every hook certgraph calls: the plugin author's reference.

Implement a hook with ``@gql.hookimpl`` on a module-level function (or a method of an object
you register) named exactly like the spec. An implementation may accept any subset of the
arguments. Calls are keyword-only. Hooks are synchronous; an implementation may return an
awaitable, which the host awaits (the way datasette does it).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("certgraph")
hookimpl = pluggy.HookimplMarker("certgraph")


class CertgraphSpec:
    @hookspec
    def certgraph_completion_policies(self) -> list[Any]:  # type: ignore[empty-body]
        """Return the completion policies this plugin provides.

        Called once, when the plugin manager starts. Return a list of policy objects, each
        with ``name`` (unique across all plugins), ``description`` (one line),
        ``config_model`` (a pydantic model; its JSON Schema is published and every
        certification's config is validated by it when saved) and
        ``evaluate(facts: PolicyFacts, config) -> Verdict``.

        ``evaluate`` must be pure: no database, no I/O, no clock (use ``facts.now``). It is
        called again whenever the facts change and when enrollments are read. If it raises,
        the enrollment keeps its last state and its explanation names the error.

        A policy whose name is already taken by another plugin is refused and reported by
        ``certgraph plugins``; the first one registered keeps the name.
        """

    @hookspec
    def certgraph_event(self, event: Any) -> Any:
        """Be told that something happened; called after the change committed.

        ``event`` is a ``gql.Event`` with ``name`` (``enrolled``, ``started``,
        ``progress_recorded``, ``evidence_submitted``, ``evidence_reviewed``,
        ``certification_completed``, ``certification_expired``), ``at``, ``actor_id`` and
        a JSON-safe ``payload``. Each event is delivered once per process that made the
        change. The return value is ignored; an awaitable is awaited. An exception is logged
        and does not affect the request or other plugins.
        """

    @hookspec
    def certgraph_check_upload(self, upload: Any) -> Any:
        """Inspect an uploaded file before it is stored; return ``gql.UploadRefusal`` to refuse.

        ``upload`` is a ``gql.UploadInfo``: purpose (``evidence``, ``badge`` or ``import``),
        sanitised filename, sniffed content type, size, SHA-256, and ``path`` to a temporary
        copy that may be read until the hook returns. Return None (or an awaitable resolving
        to None) to accept. Every implementation is called; the first refusal wins and the
        upload fails with ``UPLOAD_REFUSED`` and the refusal's reason. An implementation that
        raises refuses the upload (fail closed).
        """
