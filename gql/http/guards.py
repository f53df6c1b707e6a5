"""The guards in the order they wrap the app, built from one Settings object."""

from __future__ import annotations

from starlette.middleware import Middleware

from gql.http.authentication import AuthenticationMiddleware, Authenticator
from gql.http.connection import RequestConnectionMiddleware
from gql.http.errors import InternalErrorMiddleware
from gql.http.headers import ApiHeadersMiddleware
from gql.http.multipart import MultipartGuardMiddleware
from gql.http.ratelimit import RateLimiter, RateLimitMiddleware, TokenBucketLimiter
from gql.http.redis_limiter import RedisRateLimiter
from gql.http.timeout import RequestTimeoutMiddleware
from gql.settings import Settings

GRAPHQL_PATH = "/graphql"


def rate_limiter(settings: Settings) -> RateLimiter:
    """Redis's buckets, shared by every process, when CERTGRAPH_REDIS_URL is set; else this
    process's own. The app factory builds it and closes it with its lifespan."""
    if settings.redis_url:
        return RedisRateLimiter.from_settings(settings, settings.redis_url)
    return TokenBucketLimiter(
        per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        max_keys=settings.rate_limit_max_keys,
    )


def guard_middleware(
    settings: Settings, authenticator: Authenticator, limiter: RateLimiter
) -> list[Middleware]:
    """A bug's 500 as a JSON error first (inside CORS, so a browser reads it); the timeout
    next (it covers the rest); authentication before the rate limiter, which keys on the
    verified caller; the multipart scanner last, next to the form parser."""
    return [
        Middleware(InternalErrorMiddleware),
        Middleware(ApiHeadersMiddleware, paths={GRAPHQL_PATH}),
        Middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds),
        # Inside the timeout, whose cancellation gives the connection back.
        Middleware(RequestConnectionMiddleware, paths={GRAPHQL_PATH}),
        Middleware(AuthenticationMiddleware, authenticator=authenticator, paths={GRAPHQL_PATH}),
        Middleware(RateLimitMiddleware, limiter=limiter),
        Middleware(MultipartGuardMiddleware),
    ]
