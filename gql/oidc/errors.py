"""Why a token was refused: which check failed, in words a client developer can act on.

A message never contains the token or any part of it (claims included): the check is named,
and at most what certgraph is configured to expect.
"""

from __future__ import annotations

from enum import StrEnum


class Check(StrEnum):
    """The check a token failed (also what the log and the tests key on)."""

    MALFORMED = "malformed"
    ALGORITHM = "algorithm"
    UNKNOWN_KEY = "unknown_key"
    KEYS_UNAVAILABLE = "keys_unavailable"
    SIGNATURE = "signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    AUDIENCE = "audience"
    ISSUER = "issuer"
    MISSING_CLAIM = "missing_claim"
    INVALID = "invalid"


class TokenRejected(Exception):
    """The bearer token is not accepted; `str(exc)` says why (never echoing the token)."""

    def __init__(self, check: Check, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
