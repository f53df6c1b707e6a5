"""The `certgraph` command. Every command acts as the operator (`Actor.system()`) on
CERTGRAPH_DATABASE_URL; a bad argument or a refused request prints one line and exits 2, a
failure of the environment (database unreachable or not migrated) exits 1."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from tortoise.exceptions import BaseORMException

from gql.api.ids import decode_id, encode_id
from gql.domain import tokens, users
from gql.domain.access import Actor
from gql.domain.errors import AccessError, DomainError, NotFound
from gql.domain.pages import PageRequest
from gql.domain.records import UserRecord
from gql.files import BlobStore
from gql.files.backends import open_blob_store, storage_errors
from gql.settings import Settings, SettingsError, check_sqlite_folder, get_settings
from gql.store.db import close_database, migrate_database, open_database
from gql.vocabulary import Role

EXIT_USAGE = 2  # bad arguments and refused requests
EXIT_FAILURE = 1  # the environment failed: database, schema, server

SYSTEM = Actor.system()


class CommandError(Exception):
    """A refusal the CLI itself decides; printed as one line, exit 2."""


class EnvironmentFailure(Exception):
    """Something outside the arguments failed; printed as one line, exit 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@asynccontextmanager
async def database() -> AsyncIterator[None]:
    settings = get_settings()
    check_sqlite_folder(settings.database_url)
    await open_database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        yield
    finally:
        await close_database()


# -- migrate ----------------------------------------------------------------------------


async def apply_migrations() -> list[str]:
    try:
        settings = get_settings()
        check_sqlite_folder(settings.database_url)
        return await migrate_database(
            settings.database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            waiting=lambda: print(
                "another `certgraph migrate` holds the migration lock; waiting for it to finish",
                file=sys.stderr,
                flush=True,
            ),
        )
    finally:
        await close_database()


def cmd_migrate(args: argparse.Namespace) -> None:
    applied = asyncio.run(apply_migrations())
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("the database is up to date; nothing to apply")


