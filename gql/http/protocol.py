"""uvicorn's httptools protocol with a header timeout: a connection whose request headers have
not all arrived within CERTGRAPH_HEADER_TIMEOUT seconds is closed (slowloris). uvicorn's own
keep-alive timeout stops counting as soon as the first byte of a request arrives."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("certgraph.guards")


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(
                self.header_timeout, self._header_timed_out
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info(
                "connection from %s closed: request headers incomplete after %.3g s "
                "(CERTGRAPH_HEADER_TIMEOUT)",
                self.client[0] if self.client else "unknown",
                self.header_timeout,
            )
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def header_timeout_protocol(seconds: float) -> Any:
    """The `http=` argument of uvicorn.run: uvicorn calls it as it calls a protocol class, and
    a partial pickles, so worker processes get it too."""
    return functools.partial(HeaderTimeoutProtocol, header_timeout=seconds)
