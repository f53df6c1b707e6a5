"""Persisted queries (docs/api.md, "Persisted queries"): Apollo's automatic persisted queries
over a bounded in-process cache shared through Redis, and a mode where only the documents of
a manifest run. A document found by its hash still goes through every limit and validation."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    parse,
    print_ast,
    specified_rules,
    validate,
    visit,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData

from gql import i18n
from gql.api.errors import language_of
from gql.api.limits import document_limits_rule
from gql.http.errors import BAD_REQUEST, error_response
from gql.http.redis_client import FailOpen, redis_client
from gql.i18n import t
from gql.settings import Settings, SettingsError

log = logging.getLogger("certgraph.api")

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_NOT_REGISTERED = "PERSISTED_QUERY_NOT_REGISTERED"
NOT_REGISTERED_MESSAGE = t("this server runs only its registered documents (persisted queries)")
# Apollo's protocol: clients match this message, so it is the same in every language.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"
# The in-process cache's total size: documents are a few KiB, so this holds thousands.
CACHE_MAX_BYTES = 8 * 1024 * 1024
# Validation at registration: as generous as the schema's own backstop (gql.api.schema).
VALIDATION_BUDGET_SECONDS = 5.0


def document_hash(text: str) -> str:
    """The hash clients send: sha256 of the document's exact text, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PersistedQueryRefused(Exception):
    """The request is answered with `response(language)`, before strawberry parses the
    document; its message is told in the request's language."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__("refused by the persisted-query rules")
        self.status = status
        self.code = code
        self.message = message

    def response(self, language: str = i18n.SOURCE_LANGUAGE) -> Response:
        return error_response(self.status, self.code, self.message, language=language)


def _refused(status: int, code: str, message: str) -> PersistedQueryRefused:
    return PersistedQueryRefused(status, code, message)


class DocumentCache:
    """A least-recently-used map of hash to document, capped in entries and in total bytes."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> str | None:
        text = self._entries.get(key)
        if text is not None:
            self._entries.move_to_end(key)
        return text

    def put(self, key: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > self.max_bytes or self.max_entries == 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old.encode("utf-8"))
        self._entries[key] = text
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted.encode("utf-8"))


class SharedDocuments:
    """Registered documents in Redis with a TTL; Redis down or slow, it is skipped (fail
    open: the in-process cache still serves), with one warning a minute."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}apq:"
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._redis = FailOpen(
            log,
            failing="persisted queries not shared, this process uses its own cache",
            recovered="persisted queries shared through Redis again",
            clock=lambda: self.clock(),
        )

    @classmethod
    def from_settings(cls, settings: Settings, url: str) -> SharedDocuments:
        return cls(
            redis_client(url, settings.redis_timeout_seconds),
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.persisted_queries_ttl_seconds,
        )

    async def get(self, key: str) -> str | None:
        if not self._redis.available():
            return None
        try:
            value = await self.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._redis.failed(exc)
            return None
        self._redis.answered()
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return value if isinstance(value, str) else None

    async def put(self, key: str, text: str) -> None:
        if not self._redis.available():
            return
        try:
            await self.client.set(self.prefix + key, text, ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            self._redis.failed(exc)
        else:
            self._redis.answered()

    async def aclose(self) -> None:
        await self.client.aclose()


def read_manifest(text: str, source: str) -> dict[str, str]:
    """{sha256: document} from a GraphQL Code Generator `persisted-documents.json` or an
    Apollo persisted-query manifest; a wrong shape or a hash that is not the text's raises
    ValueError naming `source`."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: a manifest is a JSON object")
    if raw.get("format") == APOLLO_MANIFEST_FORMAT:
        operations = raw.get("operations")
        if raw.get("version") != 1 or not isinstance(operations, list):
            raise ValueError(f"{source}: an Apollo manifest of version 1 with `operations`")
        pairs: list[tuple[object, object]] = []
        for operation in operations:
            if not isinstance(operation, dict):
                raise ValueError(f"{source}: each operation is an object with id and body")
            pairs.append((operation.get("id"), operation.get("body")))
    else:
        pairs = list(raw.items())
    documents: dict[str, str] = {}
    for key, body in pairs:
        if not isinstance(key, str) or not isinstance(body, str):
            raise ValueError(f"{source}: each entry maps a sha256 hash to a document's text")
        if document_hash(body) != key.lower():
            hint = (
                " (a SHA-1: GraphQL Code Generator needs persistedDocuments: "
                "{hashAlgorithm: 'sha256'})"
                if len(key) == 40
                else ""
            )
            raise ValueError(f"{source}: {key} is not the sha256 of its document{hint}")
        documents[key.lower()] = body
    return documents


