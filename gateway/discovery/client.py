"""A Kubernetes API client from a kubeconfig file, or from the pod's service account."""

from __future__ import annotations

from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration

__all__ = ["api_client"]


async def api_client(kubeconfig: str | None) -> ApiClient:
    """A client of its own (the library's global default is left alone): ``kubeconfig`` names
    a file; None means in-cluster config (service account token and CA)."""
    configuration = Configuration()
    if kubeconfig:
        await config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
    else:
        config.load_incluster_config(client_configuration=configuration)
    return ApiClient(configuration=configuration)
