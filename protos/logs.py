"""Log set-up for the ``gateway`` and ``autoscaler`` commands: text or JSON lines.

``add_arguments`` gives a command ``--log-format text|json`` and ``--log-level``;
``configure`` installs one stderr handler on the root logger. It lives in ``protos`` (the one
package both deployables share, DESIGN) because the JSON line is a contract of its own: the one
schema a log pipeline reads from every process of the system.

A JSON line holds ``time`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``message``, every field
the call passed as ``extra`` (``log.info("...", extra={"model": "sim"})``; a field named like
one of those four is dropped), and ``exc`` (the traceback) when there is one. The text format is
the one the commands always had, with the extra fields that are plain values (str, int, float,
bool, None) appended as ``key=value``; nested ones are in the JSON lines only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "add_arguments",
    "configure",
    "extra_fields",
]

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has: anything else on a record came in ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_CORE = ("time", "level", "logger", "message")
_PLAIN = (str, int, float, bool, type(None))
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed in ``extra``, in the order given."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {
            "time": when.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            if key not in _CORE:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str, option=_JSON_OPTIONS).decode()


def _plain(value: Any) -> str:
    if isinstance(value, str) and (not value or any(c in value for c in ' ="\n')):
        return orjson.dumps(value).decode()  # quoted, so the pairs still split on spaces
    return str(value)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then `` key=value`` per plain extra field."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{k}={_plain(v)}" for k, v in extra_fields(record).items() if isinstance(v, _PLAIN)
        ]
        if not pairs:
            return line
        head, sep, rest = line.partition("\n")  # a traceback stays below the line
        return f"{head} {' '.join(pairs)}{sep}{rest}"


def _level(text: str) -> str:
    level = text.upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"unknown log level {text!r}; expected one of {LEVELS}")
    return level


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log-format`` (text, the default, or json) and ``--log-level`` (INFO)."""
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="text lines (default) or JSON lines with time, level, logger, message and fields",
    )
    parser.add_argument(
        "--log-level",
        type=_level,
        default="INFO",
        help=f"the least severe level logged, one of {', '.join(LEVELS)} (default INFO)",
    )


def configure(log_format: str = "text", level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Log at ``level`` and above to ``stream`` (stderr) in ``log_format``; replaces any
    handler the root logger had."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; expected one of {FORMATS}")
    if level.upper() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {LEVELS}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
