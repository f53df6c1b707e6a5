"""A plugin the proof suite installs into its server processes (never shipped).

- Every event is appended as one JSON line to $CERTGRAPH_PROOF_EVENT_LOG:
  {"pid", "id", "type", "data"} (data as a webhook receives it, camelCase with global IDs;
  pid is the delivering dispatcher's process). One write() on an O_APPEND descriptor per
  event: lines from several processes never interleave, so the test counts events across
  processes.
- With $CERTGRAPH_PROOF_HOOK_STARTED_LOG set, the hook first appends {"pid", "id", "type"}
  there: the test sees a delivery in flight (before the slow part below).
- With $CERTGRAPH_PROOF_SLOW_HOOK_SECONDS set, the hook (a plain, blocking `def`) sleeps that
  long with time.sleep before logging: what a plugin doing blocking I/O does.
- With $CERTGRAPH_PROOF_CRASH_AFTER_BLOB set, an upload whose file name contains that marker
  kills its process (SIGKILL) right after its blob is in place and before its row commits:
  the crash the storage order is designed for.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from gql import Event, hookimpl

EVENT_LOG_VAR = "CERTGRAPH_PROOF_EVENT_LOG"
STARTED_LOG_VAR = "CERTGRAPH_PROOF_HOOK_STARTED_LOG"
SLOW_HOOK_VAR = "CERTGRAPH_PROOF_SLOW_HOOK_SECONDS"
CRASH_MARKER_VAR = "CERTGRAPH_PROOF_CRASH_AFTER_BLOB"


def _append(path: str, line: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


@hookimpl
def certgraph_event(event: Event) -> None:
    started = os.environ.get(STARTED_LOG_VAR)
    if started:
        _append(started, {"pid": os.getpid(), "id": str(event.id), "type": event.type})
    slow = float(os.environ.get(SLOW_HOOK_VAR) or 0)
    if slow > 0:
        time.sleep(slow)  # blocking on purpose: the hook runs on the dispatcher's thread pool
    path = os.environ.get(EVENT_LOG_VAR)
    if not path:
        return
    body = event.body()
    _append(
        path, {"pid": os.getpid(), "id": body["id"], "type": body["type"], "data": body["data"]}
    )


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
