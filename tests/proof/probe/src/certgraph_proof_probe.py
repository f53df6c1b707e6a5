"""A plugin the proof suite installs into its server processes (never shipped).

- Every event is appended as one JSON line to $CERTGRAPH_PROOF_EVENT_LOG. One write() on an
  O_APPEND descriptor per event: lines from several worker processes never interleave, so
  the test counts events across processes.
- With $CERTGRAPH_PROOF_CRASH_AFTER_BLOB set, an upload whose file name contains that marker
  kills its process (SIGKILL) right after its blob is in place and before its row commits:
  the crash the storage order is designed for.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from gql import Event, hookimpl

EVENT_LOG_VAR = "CERTGRAPH_PROOF_EVENT_LOG"
CRASH_MARKER_VAR = "CERTGRAPH_PROOF_CRASH_AFTER_BLOB"


@hookimpl
def certgraph_event(event: Event) -> None:
    path = os.environ.get(EVENT_LOG_VAR)
    if not path:
        return
    line = {"pid": os.getpid(), "name": event.name, "payload": event.payload}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def _crash_after_blob(marker: str) -> None:
    from gql import files

    keep = files.StagedUpload.keep

    async def keep_then_die(self: Any) -> Any:
        stored = await keep(self)
        if marker in self.file.filename:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored

    files.StagedUpload.keep = keep_then_die  # type: ignore[method-assign]


if os.environ.get(CRASH_MARKER_VAR):
    _crash_after_blob(os.environ[CRASH_MARKER_VAR])
