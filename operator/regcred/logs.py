"""Logging setup: human text, or one JSON object per line for log pipelines."""

from __future__ import annotations

import datetime
import json
import logging
import sys

__all__ = ["JsonFormatter", "configure_logging"]

# Fields callers attach with `extra=` that belong in the JSON document.
STRUCTURED_FIELDS = ("credential", "namespace", "reason")


class JsonFormatter(logging.Formatter):
    """Render a record as a single-line JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in STRUCTURED_FIELDS:
            if (value := getattr(record, field, None)) is not None:
                document[field] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure_logging(verbose: bool = False, log_format: str = "text") -> None:
    """Configure the root logger once, for the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Request-level chatter from the HTTP pool is noise even in verbose mode.
    logging.getLogger("urllib3").setLevel(logging.INFO)
