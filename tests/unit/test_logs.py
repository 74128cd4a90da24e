"""Structured logs: ``--log-format text|json`` and ``--log-level`` of the gateway and the
autoscaler (``protos.logs``, which both commands set up their logs with)."""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
from collections.abc import Iterator
from types import ModuleType

import orjson
import pytest

import autoscaler.main
import gateway.main
import protos.logs


@pytest.fixture
def logs() -> Iterator[ModuleType]:
    """The module under test; the root logger's handlers and level are put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield protos.logs
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(
    msg: str = "model %s: %d", args: tuple[object, ...] = ("sim", 3), **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("gateway.scheduler", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_holds_time_level_logger_message_and_the_extra_fields(
    logs: ModuleType,
) -> None:
    record = _record(request_id="r-1", rows=4, observations={"queued_rows": 7, "cost": None})
    doc = orjson.loads(logs.JsonFormatter().format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc.pop("time"))
    assert doc == {
        "level": "WARNING",
        "logger": "gateway.scheduler",
        "message": "model sim: 3",
        "request_id": "r-1",
        "rows": 4,
        "observations": {"queued_rows": 7, "cost": None},
    }


def test_a_json_line_carries_the_traceback_and_never_lets_a_field_replace_a_core_key(
    logs: ModuleType,
) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log = logging.getLogger("t")
        record = log.makeRecord("t", logging.ERROR, "f", 1, "failed", (), exc_info=sys.exc_info())
    record.__dict__.update(level="forged", logger="forged", when=object())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line, "one record, one line"
    doc = orjson.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == ("ERROR", "t", "failed")
    assert "RuntimeError: boom" in doc["exc"]
    assert doc["when"].startswith("<object object"), "an unknown type is written as its str"


def test_the_text_line_is_the_old_format_with_the_plain_fields_appended(logs: ModuleType) -> None:
    record = _record(request_id="r 1", rows=4, ok=True, observations={"queued_rows": 7})
    line = logs.TextFormatter().format(record)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING gateway.scheduler: model sim: 3 "
        r'request_id="r 1" rows=4 ok=True',
        line,
    ), line


def test_the_text_line_without_extra_fields_is_unchanged(logs: ModuleType) -> None:
    line = logs.TextFormatter().format(_record())
    assert line.endswith(" WARNING gateway.scheduler: model sim: 3")


def test_the_flags_default_to_text_at_info_and_take_a_level_in_any_case(logs: ModuleType) -> None:
    parser = argparse.ArgumentParser()
    logs.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.log_format, args.log_level) == ("text", "INFO")
    args = parser.parse_args(["--log-format", "json", "--log-level", "debug"])
    assert (args.log_format, args.log_level) == ("json", "DEBUG")


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["--log-format", "xml"], "'xml'"), (["--log-level", "loud"], "'loud'")],
)
def test_a_bad_flag_is_refused_naming_it(
    logs: ModuleType, argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    logs.add_arguments(parser)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and named in err


def test_configure_logs_json_lines_at_the_level_to_one_handler(logs: ModuleType) -> None:
    out = io.StringIO()
    logs.configure("json", "warning", stream=out)
    log = logging.getLogger("autoscaler.controller")
    log.info("not at this level")
    log.warning("model %s: %d -> %d", "sim", 1, 3, extra={"reason": "panic"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and len(logging.getLogger().handlers) == 1
    doc = orjson.loads(lines[0])
    assert (doc["message"], doc["reason"]) == ("model sim: 1 -> 3", "panic")


@pytest.mark.parametrize(("fmt", "level"), [("xml", "INFO"), ("json", "LOUD")])
def test_configure_refuses_an_unknown_format_or_level(
    logs: ModuleType, fmt: str, level: str
) -> None:
    with pytest.raises(ValueError, match="unknown log"):
        logs.configure(fmt, level)


def test_both_commands_take_the_log_flags() -> None:
    for parse in (gateway.main._parse, autoscaler.main._parse):
        args = parse(["--config", "x.yaml", "--log-format", "json", "--log-level", "debug"])
        assert (args.log_format, args.log_level) == ("json", "DEBUG")
