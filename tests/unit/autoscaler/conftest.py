"""The Kubernetes API double and a kubernetes-asyncio client of it, for the autoscaler's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from loadtest.kube_api.server import KubeApiServer


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    """The API server double on 127.0.0.1, empty."""
    async with KubeApiServer() as server:
        yield server


@pytest.fixture
async def api(kube: KubeApiServer) -> AsyncIterator[client.ApiClient]:
    """A client of ``kube``, configured the way the autoscaler builds its own."""
    c = client.ApiClient(client.Configuration(host=kube.url))
    yield c
    await c.close()
