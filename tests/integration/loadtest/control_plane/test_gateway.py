"""The gateway, unchanged, finds the kubelet's pods through a kubeconfig and is answered by one."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from loadtest.control_plane.plane import ControlPlane
from loadtest.stack.procs import start_gateway


def infer(url: str) -> dict[str, object]:
    row = [float(i) for i in range(16)]  # the sim model: INPUT0 FP32 [16] per row, 2·x back
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": row}]}
    request = urllib.request.Request(
        f"{url}/v2/models/sim/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"HTTP {exc.code}: {exc.read().decode()}") from None


async def test_a_gateway_routes_to_a_pod_the_kubelet_started(
    plane: ControlPlane, kubeconfig: Path
) -> None:
    plane.add_deployment("sim", 1)
    model = {
        "name": "sim",
        "discovery": {
            "namespace": "models",
            "service": "sim",
            "port_name": "grpc",
            "kubeconfig": str(kubeconfig),
        },
    }
    gateway = await asyncio.to_thread(start_gateway, [model])  # returns once a pod is ready
    try:
        answer = await asyncio.to_thread(infer, gateway.http_url)
    finally:
        await asyncio.to_thread(gateway.stop)
    (output,) = answer["outputs"]  # type: ignore[misc]
    assert output["data"] == [2.0 * i for i in range(16)]
