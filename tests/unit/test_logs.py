"""Log records cross to the writer thread whole: message, structured fields, traceback."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import logging
from regcred.logs import configure_logging
configure_logging(log_format="json")
log = logging.getLogger("regcred.test")
log.info("patch %s %s", "serviceaccounts", "team-a/default", extra={"credential": "acme", "namespace": "team-a"})
try:
    {}["missing"]
except KeyError:
    log.exception("failed")
"""


def test_json_lines_keep_fields_and_tracebacks_through_the_writer_thread():
    # A process of its own: logging is configured once per process, and drained at exit.
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True)
    info, error = (json.loads(line) for line in result.stderr.splitlines())
    assert (info["message"], info["credential"], info["namespace"]) == (
        "patch serviceaccounts team-a/default", "acme", "team-a"
    )
    assert error["level"] == "error" and "KeyError: 'missing'" in error["exception"]
