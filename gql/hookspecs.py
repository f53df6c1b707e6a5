"""Every hook certgraph calls: the plugin author's reference (docs/plugins.md explains them).

Implement a hook with ``@gql.hookimpl`` on a module-level function (or a method of an object
you register) named exactly like the spec; it may accept any subset of the arguments.
"""

from __future__ import annotations

from typing import Any

import pluggy

from gql.events import Event
from gql.policy import UploadInfo

hookspec = pluggy.HookspecMarker("certgraph")
hookimpl = pluggy.HookimplMarker("certgraph")


class CertgraphSpec:
    """The hooks. Each plugin's implementation is called on its own, in pluggy's order (last
    registered first; ``tryfirst``/``trylast`` move it), so one that raises cannot stop the
    others. Hook wrappers (``wrapper=True``, ``hookwrapper=True``) are refused at load:
    they could not wrap calls made one plugin at a time."""

    @hookspec
    def certgraph_completion_policies(self) -> list[Any]:  # type: ignore[empty-body]
        """Return the completion policies this plugin provides.

        Called once, when the plugin host is built, synchronously: an ``async def``
        implementation is a load failure. Return a list of ``gql.CompletionPolicy`` objects,
        each with ``name`` (unique across all plugins), ``description`` (one line),
        ``config_model`` (a pydantic model; its JSON Schema is published and every
        certification's config is validated by it when saved),
        ``evaluate(facts: PolicyFacts, config) -> Verdict`` and optionally
        ``check_submission(facts: PolicyFacts, config) -> str | None`` (a reason refuses a
        learner's new proof; None accepts).

        ``evaluate`` must be pure: no database, no I/O, no clock (use ``facts.now``). It is
        called again whenever the facts change and when enrollments are read. If it raises,
        the enrollment keeps its last state and its explanation names the error. If
        ``check_submission`` raises, the submission is refused (NOT_ALLOWED).

        A policy whose name is already taken by another plugin is refused and reported by
        ``certgraph plugins``; the plugin registered first keeps the name (the built-ins
        are registered first).
        """

    @hookspec
    def certgraph_event(self, event: Event) -> Any:
        """Be told that something happened: called by the dispatcher, never by a request.

        ``event`` is a ``gql.Event``: ``id`` (a UUID, the same on every attempt), ``type``
        (``enrolled``, ``unassigned``, ``started``, ``progress_recorded``, ``evidence_submitted``,
        ``evidence_reviewed``, ``certification_completed``, ``certification_expired``,
        ``certification_due_soon``, ``certification_overdue``, ``certification_expiring``),
        ``occurred_at``, ``actor_id`` (a global ID or None) and ``data``, the typed body
        (``gql.Enrolled``, ``gql.CertificationCompleted``, ...; docs/events.md has each
        one's JSON Schema). Every event reaches each plugin at least once, in the order
        written per learner. An implementation that raises (or passes
        CERTGRAPH_EVENT_HOOK_TIMEOUT) is called again later with the same event, with
        exponential back-off, until CERTGRAPH_EVENT_MAX_ATTEMPTS; so act idempotently,
        keyed on ``event.id``. A plain ``def`` runs on a thread pool of its own (blocking
        I/O is fine there); an ``async def`` runs on the server's event loop and must not
        block it. The return value is ignored.
        """

    @hookspec
    def certgraph_check_upload(self, upload: UploadInfo) -> Any:
        """Inspect an uploaded file before it is stored; return ``gql.UploadRefusal`` to refuse.

        ``upload`` is a ``gql.UploadInfo``: purpose (``evidence``, ``badge`` or ``import``),
        sanitised filename, sniffed content type, size, SHA-256, and ``path`` to a temporary
        copy that may be read until the hook returns. May be ``async def`` (the host awaits
        it). Return None to accept. Implementations are asked in turn; the first refusal wins
        (the rest are not asked) and the upload fails with ``UPLOAD_REFUSED`` and the
        refusal's reason. An implementation that raises refuses the upload (fail closed).
        """
