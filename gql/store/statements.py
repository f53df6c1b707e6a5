"""Counting the SQL statements a piece of work sends. certgraph's database clients
(gql.store.sqlite, gql.store.postgres) log through a StatementLog: each statement Tortoise logs
adds one to the current context's tally, and a log record is built only when the log wants it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["StatementLog", "StatementTally", "counting_statements"]


@dataclass(slots=True)
class StatementTally:
    statements: int = 0


# Tasks copy the context, so the statements of a request's resolvers count into its tally
# (the tally object itself is shared).
_current: ContextVar[StatementTally | None] = ContextVar("certgraph_statements", default=None)

# What the clients log at DEBUG besides statements.
_NOT_STATEMENTS = ("Created connection", "Closed connection")


@contextmanager
def counting_statements() -> Iterator[StatementTally]:
    """The statements sent in this context (and the tasks it starts) until it ends."""
    tally = StatementTally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


class StatementLog(logging.LoggerAdapter[logging.Logger]):
    """Tortoise's `tortoise.db_client` logger, counting what it is given at DEBUG."""

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        tally = _current.get()
        if tally is not None and not (isinstance(msg, str) and msg.startswith(_NOT_STATEMENTS)):
            tally.statements += 1
        if self.logger.isEnabledFor(logging.DEBUG):
            kwargs.setdefault("stacklevel", 2)  # the record names Tortoise's caller, not this
            self.logger.debug(msg, *args, **kwargs)
