"""Webhook requests: Standard Webhooks signing, the address policy, the HTTP sender."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one webhook request went: `error` None means delivered (a 2xx answer)."""

    status_code: int | None
    error: str | None
