"""certgraph's SQLite backend for Tortoise: transactions that take the write lock up front,
and a database file only its owner can read.

Named as the `engine` of SQLite connections by gql.store.db.tortoise_config.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Any

from tortoise.backends.base.client import ConnectionWrapper, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import OperationalError

from gql.store.statements import StatementLog

PRIVATE_FILE_MODE = 0o600


def make_private(path: str) -> None:
    """Create the database file (if new) readable by its owner only; SQLite gives its -wal and
    -shm files the database file's mode."""
    if path == ":memory:" or path.startswith("file:"):
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
    os.close(fd)
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            os.chmod(name, PRIVATE_FILE_MODE)


class _ImmediateTransaction(SqliteTransactionWrapper):
    """A transaction opened with BEGIN IMMEDIATE instead of a deferred BEGIN.

    A deferred transaction that reads and then writes fails at once with "database is
    locked" when another process wrote in between, whatever busy_timeout says; IMMEDIATE
    waits for the write lock (under busy_timeout) before its first read.
    """

    async def begin(self) -> None:
        try:
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # locked past busy_timeout: retrying() sees it
            raise OperationalError(str(exc)) from exc


class ImmediateSqliteClient(SqliteClient):
    """Tortoise's SQLite client, with write-lock-first transactions and a private file.

    It serialises its one connection with a lock of its own (statements outside a
    transaction wait while one is open), as Tortoise's client does with its own.
    """

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        # its transactions take the same; Tortoise calls only debug() on it
        self.log = StatementLog(self.log)  # type: ignore[assignment]
        self._certgraph_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()

    async def create_connection(self, with_db: bool) -> None:
        # Tortoise checks for a connection, then awaits opening one: two tasks making their
        # first query at once (the dispatcher's loop and its sweep, at start-up) would each
        # open one, and the one left behind kept a read snapshot: that process no longer saw
        # other processes' writes. One opening at a time.
        async with self._connect_lock:
            if self._connection:
                return
            make_private(self.filename)
            await super().create_connection(with_db)

    def acquire_connection(self) -> ConnectionWrapper[Any]:
        return ConnectionWrapper(self._certgraph_lock, self)

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._certgraph_lock)


client_class = ImmediateSqliteClient
