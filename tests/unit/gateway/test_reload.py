"""Live reload applies a model's failure-handling settings in place (no restart, no new pods),
and says which sections it cannot apply without a restart."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.core import Gateway


def _config(failures: int, percent: float) -> dict[str, object]:
    return {
        "models": [
            {
                "name": "sim",
                "endpoints": ["127.0.0.1:1"],
                "outlier_detection": {"consecutive_failures": failures},
                "retry_budget": {"percent": percent, "min_retries": 1},
            }
        ]
    }


async def test_reload_applies_outlier_detection_and_retry_budget() -> None:
    gateway = Gateway(parse_config(_config(5, 20.0)))
    runtime = gateway.models["sim"]
    pods = runtime.pods
    changes = await gateway.apply(parse_config(_config(2, 50.0)))
    assert gateway.models["sim"] is runtime and runtime.pods is pods  # updated in place
    assert any("consecutive_failures" in c for c in changes)
    assert pods.outliers.policy.consecutive_failures == 2
    assert (pods.retry_budget.percent, pods.retry_budget.floor) == (50.0, 1)


async def test_reload_reports_sections_fixed_at_start_and_keeps_them() -> None:
    first = _config(5, 20.0) | {"autoscaler": {"address": "127.0.0.1:9001"}}
    gateway = Gateway(parse_config(first))
    moved = _config(5, 20.0) | {
        "autoscaler": {"address": "127.0.0.1:9002"},
        "server": {"http_port": 18000},
    }
    changes = await gateway.apply(parse_config(moved))
    assert any(c.startswith("autoscaler: changes need a restart") for c in changes)
    assert any(c.startswith("server: changes need a restart") for c in changes)
    # the config in force (what /config and the next reload compare with) keeps the running ones
    assert gateway.config.autoscaler is not None
    assert gateway.config.autoscaler.address == "127.0.0.1:9001"
    assert gateway.config.server == parse_config(first).server
    assert await gateway.apply(parse_config(moved)) == [c for c in changes if "restart" in c]
