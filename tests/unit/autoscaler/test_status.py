"""The autoscaler's decision history, its structured decision line, its /status and its page,
and ``autoscaler explain``: a controller on a fake clock, served on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.controller import Controller, Target
from autoscaler.decider import Decision, Reason
from autoscaler.decision_log import DecisionEntry, DecisionHistory
from autoscaler.explain import describe, explain_main
from autoscaler.load import Cost, Observations
from autoscaler.main import main
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import ScalingSpec
from autoscaler.status import AutoscalerStatus, add_status_routes
from loadtest.stack.procs import HOST, free_port
from protos.logs import JsonFormatter
from tests.fakes.clock import Clock

T0 = 1_000.0
SPEC = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0, startup_s=7)


def _entry(at: float, desired: int, reason: Reason = Reason.STABLE) -> DecisionEntry:
    return DecisionEntry("m", at, SPEC, Observations(None, 1), Decision(desired, 1, reason))


def test_the_history_keeps_the_newest_tick_and_only_the_ticks_that_changed() -> None:
    history = DecisionHistory(keep=2)
    assert history.add(_entry(1, 2)) is True
    assert history.add(_entry(2, 2)) is False, "same count, same reason"
    assert history.add(_entry(3, 2, Reason.PANIC)) is True, "the reason changed"
    assert history.add(_entry(4, 3, Reason.PANIC)) is True
    latest = history.latest("m")
    assert latest is not None and latest.at == 4
    assert [e.at for e in history.changes("m")] == [4, 3], "newest first, the last two kept"
    assert history.changes("other") == [] and history.latest("other") is None


class Loop:
    """A report store and a dry-run controller (no scaler: the count follows the decision)."""

    def __init__(self) -> None:
        self.clock = Clock(T0)
        self.store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
        self.controller = Controller(
            targets=[Target("m", "models", "m-deploy", SPEC)],
            store=self.store,
            metrics=AutoscalerMetrics(),
            scaler=None,
            clock=self.clock,
        )
        self.seq = 0

    async def tick(self, at: float, rows: int, ready: int = 1) -> None:
        self.clock.now = T0 + at
        self.seq += 1
        report = GatewayReport(
            replica_id="gw-1",
            model="m",
            seq=self.seq,
            interval_s=0.25,
            inflight_rows=rows,
            arrival_rows_per_s=80.0,
            cost=Cost(0.01, 0.001),
            ready_endpoints=ready,
        )
        self.store.record(report, self.clock.now)
        await self.controller.tick()


async def test_each_changed_decision_is_one_line_with_its_observations_and_windows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Loop()
    caplog.set_level(logging.INFO, logger="autoscaler.controller")
    await loop.tick(0, rows=10)
    await loop.tick(0.5, rows=10)  # unchanged: no line
    await loop.tick(1, rows=100)  # demand 1, 1 and 10 pods: 4 on average
    lines = [r for r in caplog.records if getattr(r, "event", None) == "scale_decision"]
    assert [(r.current, r.desired) for r in lines] == [(1, 1), (1, 4)]  # type: ignore[attr-defined]
    doc = orjson.loads(JsonFormatter().format(lines[-1]))
    assert doc["message"].startswith("model m: 1 -> 4 (")
    assert doc["reason"] == lines[-1].reason  # type: ignore[attr-defined]
    load = doc["observations"]["load"]
    assert (load["inflight_rows"], load["arrival_rows_per_s"], load["fixed_s"]) == (100, 80.0, 0.01)
    assert doc["observations"]["current_replicas"] == 1
    assert doc["windows"]["stable_window_s"] == SPEC.stable_window_s
    assert doc["windows"]["panic_window_s"] == SPEC.panic_window_s


def _status(loop: Loop) -> AutoscalerStatus:
    return AutoscalerStatus(
        controller=loop.controller,
        store=loop.store,
        identity="as-1",
        is_leader=lambda: True,
        dry_run=True,
        clock=loop.clock,
    )


async def test_the_status_has_the_replicas_the_start_up_and_the_decisions_newest_first() -> None:
    loop = Loop()
    await loop.tick(0, rows=10)
    await loop.tick(1, rows=70, ready=2)  # demand 1 and 7 pods: 4 on average
    loop.clock.now = T0 + 3
    doc = _status(loop).read(decisions=5)
    assert (doc["identity"], doc["leader"], doc["dry_run"]) == ("as-1", True, True)
    (m,) = doc["models"]
    assert (m["model"], m["namespace"], m["deployment"]) == ("m", "models", "m-deploy")
    assert (m["desired"], m["current"], m["ready"]) == (4, 1, 2)
    assert m["startup"] == {
        "estimate_s": 7.0,
        "learnt": False,
        "prior_s": 7.0,
        "samples_s": [],
        "scale_up_waiting_s": None,
    }
    assert m["gateways"] == ["gw-1"]
    assert [(d["current"], d["desired"], d["age_s"]) for d in m["decisions"]] == [
        (1, 4, 2.0),
        (1, 1, 3.0),
    ]
    assert _status(loop).read(decisions=1)["models"][0]["decisions"][0]["desired"] == 4


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Loop]]:
    """The status routes of a controller that has decided twice, on a loopback port."""
    loop = Loop()
    await loop.tick(0, rows=10)
    await loop.tick(1, rows=70)
    app = web.Application()
    add_status_routes(app, _status(loop))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    yield f"http://{HOST}:{port}", loop
    await runner.cleanup()


async def test_the_page_and_its_json_are_served(served: tuple[str, Loop]) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            page = await resp.text()
        assert 'fetch("status"' in page and "setTimeout(poll, 1000)" in page
        async with session.get(f"{url}/status?decisions=1") as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            assert resp.headers["Cache-Control"] == "no-store"
            doc = await resp.json()
        assert len(doc["models"][0]["decisions"]) == 1
        for bad in ("0", "x", "-1", "1.5"):
            async with session.get(f"{url}/status", params={"decisions": bad}) as resp:
                assert resp.status == 400
                assert "decisions must be a whole number" in await resp.text()


async def test_explain_prints_the_last_decisions_with_their_inputs(
    served: tuple[str, Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = served
    code = await asyncio.to_thread(explain_main, ["m", "--url", url, "-n", "1"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("model m (models/m-deploy, patch): desired 4, current 1")
    assert "pod start-up 7.0 s (the prior)" in lines[1] and "as-1 (leader) (dry run)" in lines[1]
    assert len(lines) == 3, "the one decision asked for"
    assert ": 1 -> 4 (" in lines[2]
    assert "in flight 70 rows" in lines[2] and "arrivals 80.0 rows/s" in lines[2]
    assert "cost F 10.00 ms + c 1.00 ms per row" in lines[2]


async def test_explain_as_json_gives_the_decisions_and_their_inputs(
    served: tuple[str, Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = served
    assert await asyncio.to_thread(explain_main, ["m", "--url", url, "--json"]) == 0
    decisions = orjson.loads(capsys.readouterr().out)
    assert [d["desired"] for d in decisions] == [4, 1]
    assert decisions[0]["observations"]["load"]["inflight_rows"] == 70


async def test_explain_names_an_unknown_model_and_the_ones_there_are(
    served: tuple[str, Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = served
    assert await asyncio.to_thread(explain_main, ["nope", "--url", url]) == 1
    assert "scales no model 'nope' (it scales: m)" in capsys.readouterr().err


def test_explain_without_an_autoscaler_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://{HOST}:{free_port()}"
    assert explain_main(["m", "--url", url, "--timeout-s", "2"]) == 1
    assert f"no status from {url}" in capsys.readouterr().err


def test_describe_says_when_there_is_no_decision_or_no_report() -> None:
    history = DecisionHistory()
    history.add(_entry(0, 1, Reason.HOLD_NO_DATA))
    status = {
        "identity": "a",
        "leader": False,
        "dry_run": False,
        "models": [
            {
                "model": "m",
                "namespace": "n",
                "deployment": "d",
                "actuation": "keda",
                "desired": 1,
                "current": 1,
                "ready": None,
                "reason": "hold_no_data",
                "panicking": False,
                "startup": {"estimate_s": 3.0, "learnt": True, "samples_s": [3.0]},
                "gateways": [],
                "decisions": [history.changes("m")[0].fields(now=1.0)],
            }
        ],
    }
    text = describe(status, "m", 5)
    assert "learnt from 1" in text and "(standby)" in text and "gateways none" in text
    assert "no live report" in text
    status["models"][0]["decisions"] = []  # type: ignore[index]
    assert describe(status, "m", 5).endswith("no decision yet")


async def test_the_autoscaler_command_runs_explain_as_a_sub_command(
    served: tuple[str, Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = served
    with pytest.raises(SystemExit) as exit_:
        await asyncio.to_thread(main, ["explain", "m", "--url", url])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("model m (models/m-deploy, patch)")
