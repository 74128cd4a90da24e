"""What ``loadtest autoscale`` watches while a trace runs against the real loop.

``LoopSampler`` is the open-loop run's ``WindowProbe``: from the moment the measurement window
opens, a thread reads the Deployment from the API double (``spec.replicas``,
``status.readyReplicas``) and the autoscaler's count of scale patches
(``autoscaler_scale_changes_total{result="patched"}``) every ``period_s`` seconds, stamped in
seconds since the window opened, so the samples line up with the load's seconds.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["LoopSample", "LoopSampler", "api_server", "patched_count"]

_PATCHED = re.compile(
    r'^autoscaler_scale_changes_total\{[^}]*result="patched"[^}]*\}\s+([0-9.eE+-]+)', re.M
)


@dataclass(frozen=True, slots=True)
class LoopSample:
    """One reading: ``at_s`` after the window opened; None where a read failed."""

    at_s: float
    replicas: int | None  # spec.replicas
    ready: int | None  # status.readyReplicas
    patched: float | None  # the autoscaler's patches so far

    def as_list(self) -> list[float | int | None]:
        return [round(self.at_s, 3), self.replicas, self.ready, self.patched]


def api_server(kubeconfig: Path) -> str:
    """The API server URL of the kubeconfig's first cluster (the double: plain http)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    return str(doc["clusters"][0]["cluster"]["server"]).rstrip("/")


def patched_count(metrics_text: str) -> float:
    """The autoscaler's patched scale changes, summed over models (0 before the first)."""
    return sum(float(m.group(1)) for m in _PATCHED.finditer(metrics_text))


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bytes(resp.read())
    except OSError:
        return None


class LoopSampler:
    """Samples the Deployment and the autoscaler's patches from window open until stopped."""

    def __init__(
        self,
        *,
        deployment_url: str,
        autoscaler_metrics_url: str,
        period_s: float = 0.25,
    ) -> None:
        self.deployment_url = deployment_url
        self.metrics_url = autoscaler_metrics_url
        self.period_s = period_s
        self.samples: list[LoopSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="loop-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The window closed: one last sample, then the thread ends."""
        self._stop.set()

    def join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def sample(self) -> LoopSample:
        at = time.monotonic() - self._t0
        replicas = ready = None
        body = _get(self.deployment_url)
        if body is not None:
            obj = json.loads(body)
            replicas = int(obj.get("spec", {}).get("replicas") or 0)
            ready = int((obj.get("status") or {}).get("readyReplicas") or 0)
        text = _get(self.metrics_url)
        patched = None if text is None else patched_count(text.decode("utf-8", "replace"))
        return LoopSample(at, replicas, ready, patched)

    def _run(self) -> None:
        k = 0
        while True:
            self.samples.append(self.sample())
            if self._stop.is_set():
                return
            k += 1
            wait = self._t0 + k * self.period_s - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                self.samples.append(self.sample())
                return
