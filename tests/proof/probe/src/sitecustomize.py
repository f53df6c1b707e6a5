"""Loaded by every Python process of the proof suite's servers (their PYTHONPATH has it).

With $CERTGRAPH_PROOF_LOG_LEVEL set, every logger of the process writes to stderr at that
level (DEBUG includes Tortoise's SQL with its parameters), so the suite can search the whole
log for secrets. uvicorn configures only its own loggers and leaves the root one alone.
"""

import logging
import os
import sys

if os.environ.get("CERTGRAPH_PROOF_LOG_LEVEL"):
    logging.basicConfig(
        level=os.environ["CERTGRAPH_PROOF_LOG_LEVEL"].upper(),
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
