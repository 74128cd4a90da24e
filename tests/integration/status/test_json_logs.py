"""``--log-format json`` on the real processes: every line the gateway and the autoscaler write
is one JSON object, and the autoscaler's decision lines carry their inputs as fields."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from loadtest.stack.procs import HOST, Proc, free_port, running, start_gateway, start_pod, wait_http
from tests.integration.status.stack import autoscaler_config


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON (a line that is not JSON fails the test)."""
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _decision_with_load(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    for line in lines:
        if line.get("event") == "scale_decision" and line["observations"]["load"] is not None:
            return line
    return None


def test_both_services_write_json_lines_and_the_decisions_carry_their_inputs(
    tmp_path: Path,
) -> None:
    config = tmp_path / "autoscaler.yaml"
    grpc_port, metrics_port = free_port(), free_port()
    server = {"host": HOST, "grpc_port": grpc_port, "metrics_port": metrics_port}
    config.write_text(yaml.safe_dump({**autoscaler_config(), "server": server}))
    auto_log, gw_log = tmp_path / "autoscaler.log", tmp_path / "gateway.log"
    script = str(Path(sys.executable).parent / "autoscaler")
    with auto_log.open("wb") as out:
        popen = subprocess.Popen(
            [script, "--config", str(config), "--log-format", "json", "--log-level", "info"],
            stdout=out,
            stderr=out,
        )
    with running(Proc("autoscaler", popen)):
        wait_http(f"http://{HOST}:{metrics_port}/healthz", proc=popen)
        pod = start_pod()
        with running(pod), gw_log.open("wb") as out:
            reporting = {"address": f"{HOST}:{grpc_port}", "report_interval_ms": 100}
            gateway = start_gateway(
                [{"name": "sim", "endpoints": [pod.grpc_address]}],
                extra={"autoscaler": reporting},
                args=["--log-format", "json"],
                stdout=out,
            )
            with running(gateway):
                deadline = time.monotonic() + 30  # bounds a hang; not a timing check
                while _decision_with_load(_lines(auto_log)) is None:
                    assert time.monotonic() < deadline, "no decision made on a report"
                    time.sleep(0.1)
    decision = _decision_with_load(_lines(auto_log))
    assert decision is not None
    assert decision["logger"] == "autoscaler.controller" and decision["level"] == "INFO"
    assert decision["message"].startswith("model sim: ")
    assert {"current", "desired", "reason", "stable_pods", "panic_pods"} <= decision.keys()
    load = decision["observations"]["load"]
    assert (
        load["reporters"] == 1
        and {"queued_rows", "inflight_rows", "ready_endpoints"} <= load.keys()
    )
    assert decision["windows"]["stable_window_s"] == 2.0
    gateway_lines = _lines(gw_log)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in gateway_lines)
    assert any(line["message"].startswith("serving sim on ") for line in gateway_lines)
