"""The kubelet's pure decisions, as time tables: which pods start, drain, die and go."""

from __future__ import annotations

from loadtest.control_plane.reconcile import (
    Desired,
    Kill,
    Phase,
    PodView,
    Remove,
    Start,
    Terminate,
    deployment_status,
    reconcile,
)

GRACE_S = 10.0


def pod(name: str, phase: Phase, since: float = 0.0, created: float = 0.0) -> PodView:
    return PodView(name, phase, since, created)


def test_missing_replicas_are_started() -> None:
    assert reconcile(Desired(2, GRACE_S), [], now=0.0) == [Start(), Start()]


def test_pods_being_started_count_as_replicas() -> None:
    pods = [pod("a", Phase.PENDING), pod("b", Phase.STARTING)]
    assert reconcile(Desired(2, GRACE_S), pods, now=1.0) == []


def test_no_start_before_the_back_off_is_over() -> None:
    desired = Desired(1, GRACE_S, start_after=5.0)
    assert reconcile(desired, [], now=4.9) == []
    assert reconcile(desired, [], now=5.0) == [Start()]


def test_scale_down_drains_not_ready_pods_first_then_the_newest() -> None:
    pods = [
        pod("old", Phase.READY, created=1.0),
        pod("new", Phase.READY, created=2.0),
        pod("booting", Phase.STARTING, created=0.5),
    ]
    assert reconcile(Desired(1, GRACE_S), pods, now=3.0) == [
        Terminate("booting"),
        Terminate("new"),
    ]


def test_a_pending_pod_is_terminated_only_once_it_has_a_process() -> None:
    pods = [pod("a", Phase.PENDING)]
    assert reconcile(Desired(0, GRACE_S), pods, now=1.0) == []
    assert reconcile(Desired(0, GRACE_S), [pod("a", Phase.STARTING)], now=2.0) == [Terminate("a")]


def test_a_draining_pod_is_killed_when_its_grace_period_is_over() -> None:
    pods = [pod("a", Phase.TERMINATING, since=100.0)]
    assert reconcile(Desired(0, GRACE_S), pods, now=100.0 + GRACE_S - 0.1) == []
    assert reconcile(Desired(0, GRACE_S), pods, now=100.0 + GRACE_S) == [Kill("a")]


def test_a_draining_pod_is_not_a_replica_so_a_replacement_starts() -> None:
    pods = [pod("a", Phase.TERMINATING, since=1.0)]
    assert reconcile(Desired(1, GRACE_S), pods, now=2.0) == [Start()]


def test_an_exited_pod_is_removed_and_replaced() -> None:
    pods = [pod("a", Phase.EXITED), pod("b", Phase.READY)]
    assert reconcile(Desired(2, GRACE_S), pods, now=1.0) == [Remove("a"), Start()]


def test_status_counts_ready_and_leaves_out_terminating_pods_and_zeros() -> None:
    pods = [pod("a", Phase.READY), pod("b", Phase.STARTING), pod("c", Phase.TERMINATING)]
    status = deployment_status(3, 2, pods)
    assert status["observedGeneration"] == 3
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (2, 1, 1)
    assert status["unavailableReplicas"] == 1
    assert status["conditions"][0]["status"] == "False"
    empty = deployment_status(1, 0, [])
    assert "replicas" not in empty and "readyReplicas" not in empty
    assert empty["conditions"][0]["status"] == "True"
