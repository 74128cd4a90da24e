"""``loadtest pace``: fixed Python work and a bare grpc.aio server's calls, counted per call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.benches import pace
from loadtest.benches.pace import grpc_call, python_work
from loadtest.cli import main


def test_the_bare_grpc_server_answers_every_call_and_its_switches_are_counted() -> None:
    figure = grpc_call(0.0, 30)
    assert (figure.what, figure.calls) == ("grpc.aio call", 30)
    # each call wakes the server from its wait: its threads switch beyond what idling costs
    assert figure.switches is not None and figure.switches > 0
    assert figure.idle_cpu_us is not None and figure.idle_cpu_us >= 0


def test_paced_python_work_sleeps_between_calls_and_back_to_back_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(pace.time, "sleep", slept.append)
    figure = python_work(0.002, 20)
    assert (figure.what, figure.pace_ms, figure.calls) == ("python work", 2.0, 20)
    assert slept == [0.002] * 20 and figure.switches is None
    slept.clear()
    assert python_work(0.0, 20).calls == 20 and slept == []


def test_the_command_reports_each_pace_for_both(tmp_path: Path) -> None:
    report = tmp_path / "pace.json"
    assert main(["pace", "--paces", "0,5", "--duration", "0.5", "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    got = {(f["what"], f["pace_ms"]) for f in doc["figures"]}
    assert got == {(w, p) for w in ("python work", "grpc.aio call") for p in (0.0, 5.0)}
