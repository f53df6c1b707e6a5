"""Configuration from the environment (CERTGRAPH_*), validated once into one object."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

DEFAULT_DATABASE_URL = "sqlite://./var/certgraph.sqlite3"
MAX_ISSUER_CHARS = 500  # user_identity.issuer
# The signature algorithms an OpenID provider's tokens may use: asymmetric ones only, so no
# token can be signed with what the provider publishes (no `none`, no HMAC).
OIDC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class SettingsError(ValueError):
    """A CERTGRAPH_* variable has a value the service cannot use."""


class Settings(BaseModel):
    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = Path("./var")
    secret_key: str | None = None
    # The public base URL of this service (https://certs.example.com): file and export URLs
    # are made absolute with it; unset, with the scheme and host of each request.
    public_url: str | None = None
    # At most 2**31 - 1: EvidenceRequirements.maxBytes is a GraphQL Int.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0, le=2**31 - 1)
    # Lifetimes of signed download URLs (gql/signing.py): evidence short, badges cacheable.
    evidence_url_ttl_seconds: int = Field(default=300, ge=1)
    badge_url_ttl_seconds: int = Field(default=86400, ge=60)
    debug: bool = False
    # The issuer of INTERNAL certifications when an admin gives none.
    organisation_name: str = Field(default="Our organisation", min_length=1)
    # The organisation's time zone (an IANA name): the calendar day of an award earned at an
    # instant (docs/domain.md, "Dates and instants").
    time_zone: str = "UTC"
    cors_origins: list[str] = Field(default_factory=list)
    # Limits applied to every GraphQL document before any resolver runs.
    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2000, ge=50)
    max_page_size: int = Field(default=100, ge=1)
    # The estimated cost of a document (gql/api/cost.py) above which it is not executed.
    max_query_cost: int = Field(default=20_000, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # HTTP guards (gql/http/); 0 turns the timeout or the rate limit off.
    request_timeout_seconds: float = Field(default=30.0, ge=0)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    rate_limit_per_minute: float = Field(default=600.0, ge=0)
    rate_limit_burst: int = Field(default=120, ge=1)
    rate_limit_max_keys: int = Field(default=100_000, ge=1)
    # One extra rate-limit token per this many cost points of a document; 0 charges 1 a request.
    rate_limit_cost_unit: int = Field(default=1000, ge=0)
    # Rate limits counted in Redis, shared by every worker and instance (gql/http/
    # redis_limiter.py); unset, each process counts its own. Keys start with the prefix.
    redis_url: str | None = None
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    redis_key_prefix: str = Field(default="certgraph:", min_length=1)
    # Persisted queries (docs/api.md): APQ's in-process cache, its TTL in Redis, and the
    # production mode where only a manifest's documents run.
    persisted_queries_only: bool = False
    persisted_queries_file: Path | None = None
    persisted_queries_cache_size: int = Field(default=1000, ge=0)
    persisted_queries_ttl_seconds: int = Field(default=86400, ge=1)
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips); none by default, so a client cannot choose its rate-limit address.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Events (docs/events.md): the dispatcher in each server process, or only in
    # `certgraph worker` when false.
    dispatcher_enabled: bool = True
    # Live updates (docs/api.md, "Live updates"): WebSocket subscriptions per process.
    subscriptions_max_connections: int = Field(default=1000, ge=0)
    subscriptions_max_per_connection: int = Field(default=10, ge=1)
    subscriptions_init_timeout_seconds: float = Field(default=10.0, gt=0)
    subscriptions_queue_size: int = Field(default=100, ge=1)
    subscriptions_poll_seconds: float = Field(default=1.0, gt=0)
    event_max_attempts: int = Field(default=15, ge=1)
    event_retry_base_seconds: float = Field(default=5.0, gt=0)
    event_retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    event_hook_timeout_seconds: float = Field(default=30.0, gt=0)
    event_hook_threads: int = Field(default=4, ge=1)
    event_poll_seconds: float = Field(default=1.0, gt=0)
    event_concurrency: int = Field(default=16, ge=1)
    event_retention_days: int = Field(default=30, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Webhook destinations on private, loopback or link-local addresses (refused unless true).
    webhook_allow_private: bool = False
    # Reminders: certification_due_soon this many days before dueAt; the sweep's period in
    # the dispatcher (0: only `certgraph sweep` runs it).
    due_soon_days: int = Field(default=7, ge=1)
    sweep_interval_seconds: float = Field(default=3600.0, ge=0)
    # Sign-in with an OpenID provider (docs/auth.md): its bearer tokens are accepted beside
    # API tokens when the issuer is set; unset, only API tokens are.
    oidc_issuer: str | None = None
    oidc_audience: str | None = Field(default=None, validate_default=True)
    oidc_roles_claim: str = Field(default="roles", min_length=1)
    oidc_admin_role: str = Field(default="certgraph-admin", min_length=1)
    oidc_manager_role: str = Field(default="certgraph-manager", min_length=1)
    oidc_leeway_seconds: int = Field(default=60, ge=0, le=600)
    oidc_algorithms: list[str] = Field(default_factory=lambda: list(OIDC_ALGORITHMS), min_length=1)
    # /metrics (gql/metrics.py, docs/deploy.md): on unless false; with a token, only a scraper
    # sending it as a bearer may read; several workers share prometheus-client's directory.
    metrics_enabled: bool = True
    metrics_token: str | None = Field(default=None, min_length=16)
    metrics_multiprocess_dir: Path | None = None
    # OpenTelemetry traces (gql/tracing.py, the `otel` extra): "otlp" exports them.
    tracing: Literal["off", "otlp"] = "off"
    # Where blobs live (docs/files.md): unset or file://<dir>, a local directory (the data
    # directory's blobs/ when unset); s3://bucket/prefix, an S3-compatible bucket reached with
    # the standard AWS variables below (gql/files/s3.py).
    storage_url: str | None = None
    # With S3: file downloads may be handed out as presigned URLs of the bucket.
    storage_presigned_downloads: bool = False
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the provider's https:// issuer URL")
        if len(value) > MAX_ISSUER_CHARS:
            raise ValueError(f"must be at most {MAX_ISSUER_CHARS} characters")
        if parts.query or parts.fragment:
            raise ValueError("must be an issuer URL without a query or fragment")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("http:// is accepted only on a loopback host; use https://")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.isascii() or not value.isprintable() or " " in value:
            raise ValueError("must be a URL of printable ASCII characters without spaces")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. https://certs.example.com")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must be a base URL without a query or fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry a user name or password")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
        except ValueError:
            raise ValueError("has an invalid port") from None
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith("file://"):
            return value
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be file://<directory> or s3://<bucket>[/<prefix>]")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in OIDC_ALGORITHMS]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} not allowed; choose from {', '.join(OIDC_ALGORITHMS)}"
            )
        return value

    @field_validator("oidc_audience")
    @classmethod
    def _audience_with_issuer(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("oidc_issuer") is not None and not value:
            raise ValueError(
                "must be set with CERTGRAPH_OIDC_ISSUER (the audience the provider puts in "
                "certgraph's tokens: see docs/auth.md)"
            )
        return value

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    "must be an IANA time zone name, e.g. Europe/Berlin or America/Los_Angeles"
                ) from None
        return value

    @property
    def zone(self) -> tzinfo:
        """The organisation's time zone (UTC needs no time zone database)."""
        return UTC if self.time_zone == "UTC" else ZoneInfo(self.time_zone)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")


