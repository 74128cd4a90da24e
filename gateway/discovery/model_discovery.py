"""One model's discovery at run time: an API client and its watcher, started and stopped."""

from __future__ import annotations

import asyncio
import logging
import random

from kubernetes_asyncio.client import ApiClient, DiscoveryV1Api

from gateway.backoff import Backoff
from gateway.config import DiscoverySettings
from gateway.discovery.client import api_client
from gateway.discovery.watcher import Publish, SliceWatcher
from gateway.tasks import cancel_and_wait

__all__ = ["ModelDiscovery"]

_WATCHER_FIELDS = {
    "namespace",
    "service",
    "port_name",
    "watch_timeout_s",
    "silence_timeout_s",
    "connect_timeout_s",
}

log = logging.getLogger(__name__)


class ModelDiscovery:
    """Watches the EndpointSlices of the model's Service and publishes each endpoint view."""

    def __init__(
        self,
        settings: DiscoverySettings,
        publish: Publish,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.watcher: SliceWatcher | None = None
        self._publish = publish
        self._backoff = Backoff(rng=rng or random.Random())
        self._task: asyncio.Task[None] | None = None
        self._client: ApiClient | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _run(self) -> None:
        s = self.settings
        while self._client is None:
            try:
                self._client = await api_client(s.kubeconfig)
            except Exception as exc:  # a bad or missing config: keep serving, keep trying
                delay = self._backoff.next()
                log.error(
                    "discovery of %s/%s: no API client (%s); again in %.1f s",
                    s.namespace,
                    s.service,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        self._backoff.reset()
        watched = s.model_dump(include=_WATCHER_FIELDS)  # the settings' names are the watcher's
        self.watcher = SliceWatcher(
            api=DiscoveryV1Api(self._client),
            publish=self._publish,
            backoff=self._backoff,
            **watched,
        )
        await self.watcher.run()