def load_manifest(path: Path) -> dict[str, str]:
    """The manifest at `path`; SettingsError naming CERTGRAPH_PERSISTED_QUERIES_FILE if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"CERTGRAPH_PERSISTED_QUERIES_FILE: cannot read {path} ({exc})"
        ) from None
    try:
        return read_manifest(text, str(path))
    except ValueError as exc:
        raise SettingsError(f"CERTGRAPH_PERSISTED_QUERIES_FILE: {exc}") from None


def configured_manifest(settings: Settings) -> dict[str, str]:
    """The manifest of CERTGRAPH_PERSISTED_QUERIES_FILE ({} when unset); SettingsError when it
    cannot be read, or persisted-only mode has none."""
    if settings.persisted_queries_file is not None:
        return load_manifest(settings.persisted_queries_file)
    if settings.persisted_queries_only:
        raise SettingsError(
            "CERTGRAPH_PERSISTED_QUERIES_ONLY: needs CERTGRAPH_PERSISTED_QUERIES_FILE, "
            "the manifest of the documents clients may run"
        )
    return {}


def document_problems(schema: GraphQLSchema, text: str, settings: Settings) -> list[str]:
    """Why the schema refuses `text` (parse, token limit, validation, depth and aliases);
    empty when it accepts it. The cost limit is left to execution: it needs variables."""
    try:
        document = parse(text, max_tokens=settings.max_tokens)
    except GraphQLError as exc:
        return [exc.message]
    limits = document_limits_rule(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        budget_seconds=VALIDATION_BUDGET_SECONDS,
    )
    errors = validate(schema, document, [*specified_rules, limits])
    return [error.message for error in errors]


def operation_documents(text: str, source: str) -> list[str]:
    """The documents a client sends for a .graphql file: the file's exact text when it holds
    one operation; with several, each operation printed with the fragments it uses."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise ValueError(f"{source}: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise ValueError(f"{source}: no operation (only fragments)")
    if len(operations) == 1:
        return [text]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    documents = []
    for operation in operations:
        used: list[FragmentDefinitionNode] = []
        pending = _spreads(operation)
        while pending:
            name = pending.pop()
            fragment = fragments.get(name)
            if fragment is None:
                raise ValueError(f"{source}: unknown fragment {name}")
            if fragment not in used:
                used.append(fragment)
                pending.extend(_spreads(fragment))
        parts = [operation, *sorted(used, key=lambda f: f.name.value)]
        documents.append("\n\n".join(print_ast(part) for part in parts))
    return documents


def _spreads(node: Node) -> list[str]:
    names: list[str] = []

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: object) -> None:
            names.append(spread.name.value)

    visit(node, Spreads())
    return names


def collect_documents(paths: list[Path]) -> dict[str, str]:
    """{sha256: document} of .graphql files and manifests (.json); ValueError naming the file."""
    documents: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read ({exc})") from None
        if path.suffix == ".json":
            documents.update(read_manifest(text, str(path)))
        else:
            documents.update((document_hash(d), d) for d in operation_documents(text, str(path)))
    return documents


def manifest_problems(
    schema: GraphQLSchema, documents: Mapping[str, str], settings: Settings
) -> list[str]:
    """One line per document the schema refuses: its hash, its operation, the reasons."""
    problems = []
    for key, text in sorted(documents.items()):
        reasons = document_problems(schema, text, settings)
        if reasons:
            problems.append(f"{key[:12]} ({_operation_name(text)}): {'; '.join(reasons)}")
    return problems


def _operation_name(text: str) -> str:
    try:
        document = parse(text)
    except GraphQLError:
        return "unparsable"
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.name.value if definition.name else "anonymous"
    return "no operation"


def write_manifest(documents: Mapping[str, str]) -> str:
    """The manifest's text: a JSON object sorted by hash, so a rebuild diffs cleanly."""
    return json.dumps(dict(sorted(documents.items())), indent=2, ensure_ascii=False) + "\n"


def is_introspection_only(text: str) -> bool:
    """Whether every operation of `text` is a query selecting only __schema, __type or
    __typename at its root (what GraphiQL sends to learn the schema)."""
    try:
        document = parse(text)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        return False
    for operation in operations:
        if operation.operation != OperationType.QUERY:
            return False
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode) or not selection.name.value.startswith("__"):
                return False
    return True


