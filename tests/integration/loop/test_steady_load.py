"""A steady load a little over one pod's limit (1.1 times) scales the Deployment to two pods, and
two is where it stays: with a 10 s stable window and 10 s scale-down stabilization, the
replicas sampled through the 30 s after reaching two are all two (no flapping back to one,
no creeping up to three).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.loop.loop_stack import SLOW, Load, Stack, eventually, stack_of

RATE = 1.1 * SLOW.pod.limit_rows_s  # one-row requests a second
SCALING = {"stable_window_s": 10, "scale_down_stabilization_s": 10, "restart_hold_s": 10}
HOLD_S = 30.0
SAMPLE_S = 0.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory.mktemp("steady"), scaling=SCALING) as stack:
        yield stack


@pytest.fixture(scope="module")
def load(stack: Stack) -> Iterator[Load]:
    with Load(stack.gateway.http_url, RATE) as load:
        yield load


def test_the_loop_starts_on_one_pod(stack: Stack) -> None:
    assert stack.replicas() == 1


def test_a_load_over_one_pods_limit_scales_to_two(stack: Stack, load: Load) -> None:
    eventually(lambda: stack.replicas() >= 2, "a scale-up")
    assert stack.replicas() == 2
    eventually(lambda: stack.ready() == 2, "two ready pods")


def test_two_pods_hold_through_the_windows(stack: Stack, load: Load) -> None:
    samples = []
    for _ in range(int(HOLD_S / SAMPLE_S)):
        samples.append(stack.replicas())
        time.sleep(SAMPLE_S)
    print(f"replicas sampled every {SAMPLE_S:g} s over {HOLD_S:g} s: {samples}")
    assert set(samples) == {2}, samples
