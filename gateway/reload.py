"""Live config reload: on SIGHUP or when the file changes, validate and swap it in atomically."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.core import Gateway

__all__ = ["ConfigReloader"]

log = logging.getLogger(__name__)


class ConfigReloader:
    """Watches a config file (by modification time and size) and applies valid changes.

    A file that fails validation is rejected with the reason, and the config in force stays.
    """

    def __init__(
        self,
        gateway: Gateway,
        path: str | Path,
        *,
        interval_s: float = 1.0,
        overrides: dict[str, object] | None = None,
    ) -> None:
        self._gateway = gateway
        self._path = Path(path)
        self._interval = interval_s
        self._overrides = overrides or {}
        self._stamp = self._read_stamp()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _with_overrides(self, config: GatewayConfig) -> GatewayConfig:
        if not self._overrides:
            return config
        server = config.server.model_copy(update=self._overrides)
        return config.model_copy(update={"server": server})

    async def reload(self, why: str) -> bool:
        """Load, validate and apply the file now; False when it was rejected."""
        async with self._lock:
            self._stamp = self._read_stamp()
            try:
                config = self._with_overrides(load_config(self._path))
            except ConfigError as exc:
                log.error("config reload (%s) rejected, keeping the config in force: %s", why, exc)
                return False
            try:
                changes = await self._gateway.apply(config)
            except ValueError as exc:  # e.g. a tenant's key file that cannot be read
                log.error("config reload (%s) rejected, keeping the config in force: %s", why, exc)
                return False
            log.info(
                "config reloaded (%s): %s", why, "; ".join(changes) if changes else "no changes"
            )
            return True

    def start(self) -> None:
        """Watch the file (unless the interval is 0: then only reload() reloads)."""
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            stamp = self._read_stamp()
            if stamp is not None and stamp != self._stamp:
                await self.reload("file changed")
            for change in self._gateway.tenants.refresh():  # the tenants' key files
                log.info("API keys reloaded: %s", change)
