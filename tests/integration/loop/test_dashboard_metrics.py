"""Every metric the Grafana dashboard (deploy/components/monitoring) queries is exported by the
running loop: the gateway's and the autoscaler's metrics pages are scraped under load, and the
panels that show the loop's work read samples, not only declared families; and every family
the two pages declare is in docs/observability.md's reference."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import dashboard
from tests.integration.loop.loop_stack import SLOW, Load, Stack, eventually, stack_of

# Panels of a working loop that must hold values after a little load (failures and rejections
# may stay empty families: nothing failed).
WITH_SAMPLES = {
    "gateway_requests_total",
    "gateway_request_duration_seconds_bucket",
    "gateway_batch_rows_count",
    "gateway_batch_sends_total",
    "gateway_batch_cost_fixed_seconds",
    "gateway_pod_inflight_batches",
    "gateway_queue_rows",
    "autoscaler_desired_replicas",
    "autoscaler_current_replicas",
    "autoscaler_leader",
    "autoscaler_decisions_total",
    "autoscaler_report_staleness_seconds",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory.mktemp("dashboard")) as stack:
        yield stack


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _bad_request(url: str) -> None:
    """An inference the model refuses (an input it does not take): a failure by reason."""
    body = b'{"inputs": [{"name": "NOPE", "datatype": "FP32", "shape": [1], "data": [1]}]}'
    request = urllib.request.Request(f"{url}/v2/models/sim/infer", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400


@pytest.fixture(scope="module")
def pages(stack: Stack) -> list[str]:
    """The gateway's and the autoscaler's metrics pages after a little load and one failure."""
    assert stack.autoscaler is not None
    with Load(stack.gateway.http_url, 0.5 * SLOW.pod.limit_rows_s) as load:
        eventually(lambda: load.answers.ok >= 50, "answers under load")
        eventually(lambda: stack.decisions() > 0, "an autoscaler decision")
        _bad_request(stack.gateway.http_url)
        time.sleep(0.5)  # one more report interval, so the autoscaler's gauges hold the load
        return [_page(stack.gateway.metrics_url), _page(stack.autoscaler.metrics_url)]


def test_every_dashboard_metric_is_exported_by_the_running_loop(pages: list[str]) -> None:
    families: set[str] = set()
    samples: set[str] = set()
    for page in pages:
        declared, valued = dashboard.exported(page)
        families |= declared
        samples |= valued
    queried = dashboard.queried_metrics(dashboard.load())
    missing = {n for n in queried if n not in samples and dashboard.family(n) not in families}
    assert not missing, f"the dashboard queries metrics nobody exports: {sorted(missing)}"
    assert queried >= WITH_SAMPLES
    empty = WITH_SAMPLES - samples
    assert not empty, f"panels of a working loop without samples: {sorted(empty)}"


def test_every_exported_family_is_in_the_metrics_reference(pages: list[str]) -> None:
    doc = Path(__file__).resolve().parents[3] / "docs/observability.md"
    text = doc.read_text()
    ours = {f for page in pages for f in dashboard.exported(page)[0]}
    ours = {
        f for f in ours if f.startswith(("gateway_", "autoscaler_")) and not f.endswith("_created")
    }
    assert len(ours) >= 30  # both pages were read
    named = r"(?:_total|_info)?\b"
    undocumented = sorted(f for f in ours if not re.search(rf"\b{f}{named}", text))
    assert not undocumented, f"{doc.name} does not name {undocumented}"
