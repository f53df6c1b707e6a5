"""Standard Webhooks signing (https://www.standardwebhooks.com): the secret's format and the
three headers, made with the `standardwebhooks` package so receivers verify with the same."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64


def new_secret() -> str:
    """A fresh signing secret: "whsec_" and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature_headers(secret: str, message_id: str, body: str, timestamp: int) -> dict[str, str]:
    """The webhook-id, webhook-timestamp and webhook-signature headers of one request: the
    signature is "v1," and the base64 HMAC-SHA256, keyed by the secret's bytes, of
    "<id>.<timestamp>.<body>". ValueError when the secret is not one (never says it)."""
    try:
        signer = Webhook(secret)
    except Exception:  # binascii.Error, an empty secret: never repeat the secret itself
        raise ValueError("the endpoint's signing secret is not a valid whsec_ secret") from None
    signature = signer.sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
