"""The guards in the order they wrap the app, built from one Settings object."""

from __future__ import annotations

from starlette.middleware import Middleware

from gql.http.authentication import AuthenticationMiddleware, Authenticator
from gql.http.headers import ApiHeadersMiddleware
from gql.http.multipart import MultipartGuardMiddleware
from gql.http.ratelimit import RateLimitMiddleware, TokenBucketLimiter
from gql.http.timeout import RequestTimeoutMiddleware
from gql.settings import Settings

GRAPHQL_PATH = "/graphql"


def guard_middleware(settings: Settings, authenticator: Authenticator) -> list[Middleware]:
    """Timeout outermost (it covers the rest); authentication before the rate limiter, which
    keys on the verified caller; the multipart scanner last, next to the form parser."""
    return [
        Middleware(ApiHeadersMiddleware, paths={GRAPHQL_PATH}),
        Middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds),
        Middleware(AuthenticationMiddleware, authenticator=authenticator, paths={GRAPHQL_PATH}),
        Middleware(
            RateLimitMiddleware,
            limiter=TokenBucketLimiter(
                per_minute=settings.rate_limit_per_minute,
                burst=settings.rate_limit_burst,
                max_keys=settings.rate_limit_max_keys,
            ),
        ),
        Middleware(MultipartGuardMiddleware),
    ]
