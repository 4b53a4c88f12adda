"""Machine-readable output for schedulers: JSON log lines and the run summary as one object."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

from qovery_backups.pipeline import RunResult

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """Formats a log record as one JSON object on one line.

    Keys: `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, then
    `database_id` and any other field a call passed with `extra=`, and `exception` with the
    formatted traceback when the record has one.
    """

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
        document: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_RECORD_ATTRIBUTES and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        # `default=str` keeps a line valid JSON when an extra field is not serializable.
        return json.dumps(document, default=str, ensure_ascii=False)


def summary_document(result: RunResult, pipeline: Any, title: str, exit_code: int) -> dict[str, Any]:
    """Build the JSON form of a run summary: requests, rows per table and each database's outcome."""
    summary = result.summary
    stats = summary.requests
    return {
        "title": title,
        "pipeline": pipeline.pipeline_name,
        "dataset": pipeline.dataset_name,
        "destination": pipeline.destination.destination_name if pipeline.destination else None,
        "exit_code": exit_code,
        "requests": {field.name: getattr(stats, field.name) for field in fields(stats)},
        "rows": dict(sorted(result.row_counts.items())),
        "databases": [
            {
                "id": report.database_id,
                "name": report.name,
                "outcome": report.outcome,
                "pages": report.pages,
                "backups": report.rows,
                "stop_reason": report.stop_reason,
                "message": report.message,
                "cursor_before": report.cursor_before,
                "cursor_after": report.cursor_after,
            }
            for report in summary.databases.values()
        ],
    }