class PersistedQueries:
    """Resolves a request's `extensions.persistedQuery` into its document, and in
    persisted-only mode refuses every document the manifest does not name."""

    def __init__(
        self,
        settings: Settings,
        schema: GraphQLSchema | None = None,
        *,
        manifest: Mapping[str, str] | None = None,
        shared: SharedDocuments | None = None,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.manifest = dict(manifest or {})
        self.only = settings.persisted_queries_only
        self.cache = DocumentCache(
            max_entries=settings.persisted_queries_cache_size, max_bytes=CACHE_MAX_BYTES
        )
        self.shared = shared

    @classmethod
    def from_settings(cls, settings: Settings, schema: GraphQLSchema) -> PersistedQueries:
        """Reads the manifest once (persisted-only mode); SettingsError when it cannot."""
        manifest = configured_manifest(settings)
        if settings.persisted_queries_only:
            log.info("persisted-only mode: %d registered documents", len(manifest))
        shared = (
            SharedDocuments.from_settings(settings, settings.redis_url)
            if settings.redis_url and not settings.persisted_queries_only
            else None
        )
        return cls(settings, schema, manifest=manifest, shared=shared)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()

    async def resolve(self, data: GraphQLRequestData) -> GraphQLRequestData:
        """`data` with its document filled in from its hash; PersistedQueryRefused when it
        names an unknown hash, a hash that is not its text's, or (persisted-only) a document
        the manifest does not name."""
        wanted = _persisted_hash(data.extensions)
        if wanted is None:
            if data.query is not None and not self.allows(data.query):
                raise self._not_registered()
            return data
        if data.query is not None:
            if document_hash(data.query) != wanted:
                raise _refused(
                    400,
                    PERSISTED_QUERY_HASH_MISMATCH,
                    t("extensions.persistedQuery.sha256Hash is not the sha256 of `query`"),
                )
            if self.only:
                if wanted not in self.manifest:
                    raise self._not_registered()
                return data
            await self._register(wanted, data.query)
            return data
        text = self.manifest.get(wanted) or await self._lookup(wanted)
        if text is None:
            if self.only:
                raise self._not_registered()
            # What Apollo Client and urql's persistedExchange answer by sending the text.
            raise _refused(200, PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE)
        data.query = text
        return data

    def allows(self, text: str) -> bool:
        """Whether `text` may run: any document, or in persisted-only mode a registered one
        (and in debug mode an introspection-only one, for GraphiQL)."""
        return (
            not self.only
            or document_hash(text) in self.manifest
            or (self.settings.debug and is_introspection_only(text))
        )

    def _not_registered(self) -> PersistedQueryRefused:
        return _refused(400, PERSISTED_QUERY_NOT_REGISTERED, NOT_REGISTERED_MESSAGE)

    async def _lookup(self, key: str) -> str | None:
        text = self.cache.get(key)
        if text is None and self.shared is not None:
            text = await self.shared.get(key)
            if text is not None:
                self.cache.put(key, text)
        return text

    async def _register(self, key: str, text: str) -> None:
        """Caches a document the schema accepts; one it refuses is run (and refused) without
        being cached, so the cache holds only documents worth running again."""
        if self.cache.get(key) is not None:
            return
        if self.schema is not None and document_problems(self.schema, text, self.settings):
            return
        self.cache.put(key, text)
        if self.shared is not None:
            await self.shared.put(key, text)


class PersistedOnlyGate(SchemaExtension):
    """Persisted-only mode for every transport: a subscription's document over WebSocket is
    refused here unless registered (HTTP requests were refused before being parsed)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        persisted = getattr(getattr(context, "services", None), "persisted", None)
        query = self.execution_context.query
        if isinstance(persisted, PersistedQueries) and query and not persisted.allows(query):
            raise GraphQLError(
                i18n.render(NOT_REGISTERED_MESSAGE, language_of(context)),
                extensions={"code": PERSISTED_QUERY_NOT_REGISTERED},
            )
        yield


_NOT_A_SHA256 = t("extensions.persistedQuery.sha256Hash must be a sha256")


def _persisted_hash(extensions: object) -> str | None:
    """The sha256 of `extensions.persistedQuery`, None when the request has none."""
    if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
        return None
    persisted: Any = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise _refused(
            400, BAD_REQUEST, t("extensions.persistedQuery must be {version: 1, sha256Hash}")
        )
    value = persisted.get("sha256Hash")
    if not isinstance(value, str) or len(value) != 64:
        raise _refused(400, BAD_REQUEST, _NOT_A_SHA256)
    try:
        int(value, 16)
    except ValueError:
        raise _refused(400, BAD_REQUEST, _NOT_A_SHA256) from None
    return value.lower()


__all__ = [
    "PERSISTED_QUERY_HASH_MISMATCH",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_REGISTERED",
    "DocumentCache",
    "PersistedOnlyGate",
    "PersistedQueries",
    "PersistedQueryRefused",
    "SharedDocuments",
    "collect_documents",
    "configured_manifest",
    "document_hash",
    "document_problems",
    "is_introspection_only",
    "load_manifest",
    "manifest_problems",
    "operation_documents",
    "read_manifest",
    "write_manifest",
]
