"""A scale-down drains the terminating pod: with load running while the Deployment goes from
two pods to one, every request is answered OK.

The autoscaler is absent: the test patches the scale subresource itself, as ``kubectl scale``
would. The kubelet marks the removed pod terminating in its EndpointSlice and stops it after
its grace period; the gateway stops sending to it and lets its batches in flight finish.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.integration.loop.loop_stack import SLOW, Load, Stack, eventually, stack_of

RATE = 0.5 * SLOW.pod.limit_rows_s  # one pod carries it alone


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = replace(SLOW, pods=2)
    with stack_of(tmp_path_factory.mktemp("drain"), config, autoscaler=False) as stack:
        eventually(lambda: stack.ready() == 2, "two ready pods")
        yield stack


def test_load_runs_through_a_scale_down_with_no_failed_request(stack: Stack) -> None:
    with Load(stack.gateway.http_url, RATE) as load:
        eventually(lambda: load.answers.ok > RATE, "a second of answers on two pods")
        stack.scale(1)
        eventually(lambda: stack.pods() == 1, "the terminating pod gone")
        served = load.answers.ok
        eventually(lambda: load.answers.ok > served + RATE, "a second of answers on one pod")
    answers = load.answers
    print(f"through 2 -> 1: {answers.ok} answered OK, errors {dict(answers.errors)}")
    assert not answers.errors, (dict(answers.errors), answers.sample)
    assert stack.replicas() == 1 and stack.ready() == 1
