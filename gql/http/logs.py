"""Hide the signature of signed download URLs in uvicorn's access log: a signed URL is a
bearer credential for its file until it expires, and logs outlive that."""

from __future__ import annotations

import logging
import re

_SIGNATURE = re.compile(r"([?&]sig=)[^&\s]+")


class RedactSignatures(logging.Filter):
    """Replace `sig=...` in the access log line's arguments by `sig=[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install RedactSignatures on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())
