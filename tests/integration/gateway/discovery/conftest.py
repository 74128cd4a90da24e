"""The Kubernetes API double and the gateway's own client of it, through a kubeconfig."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from gateway.discovery.client import api_client
from loadtest.kube_api.objects import write_kubeconfig
from loadtest.kube_api.server import KubeApiServer


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    """The API server double on 127.0.0.1, empty."""
    async with KubeApiServer() as server:
        yield server


@pytest.fixture
async def client(api: KubeApiServer, tmp_path: Path) -> AsyncIterator[ApiClient]:
    """A kubernetes-asyncio client of ``api``, built as the gateway builds its own."""
    c = await api_client(str(write_kubeconfig(tmp_path / "kubeconfig", api.url)))
    yield c
    await c.close()