# -- serve ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise CommandError("--port must be between 1 and 65535")
    settings = get_settings()  # a bad CERTGRAPH_* value is refused here, once, not per worker
    check_sqlite_folder(settings.database_url)
    from gql.api.persisted import configured_manifest

    configured_manifest(settings)  # a bad persisted-query manifest too
    check_port_free(args.host, args.port)
    # Several workers count into files of one fresh directory, so a scrape of any worker
    # answers for all (prometheus-client's multi-process mode, read by each worker's Settings).
    metrics_dir = None
    if args.workers > 1 and settings.metrics_enabled and not settings.metrics_multiprocess_dir:
        metrics_dir = tempfile.mkdtemp(prefix="certgraph-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _run_uvicorn(args, settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_uvicorn(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from gql.http.protocol import header_timeout_protocol

    # An import string and factory=True, so each worker process builds its own app.
    uvicorn.run(
        "gql.app:create_served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=serve_logging_config(),
        http=header_timeout_protocol(settings.header_timeout_seconds),
        # X-Forwarded-* only from CERTGRAPH_TRUSTED_PROXIES; uvicorn trusts 127.0.0.1 by default.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or [],
    )


def check_port_free(host: str, port: int) -> None:
    """Refuse at once, with a hint, a port another process listens on (uvicorn would fail
    only after start-up, with its own error)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise CommandError(f"--host {host}: {exc}") from None
    with socket.socket(family, kind) as probe:
        # As uvicorn binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise EnvironmentFailure(
                f"cannot listen on {host}:{port} ({exc.strerror}); another server may be "
                f"running there: choose another port with --port (make run PORT=...)"
            ) from None


def serve_logging_config() -> dict[str, Any]:
    """uvicorn's own logging, plus certgraph's loggers at INFO on the same handler.

    uvicorn configures only its loggers, so the service's guards, plugin failures and
    masked internal errors (with their request ids) would otherwise be dropped.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["certgraph"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


# -- demo -------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> None:
    from gql.demo import TOKENS_FILE, load_demo

    async def action() -> None:
        await apply_migrations()
        async with database(), blob_store() as blobs:
            data_dir = get_settings().data_dir
            result = await load_demo(blobs, only_if_empty=args.if_empty, data_dir=data_dir)
        print(result.summary)
        if result.tokens:
            kept = data_dir / TOKENS_FILE
            print(f"API tokens (send as `Authorization: Bearer <token>`; kept in {kept}):")
            width = max(len(t.label) for t in result.tokens)
            for token in result.tokens:
                print(f"  {token.label.ljust(width)}  {token.token}")

    asyncio.run(action())


# -- user and token ---------------------------------------------------------------------


def user_global_id(user_id: int) -> str:
    """The Relay global ID the GraphQL API uses for this user."""
    return encode_id("User", user_id)


def print_user_token(user: UserRecord, token: str, as_json: bool, verb: str) -> None:
    if as_json:
        record = {
            "id": user_global_id(user.id),
            "email": user.email,
            "role": str(user.role),
            "token": token,
        }
        print(json.dumps(record))
        return
    print(f"{verb} {user.role} {user.name} <{user.email}> (id {user_global_id(user.id)})")
    print(f"token (shown only now): {token}")


async def find_user_by_email(email: str) -> UserRecord | None:
    wanted = email.strip().lower()
    page = await users.list_users(SYSTEM, search=wanted, paging=PageRequest(first=100))
    return next((user for user in page.items if user.email == wanted), None)


def cmd_user_create(args: argparse.Namespace) -> None:
    async def action() -> None:
        async with database():
            manager_id: int | None = None
            if args.manager is not None:
                manager = await find_user_by_email(args.manager)
                if manager is None:
                    raise NotFound(f"no user with email {args.manager} (--manager)")
                manager_id = manager.id
            user = await users.create_user(
                SYSTEM,
                name=args.name,
                email=args.email,
                role=Role(args.role.upper()),
                manager_id=manager_id,
            )
            token = await users.create_api_token(SYSTEM, user.id)
        print_user_token(user, token, args.json, "created")

    asyncio.run(action())


def print_user(user: UserRecord, as_json: bool, verb: str) -> None:
    """One line (or one JSON object) saying who the user is now: `user update`, `deactivate`
    and `reactivate`."""
    deactivated = None if user.deactivated_at is None else user.deactivated_at.isoformat()
    if as_json:
        record = {
            "id": user_global_id(user.id),
            "name": user.name,
            "email": user.email,
            "role": str(user.role),
            "managerId": None if user.manager_id is None else user_global_id(user.manager_id),
            "active": deactivated is None,
            "deactivatedAt": deactivated,
        }
        print(json.dumps(record))
        return
    state = "active" if deactivated is None else f"deactivated at {deactivated}"
    print(f"{verb} {user.role} {user.name} <{user.email}> (id {user_global_id(user.id)}), {state}")


def cmd_user_update(args: argparse.Namespace) -> None:
    from gql.domain import people

    given = (args.name, args.new_email, args.role, args.manager)
    if all(value is None for value in given) and not args.no_manager:
        raise CommandError(
            "nothing to change: give --name, --new-email, --role, --manager or --no-manager"
        )

    async def action() -> None:
        async with database():
            user = await people.user_by_email(SYSTEM, args.email)
            manager_id: int | people.Keep | None = None if args.no_manager else people.KEEP
            if args.manager is not None:
                try:
                    manager_id = (await people.user_by_email(SYSTEM, args.manager)).id
                except NotFound:
                    raise NotFound(f"no user with email {args.manager} (--manager)") from None
            updated = await people.update_user(
                SYSTEM,
                user.id,
                name=people.KEEP if args.name is None else args.name,
                email=people.KEEP if args.new_email is None else args.new_email,
                role=people.KEEP if args.role is None else Role(args.role.upper()),
                manager_id=manager_id,
            )
        print_user(updated, args.json, "updated")

    asyncio.run(action())


def cmd_user_set_active(args: argparse.Namespace) -> None:
    """`user deactivate` and `user reactivate`."""
    from gql.domain import people

    async def action() -> None:
        async with database():
            user = await people.user_by_email(SYSTEM, args.email)
            if args.user_command == "deactivate":
                changed = await people.deactivate_user(SYSTEM, user.id)
            else:
                changed = await people.reactivate_user(SYSTEM, user.id)
        print_user(changed, args.json, f"{args.user_command}d")

    asyncio.run(action())


def cmd_token_create(args: argparse.Namespace) -> None:
    async def action() -> None:
        expires_at = None
        if args.expires_in is not None:
            expires_at = tokens.expiry_in_days(args.expires_in)
        async with database():
            user, issued = await tokens.create_token_for_email(
                SYSTEM, args.email, name=args.name, expires_at=expires_at
            )
        row = issued.token
        token_id = encode_id("ApiToken", row.id)
        expires = None if row.expires_at is None else row.expires_at.isoformat()
        if args.json:
            record = {
                "id": user_global_id(user.id),
                "email": user.email,
                "role": str(user.role),
                "token": issued.secret,
                "tokenId": token_id,
                "name": row.name,
                "expiresAt": expires,
            }
            print(json.dumps(record))
            return
        print_user_token(user, issued.secret, False, "new token for")
        named = f'named "{row.name}", ' if row.name else ""
        print(f"token id {token_id}, {named}{f'expires {expires}' if expires else 'no expiry'}")

    asyncio.run(action())


def _token_pk(text: str) -> int:
    """--id: an ApiToken's global ID (from `apiTokens`) or its number."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    pk = decode_id(text, "ApiToken")
    if pk is None:
        raise NotFound(f"no such API token: {text!r} is not an ApiToken ID")
    return pk


def cmd_token_revoke(args: argparse.Namespace) -> None:
    async def action() -> None:
        if args.id is not None:
            pk = _token_pk(args.id)
            async with database():
                row = await tokens.revoke_api_token(SYSTEM, pk)
            revoked_at = row.revoked_at.isoformat() if row.revoked_at else "now"
            print(f"token {encode_id('ApiToken', row.id)} revoked at {revoked_at}")
            return
        async with database():
            count = await users.revoke_tokens_for_email(SYSTEM, args.email)
        print(f"revoked {count} token(s) of {args.email.strip().lower()}")

    asyncio.run(action())


# -- gc -------------------------------------------------------------------------------


@asynccontextmanager
async def blob_store() -> AsyncIterator[BlobStore]:
    """The blob store CERTGRAPH_STORAGE_URL names (a directory or a bucket), closed after."""
    settings = get_settings()
    blobs = open_blob_store(settings)
    try:
        yield blobs
    except storage_errors(settings) as exc:
        raise EnvironmentFailure(
            f"object storage {settings.storage_url}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        await blobs.aclose()


def cmd_gc(args: argparse.Namespace) -> None:
    from gql.files import collect_garbage
    from gql.store.file_references import StoredFileReferences

    if args.grace_seconds < 0:
        raise CommandError("--grace-seconds must not be negative")

    async def action() -> None:
        async with database(), blob_store() as blobs:
            report = await collect_garbage(
                blobs, StoredFileReferences(), grace_seconds=args.grace_seconds
            )
        print(
            f"removed {report.blobs_removed} unreferenced file(s) ({report.bytes_removed} bytes) "
            f"and {report.temp_files_removed} abandoned upload(s); kept {report.blobs_kept}"
        )

    asyncio.run(action())


def cmd_check(args: argparse.Namespace) -> None:
    from gql.files import check_storage
    from gql.store.file_references import StoredFileReferences

    async def action() -> None:
        async with database(), blob_store() as blobs:
            report = await check_storage(blobs, StoredFileReferences())
        for reference in report.missing:
            print(f"missing: {reference.object_type} {reference.object_id} -> {reference.sha256}")
        for reference in report.corrupt:
            print(f"corrupt: {reference.object_type} {reference.object_id} -> {reference.sha256}")
        for digest in report.orphans:
            print(f"orphan: {digest} (no row refers to it; `certgraph gc` removes it)")
        print(
            f"{report.references} file reference(s), {report.files_verified} file(s) verified: "
            f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, "
            f"{len(report.orphans)} orphan(s)"
        )
        if not report.ok:
            raise EnvironmentFailure("stored files are missing or corrupt (listed above)")

    asyncio.run(action())


# -- sweep ----------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> None:
    from gql.domain.sweep import SweepReport, sweep

    settings = get_settings()

    async def action() -> SweepReport:
        async with database():
            return await sweep(
                due_soon_days=settings.due_soon_days,
                retention_days=settings.event_retention_days,
            )

    report = asyncio.run(action())
    print(f"{report.expired} certification_expired event(s) emitted")
    print(
        f"{report.due_soon + report.overdue + report.expiring} reminder(s) emitted "
        f"(due soon {report.due_soon}, overdue {report.overdue}, expiring {report.expiring}); "
        f"{report.pruned} settled event(s) pruned"
    )


# -- worker ---------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> None:
    """Deliver events (and run the periodic sweep) without serving: for deployments that
    run `certgraph serve` with CERTGRAPH_DISPATCHER=false, or beside it."""
    from gql.domain.dispatcher import Dispatcher
    from gql.plugins import create_plugin_host
    from gql.webhooks.sender import HttpWebhookSender

    settings = get_settings()
    sender = HttpWebhookSender(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    host = create_plugin_host()
    dispatcher = Dispatcher.from_settings(settings, host, sender)

    async def once() -> int:
        async with database():
            try:
                return await dispatcher.run_until_idle()
            finally:
                await dispatcher.stop()
                await sender.aclose()

    async def forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with database():
            dispatcher.start()
            print("certgraph worker: delivering events (SIGTERM or Ctrl-C stops)", flush=True)
            try:
                await stop.wait()
            finally:
                await dispatcher.stop()
                await sender.aclose()

    if args.once:
        made = asyncio.run(once())
        print(f"{made} deliveries made")
    else:
        asyncio.run(forever())


# -- export ---------------------------------------------------------------------------


def _certification_pk(text: str) -> int:
    """--certification-id: a Certification's global ID or its number."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    pk = decode_id(text, "Certification")
    if pk is None:
        raise NotFound(f"no such certification: {text!r} is not a Certification ID")
    return pk


def _moment(text: str) -> datetime:
    """--due-before/--due-after: an ISO date (midnight UTC) or date and time (UTC if no zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"{text!r} is not an ISO date or date and time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def cmd_export_enrollments(args: argparse.Namespace) -> None:
    """The CSV of docs/admin.md ("Exports") on stdout, written batch by batch as read."""
    from gql.domain import exports
    from gql.domain.enrollment_search import EnrollmentFilter
    from gql.domain.status import EnrollmentStatus

    async def action() -> None:
        async with database():
            manager_id: int | None = None
            if args.manager_email is not None:
                manager = await find_user_by_email(args.manager_email)
                if manager is None:
                    raise NotFound(f"no user with email {args.manager_email} (--manager-email)")
                manager_id = manager.id
            cert = args.certification_id
            wanted = EnrollmentFilter(
                certification_id=None if cert is None else _certification_pk(cert),
                manager_id=manager_id,
                status=tuple(EnrollmentStatus(s) for s in args.status) if args.status else None,
                overdue=True if args.overdue else None,
                due_before=None if args.due_before is None else _moment(args.due_before),
                due_after=None if args.due_after is None else _moment(args.due_after),
            )
            request = await exports.request_export(SYSTEM, wanted)
            out = sys.stdout.buffer
            async for chunk in exports.enrollment_csv(request.actor, request.filter):
                out.write(chunk)
                out.flush()

    asyncio.run(action())


# -- plugins and schema -----------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> None:
    from gql.plugins import create_plugin_host

    # The failures are reported below, on stdout; the host's warnings would repeat them.
    logging.getLogger("certgraph.plugins").setLevel(logging.ERROR)
    host = create_plugin_host()
    print("completion policies:")
    policies = sorted(host.policies.values(), key=lambda p: p.name)
    name_width = max((len(p.name) for p in policies), default=0)
    for installed in policies:
        print(f"  {installed.name.ljust(name_width)}  from {installed.plugin}")
        print(f"  {' ' * name_width}  {installed.description}")
    if not policies:
        print("  (none)")
    print("plugins:")  # hook-only ones too: an upload check or an event sink has no policy
    loaded = host.loaded_plugins()
    label_width = max((len(p.name) for p in loaded), default=0)
    for plugin in loaded:
        print(f"  {plugin.name.ljust(label_width)}  {', '.join(plugin.hooks) or '(no hooks)'}")
    if host.failures:
        print("plugins that failed to load:")
        for failure in host.failures:
            print(f"  {failure.plugin}: {failure.reason}")
        failed = len({failure.plugin for failure in host.failures})
        raise EnvironmentFailure(f"{failed} plugin(s) failed to load (listed on stdout)")
    print("every plugin loaded")


def cmd_schema(args: argparse.Namespace) -> None:
    try:
        from gql.api.schema import print_sdl
    except ImportError as exc:
        raise EnvironmentFailure(f"the GraphQL schema is not available yet ({exc})") from None
    sys.stdout.write(print_sdl())


# -- persisted-queries ------------------------------------------------------------------


def _schema_and_settings() -> tuple[Any, Settings]:
    from gql.api.schema import build_schema

    settings = get_settings()
    return build_schema(settings).graphql_schema, settings


def cmd_persisted_build(args: argparse.Namespace) -> None:
    from gql.api import persisted

    out = Path(args.out)
    sources = [Path(name) for name in args.files]
    try:
        # The manifest being extended keeps its documents (still validated below).
        documents = (
            persisted.read_manifest(out.read_text(encoding="utf-8"), str(out))
            if out.exists()
            else {}
        )
        documents.update(persisted.collect_documents(sources))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    schema, settings = _schema_and_settings()
    problems = persisted.manifest_problems(schema, documents, settings)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        raise CommandError(f"{len(problems)} document(s) the schema refuses; {out} not written")
    out.write_text(persisted.write_manifest(documents), encoding="utf-8")
    print(f"{out}: {len(documents)} document(s)")


def cmd_persisted_check(args: argparse.Namespace) -> None:
    from gql.api import persisted

    try:
        documents = persisted.collect_documents([Path(args.manifest)])
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    schema, settings = _schema_and_settings()
    problems = persisted.manifest_problems(schema, documents, settings)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        raise CommandError(f"{len(problems)} document(s) the schema no longer accepts")
    print(f"{args.manifest}: {len(documents)} document(s), every one accepted")


# -- the parser -------------------------------------------------------------------------


def _package_version() -> str:
    try:
        return version("certgraph")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="certgraph",
        description="certgraph: a GraphQL service for professional certifications. "
        "Commands apply to CERTGRAPH_DATABASE_URL (default sqlite://./var/certgraph.sqlite3).",
    )
    parser.add_argument("--version", action="version", version=f"certgraph {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    serve = commands.add_parser("serve", help="serve the GraphQL API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo",
        help="migrate, then load demo users, courses and certifications once; print their "
        "tokens (kept under the data dir and shown again on later runs)",
    )
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="load the demo only into a database without users: one that has the demo "
        "just gets its tokens shown again, any other is left alone",
    )
    demo.set_defaults(handler=cmd_demo)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    user_create = user.add_parser("create", help="create a user and issue an API token")
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--email", required=True)
    user_create.add_argument(
        "--role",
        required=True,
        type=str.lower,
        choices=[role.value.lower() for role in Role],
    )
    user_create.add_argument("--manager", metavar="EMAIL", help="the email of their manager")
    user_create.add_argument("--json", action="store_true", help="print one JSON object")
    user_create.set_defaults(handler=cmd_user_create)
    user_update = user.add_parser(
        "update", help="change a user's name, e-mail, role or manager (only what is given)"
    )
    user_update.add_argument("--email", required=True, help="the user's e-mail now")
    user_update.add_argument("--name")
    user_update.add_argument("--new-email", metavar="EMAIL", help="their new e-mail")
    user_update.add_argument(
        "--role", type=str.lower, choices=[role.value.lower() for role in Role]
    )
    new_manager = user_update.add_mutually_exclusive_group()
    new_manager.add_argument("--manager", metavar="EMAIL", help="the email of their new manager")
    new_manager.add_argument("--no-manager", action="store_true", help="they have no manager")
    user_update.add_argument("--json", action="store_true", help="print one JSON object")
    user_update.set_defaults(handler=cmd_user_update)
    for verb, what in (
        ("deactivate", "refuse a user's API tokens and sign-ins; their history stays"),
        ("reactivate", "let a deactivated user's tokens and sign-ins work again"),
    ):
        set_active = user.add_parser(verb, help=what)
        set_active.add_argument("--email", required=True)
        set_active.add_argument("--json", action="store_true", help="print one JSON object")
        set_active.set_defaults(handler=cmd_user_set_active)

    token = commands.add_parser("token", help="issue or revoke API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    token_create = token.add_parser("create", help="issue a new API token for a user")
    token_create.add_argument("--email", required=True)
    token_create.add_argument(
        "--expires-in",
        type=int,
        metavar="DAYS",
        help="the token is refused from DAYS days from now on (1..3650; default: until revoked)",
    )
    token_create.add_argument("--name", help="what the token is for, e.g. 'CI script'")
    token_create.add_argument("--json", action="store_true", help="print one JSON object")
    token_create.set_defaults(handler=cmd_token_create)
    token_revoke = token.add_parser(
        "revoke", help="revoke every API token of a user (--email), or one token (--id)"
    )
    which = token_revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", help="revoke every token of this user")
    which.add_argument("--id", help="revoke this token: its ID (apiTokens' id) or number")
    token_revoke.set_defaults(handler=cmd_token_revoke)

    gc = commands.add_parser(
        "gc", help="remove stored files no row refers to and abandoned uploads (safe to cron)"
    )
    gc.add_argument(
        "--grace-seconds",
        type=float,
        default=3600,
        help="only touch files older than this, to spare uploads in flight (default 3600)",
    )
    gc.set_defaults(handler=cmd_gc)
    check = commands.add_parser(
        "check", help="verify every stored file a row points to (exists, hash); list orphans"
    )
    check.set_defaults(handler=cmd_check)

    sweep = commands.add_parser(
        "sweep",
        help="emit certification_expired for awards that expired unnoticed "
        "(idempotent; safe to cron on several hosts at once)",
    )
    sweep.set_defaults(handler=cmd_sweep)

    worker = commands.add_parser(
        "worker",
        help="deliver events to plugins and webhooks (what each server process also does "
        "unless CERTGRAPH_DISPATCHER=false)",
    )
    worker.add_argument(
        "--once",
        action="store_true",
        help="deliver what is due now, then exit (deliveries backing off are left)",
    )
    worker.set_defaults(handler=cmd_worker)

    export = commands.add_parser(
        "export", help="write data as CSV to stdout (docs/admin.md, Exports)"
    ).add_subparsers(dest="export_command", required=True, metavar="WHAT")
    export_enrollments = export.add_parser(
        "enrollments",
        help="every enrollment the filters select (all of them without any), as the operator; "
        "streamed: certgraph export enrollments --overdue > overdue.csv",
    )
    export_enrollments.add_argument("--certification-id", metavar="ID", help="ID or number")
    export_enrollments.add_argument(
        "--status",
        nargs="+",
        action="extend",
        type=str.upper,
        choices=["ENROLLED", "STARTED", "PENDING_APPROVAL", "REJECTED", "COMPLETED", "EXPIRED"],
        metavar="STATUS",
        help="any of ENROLLED STARTED PENDING_APPROVAL REJECTED COMPLETED EXPIRED",
    )
    export_enrollments.add_argument(
        "--overdue", action="store_true", help="only enrollments past their due date"
    )
    export_enrollments.add_argument(
        "--due-before", metavar="WHEN", help="due before this ISO date or time (UTC)"
    )
    export_enrollments.add_argument(
        "--due-after", metavar="WHEN", help="due at or after this ISO date or time (UTC)"
    )
    export_enrollments.add_argument(
        "--manager-email", metavar="EMAIL", help="only the direct reports of this manager"
    )
    export_enrollments.set_defaults(handler=cmd_export_enrollments)

    plugins = commands.add_parser(
        "plugins",
        help="list completion policies, every plugin with its hooks, and plugins that failed "
        "to load (exit 1 when any did)",
    )
    plugins.set_defaults(handler=cmd_plugins)

    schema = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(handler=cmd_schema)

    persisted = commands.add_parser(
        "persisted-queries", help="build or check a persisted-query manifest (docs/api.md)"
    ).add_subparsers(dest="persisted_command", required=True, metavar="ACTION")
    persisted_build = persisted.add_parser(
        "build",
        help="validate .graphql files and manifests against the schema and merge them into "
        "--out (sorted by hash)",
    )
    persisted_build.add_argument("files", nargs="+", help=".graphql files or .json manifests")
    persisted_build.add_argument("--out", required=True, help="the manifest to write or extend")
    persisted_build.set_defaults(handler=cmd_persisted_build)
    persisted_check = persisted.add_parser(
        "check", help="exit 2 when the schema refuses a document of the manifest"
    )
    persisted_check.add_argument("manifest")
    persisted_check.set_defaults(handler=cmd_persisted_check)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], Any] = args.handler
    action = (
        getattr(args, "user_command", None)
        or getattr(args, "token_command", None)
        or getattr(args, "export_command", None)
        or getattr(args, "persisted_command", None)
    )
    command = f"{args.command} {action}" if action else args.command
    try:
        handler(args)
    except (CommandError, DomainError, AccessError, SettingsError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        print(f"certgraph {command}: {_one_line(message)}", file=sys.stderr)
        return EXIT_USAGE
    except EnvironmentFailure as exc:
        print(f"certgraph {command}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`certgraph plugins | head`): not worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except (BaseORMException, OSError) as exc:
        # The database is unreachable, or its schema is older than the code.
        line = _one_line(f"{type(exc).__name__}: {exc}")
        if "no such table" in line or "does not exist" in line:
            line += " (run `certgraph migrate` first)"
        print(f"certgraph {command}: {line}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
