"""Fixtures of the control-plane tests: a control plane on loopback, its kubeconfig."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.control_plane.plane import ControlPlane
from tests.integration.loadtest.control_plane.plane_wait import SLOW, alive


@pytest.fixture
async def plane() -> AsyncIterator[ControlPlane]:
    """A control plane with slow pods in ``models``, no Deployment yet; no pod outlives it."""
    cp = ControlPlane(namespace="models", defaults=SLOW, pod_stdout=subprocess.DEVNULL)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()
    left = [pid for pid in cp.kubelet.pids if alive(pid)]
    assert not left, f"simpod processes left after stop: {left}"


@pytest.fixture
def kubeconfig(plane: ControlPlane, tmp_path: Path) -> Path:
    return plane.write_kubeconfig(tmp_path / "kubeconfig")