_ENV = {
    "database_url": "CERTGRAPH_DATABASE_URL",
    "data_dir": "CERTGRAPH_DATA_DIR",
    "secret_key": "CERTGRAPH_SECRET_KEY",
    "public_url": "CERTGRAPH_PUBLIC_URL",
    "max_upload_bytes": "CERTGRAPH_MAX_UPLOAD_BYTES",
    "evidence_url_ttl_seconds": "CERTGRAPH_EVIDENCE_URL_TTL_SECONDS",
    "badge_url_ttl_seconds": "CERTGRAPH_BADGE_URL_TTL_SECONDS",
    "debug": "CERTGRAPH_DEBUG",
    "organisation_name": "CERTGRAPH_ORGANISATION",
    "time_zone": "CERTGRAPH_TIME_ZONE",
    "cors_origins": "CERTGRAPH_CORS_ORIGINS",
    "max_query_depth": "CERTGRAPH_MAX_QUERY_DEPTH",
    "max_aliases": "CERTGRAPH_MAX_ALIASES",
    "max_tokens": "CERTGRAPH_MAX_TOKENS",
    "max_page_size": "CERTGRAPH_MAX_PAGE_SIZE",
    "max_query_cost": "CERTGRAPH_MAX_QUERY_COST",
    "sqlite_busy_timeout_ms": "CERTGRAPH_SQLITE_BUSY_TIMEOUT_MS",
    "request_timeout_seconds": "CERTGRAPH_REQUEST_TIMEOUT",
    "header_timeout_seconds": "CERTGRAPH_HEADER_TIMEOUT",
    "rate_limit_per_minute": "CERTGRAPH_RATE_LIMIT_PER_MINUTE",
    "rate_limit_burst": "CERTGRAPH_RATE_LIMIT_BURST",
    "rate_limit_max_keys": "CERTGRAPH_RATE_LIMIT_MAX_KEYS",
    "rate_limit_cost_unit": "CERTGRAPH_RATE_LIMIT_COST_UNIT",
    "redis_url": "CERTGRAPH_REDIS_URL",
    "redis_timeout_seconds": "CERTGRAPH_REDIS_TIMEOUT",
    "redis_key_prefix": "CERTGRAPH_REDIS_PREFIX",
    "persisted_queries_only": "CERTGRAPH_PERSISTED_QUERIES_ONLY",
    "persisted_queries_file": "CERTGRAPH_PERSISTED_QUERIES_FILE",
    "persisted_queries_cache_size": "CERTGRAPH_PERSISTED_QUERIES_CACHE_SIZE",
    "persisted_queries_ttl_seconds": "CERTGRAPH_PERSISTED_QUERIES_TTL",
    "trusted_proxies": "CERTGRAPH_TRUSTED_PROXIES",
    "dispatcher_enabled": "CERTGRAPH_DISPATCHER",
    "subscriptions_max_connections": "CERTGRAPH_SUBSCRIPTIONS_MAX_CONNECTIONS",
    "subscriptions_max_per_connection": "CERTGRAPH_SUBSCRIPTIONS_MAX_PER_CONNECTION",
    "subscriptions_init_timeout_seconds": "CERTGRAPH_SUBSCRIPTIONS_INIT_TIMEOUT",
    "subscriptions_queue_size": "CERTGRAPH_SUBSCRIPTIONS_QUEUE_SIZE",
    "subscriptions_poll_seconds": "CERTGRAPH_SUBSCRIPTIONS_POLL_SECONDS",
    "event_max_attempts": "CERTGRAPH_EVENT_MAX_ATTEMPTS",
    "event_retry_base_seconds": "CERTGRAPH_EVENT_RETRY_BASE_SECONDS",
    "event_retry_max_seconds": "CERTGRAPH_EVENT_RETRY_MAX_SECONDS",
    "event_hook_timeout_seconds": "CERTGRAPH_EVENT_HOOK_TIMEOUT",
    "event_hook_threads": "CERTGRAPH_EVENT_HOOK_THREADS",
    "event_poll_seconds": "CERTGRAPH_EVENT_POLL_SECONDS",
    "event_concurrency": "CERTGRAPH_EVENT_CONCURRENCY",
    "event_retention_days": "CERTGRAPH_EVENT_RETENTION_DAYS",
    "webhook_timeout_seconds": "CERTGRAPH_WEBHOOK_TIMEOUT",
    "webhook_allow_private": "CERTGRAPH_WEBHOOK_ALLOW_PRIVATE",
    "due_soon_days": "CERTGRAPH_DUE_SOON_DAYS",
    "sweep_interval_seconds": "CERTGRAPH_SWEEP_INTERVAL_SECONDS",
    "oidc_issuer": "CERTGRAPH_OIDC_ISSUER",
    "oidc_audience": "CERTGRAPH_OIDC_AUDIENCE",
    "oidc_roles_claim": "CERTGRAPH_OIDC_ROLES_CLAIM",
    "oidc_admin_role": "CERTGRAPH_OIDC_ADMIN_ROLE",
    "oidc_manager_role": "CERTGRAPH_OIDC_MANAGER_ROLE",
    "oidc_leeway_seconds": "CERTGRAPH_OIDC_LEEWAY_SECONDS",
    "oidc_algorithms": "CERTGRAPH_OIDC_ALGORITHMS",
    "metrics_enabled": "CERTGRAPH_METRICS",
    "metrics_token": "CERTGRAPH_METRICS_TOKEN",
    "tracing": "CERTGRAPH_TRACING",
    # prometheus-client's own switch to multi-process mode, set by `certgraph serve --workers N`
    "metrics_multiprocess_dir": "PROMETHEUS_MULTIPROC_DIR",
}
_LISTS = {"cors_origins", "trusted_proxies", "oidc_algorithms"}
# Object storage (CERTGRAPH_STORAGE_URL=s3://...) takes the standard AWS variables; where two
# exist, the one in _ENV wins and this one is read when it is unset.
_ENV.update(
    {
        "storage_url": "CERTGRAPH_STORAGE_URL",
        "storage_presigned_downloads": "CERTGRAPH_STORAGE_PRESIGNED_DOWNLOADS",
        "aws_endpoint_url": "AWS_ENDPOINT_URL_S3",
        "aws_region": "AWS_REGION",
        "aws_access_key_id": "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
        "aws_session_token": "AWS_SESSION_TOKEN",
    }
)
_FALLBACKS = {"aws_endpoint_url": "AWS_ENDPOINT_URL", "aws_region": "AWS_DEFAULT_REGION"}


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read CERTGRAPH_* variables; an invalid value raises SettingsError naming the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, var in _ENV.items():
        value = env.get(var) or env.get(_FALLBACKS.get(field, ""))
        if value is None or value == "":
            continue
        if field in _LISTS:
            raw[field] = [o.strip() for o in value.split(",") if o.strip()]
        else:
            raw[field] = value
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_ENV.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(problems) from None


def check_sqlite_folder(url: str) -> None:
    """Refuse a SQLite URL whose folder is missing, naming the variable; only the default
    database's folder (./var) may be created for it."""
    if not url.startswith("sqlite://") or url == DEFAULT_DATABASE_URL:
        return
    path = url[len("sqlite://") :].split("?", 1)[0]
    if path == ":memory:" or path.startswith("file:"):
        return
    folder = Path(path).parent
    if not folder.is_dir():
        raise SettingsError(
            f"CERTGRAPH_DATABASE_URL: the folder of the SQLite file {path} does not exist "
            f"({folder}); create it, or point the URL at an existing folder"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
