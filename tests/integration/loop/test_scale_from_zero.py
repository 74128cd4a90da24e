"""Scale from zero: the first request to a model with no pod waits in the gateway and is
answered once the autoscaler has started one.

The Deployment starts at 0 replicas with ``min_replicas: 0``; the gateway has never seen a
pod, so it knows neither the model's tensors nor a pod to send to. The request (a 30 s
deadline, far beyond a pod's start-up) must count as queued demand in the gateway's report,
the autoscaler must scale 0 → 1 on it at once, and the request must get its answer (200),
not 503.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.loop.loop_stack import SLOW, Stack, eventually, stack_of

ROW = [float(i) for i in range(16)]  # the sim model: INPUT0 FP32 [16] per row, 2·x back


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = replace(SLOW, pods=0)
    tmp: Path = tmp_path_factory.mktemp("zero")
    with stack_of(tmp, config, scaling={"min_replicas": 0}) as stack:
        yield stack


def infer(url: str, timeout_ms: int) -> tuple[int, dict[str, Any]]:
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": ROW}]}
    request = urllib.request.Request(
        f"{url}/v2/models/sim/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Inference-Timeout-Ms": str(timeout_ms)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_ms / 1000 + 5) as resp:
            return resp.status, dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode()}


def test_the_deployment_starts_with_no_pod(stack: Stack) -> None:
    assert stack.replicas() == 0
    assert stack.ready() == 0


def test_the_first_request_is_answered_once_a_pod_is_scaled_up(stack: Stack) -> None:
    status, answer = infer(stack.gateway.http_url, timeout_ms=30_000)
    assert status == 200, answer
    (output,) = answer["outputs"]
    assert output["data"] == [2.0 * x for x in ROW]
    assert stack.replicas() == 1
    eventually(lambda: stack.decisions() > 0, "a decision counted")
