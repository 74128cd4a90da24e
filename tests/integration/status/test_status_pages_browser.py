"""The live status pages in a real browser: Debian's chromium, headless, driven by playwright.

Two simulated pods, a gateway and a dry-run autoscaler run as processes; the closed-loop generator
puts gRPC load on the gateway. The figures the pages show move with the load: idle, the
gateway's page shows no arrivals and no batch; under load, arrivals, requests per second and
the batches sent rise and the autoscaler's page asks for more replicas, with its decisions
listed; once the load ends, requests and batches per second fall to zero and the arrivals
(a decaying average) well below what they were. The gateway's page under load is
saved as a screenshot (``STATUS_PAGE_SCREENSHOT=docs/status-page.png`` writes it there too).
Skips, saying why, when chromium or playwright is not installed (``make test`` installs both).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.batching.policy import SEND_REASONS
from loadtest.clients.base import ClientSpec
from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
from loadtest.results.load_result import LoadResult
from tests.integration.status.stack import status_stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (make test installs it: apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

LOAD_S = 12.0  # the load's length: the checks under load are bounded well inside it
WAIT_MS = 10_000  # the longest any figure may take to move; bounds a hang, not a timing check
SIM = '[data-model="sim"]'


def _figure(field: str) -> str:
    return f"{SIM} [data-field={field!r}]"


def _number(page: Any, field: str) -> float:
    return float(page.text_content(_figure(field)).split("/")[0])


def _wait_number(page: Any, field: str, test: str) -> None:
    """Wait until the figure ``field`` passes ``test`` (a JS expression of ``x``)."""
    page.wait_for_function(
        f"""() => {{
            const el = document.querySelector({_figure(field)!r});
            if (!el) return false;
            const x = parseFloat(el.textContent);
            return {test};
        }}""",
        timeout=WAIT_MS,
    )


class _Load(threading.Thread):
    """The closed-loop generator, in a thread of its own, for ``LOAD_S`` seconds."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.spec = ClientSpec("grpc", target, verify_every=64, timeout_s=10.0)
        self.config = ClosedLoopConfig(
            concurrency=16, duration_s=LOAD_S, warmup_s=0.0, processes=0, drain_s=5.0
        )
        self.result: LoadResult | None = None

    def run(self) -> None:
        self.result = run_closed_loop(self.spec, self.config)


def test_the_pages_figures_move_with_the_load(tmp_path: Path) -> None:
    errors: list[str] = []
    with status_stack() as stack, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        gw = browser.new_page(viewport={"width": 1400, "height": 900})
        auto = browser.new_page(viewport={"width": 1400, "height": 900})
        for page in (gw, auto):
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        gw.goto(stack.gateway_page)
        auto.goto(stack.autoscaler_page)

        gw.wait_for_selector(_figure("arrival_rows_per_s"), timeout=WAIT_MS)
        assert _number(gw, "arrival_rows_per_s") == 0.0
        assert _number(gw, "batches_total") == 0
        assert gw.locator(_figure("pod_state")).all_text_contents() == ["ready", "ready"]
        auto.wait_for_selector(_figure("desired"), timeout=WAIT_MS)
        _wait_number(auto, "desired", "x === 1")

        load = _Load(stack.gateway.grpc_address)
        load.start()
        try:
            _wait_number(gw, "arrival_rows_per_s", "x > 0")
            arrivals = _number(gw, "arrival_rows_per_s")
            _wait_number(gw, "requests_per_s", "x > 0")
            sent = _number(gw, "batches_total")
            _wait_number(gw, "batches_total", f"x > {sent}")
            _wait_number(gw, "rows_per_batch", "x >= 1")
            _wait_number(auto, "desired", "x > 1")  # 16 rows in the system, 2 per pod
            decisions = auto.locator(f"{SIM} [data-field='decisions'] tr")
            assert decisions.count() >= 3, "a header and at least two decisions"
            shot = tmp_path / "status-page.png"
            gw.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 0
            if target := os.environ.get("STATUS_PAGE_SCREENSHOT"):  # for the docs: a
                gw.wait_for_timeout(LOAD_S * 400)  # longer device timeline than the checks need
                gw.screenshot(path=target, full_page=True)
        finally:
            load.join(timeout=LOAD_S + 30)
        assert load.result is not None and load.result.ok > 0
        assert not load.result.errors, load.result.error_sample

        # The load is gone: no request and no batch in the last second; the arrivals (a decaying
        # average) fall to a tenth of what they were.
        _wait_number(gw, "requests_per_s", "x === 0")
        _wait_number(gw, "batches_per_s", "x === 0")
        _wait_number(gw, "arrival_rows_per_s", f"x < {arrivals / 10}")
        # Every batch sent is counted under the batcher's reason to send it ("full 3, ...").
        sends = gw.text_content(_figure("batch_sends")) or ""
        assert sends not in ("", "none"), "no batch counted by its reason to send"
        counts = dict(item.rsplit(" ", 1) for item in sends.split(", "))
        assert set(counts) <= set(SEND_REASONS), sends
        assert sum(int(n) for n in counts.values()) == _number(gw, "batches_total")
        browser.close()
    assert not errors, errors
