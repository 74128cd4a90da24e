"""The start-up estimator as a specification: samples from patch to ready on a fake clock."""

from __future__ import annotations

import pytest

from autoscaler.startup import DEFAULT_PRIOR_S, StartupEstimator, StartupSample

T0 = 1_000.0


def test_a_sample_runs_from_the_patch_to_the_ready_count_reaching_the_target() -> None:
    est = StartupEstimator()
    assert est.observe_patch("m", 2, 5, T0) is None
    assert est.pending_since("m") == T0
    assert est.observe_ready("m", 2, T0 + 1) is None
    assert est.observe_ready("m", 4, T0 + 3) is None
    sample = est.observe_ready("m", 5, T0 + 7.5)
    assert sample == StartupSample("m", 7.5, 2, 5, 5, partial=False)
    assert est.estimate("m") == 7.5
    assert est.pending_since("m") is None


def test_the_prior_is_the_estimate_until_a_sample_exists() -> None:
    est = StartupEstimator({"m": 12.0})
    assert est.estimate("m") == 12.0
    assert est.estimate("other") == DEFAULT_PRIOR_S
    est.observe_patch("m", 1, 2, T0)
    est.observe_ready("m", 1, T0 + 5)
    assert est.estimate("m") == 12.0, "no sample yet: still the prior"
    est.observe_ready("m", 2, T0 + 6)
    assert est.estimate("m") == 6.0


def test_a_superseding_scale_up_takes_a_partial_sample_to_the_last_rise() -> None:
    est = StartupEstimator()
    est.observe_patch("m", 2, 6, T0)
    est.observe_ready("m", 3, T0 + 4)
    est.observe_ready("m", 3, T0 + 5)
    sample = est.observe_patch("m", 6, 9, T0 + 6)
    assert sample == StartupSample("m", 4.0, 2, 6, 3, partial=True)
    assert est.estimate("m") == 4.0
    assert est.pending_since("m") == T0 + 6, "the new patch is measured from its own time"


def test_a_superseded_scale_up_without_a_new_ready_pod_gives_no_sample() -> None:
    est = StartupEstimator({"m": 9.0})
    est.observe_patch("m", 2, 4, T0)
    est.observe_ready("m", 2, T0 + 3)
    assert est.observe_patch("m", 4, 6, T0 + 4) is None
    assert est.samples("m") == ()


def test_a_scale_down_cancels_the_measurement() -> None:
    est = StartupEstimator({"m": 9.0})
    est.observe_patch("m", 2, 5, T0)
    est.observe_ready("m", 3, T0 + 2)
    assert est.observe_patch("m", 5, 3, T0 + 3) is None
    assert est.pending_since("m") is None
    assert est.observe_ready("m", 5, T0 + 4) is None
    assert est.estimate("m") == 9.0


def test_a_cancel_drops_the_pending_measurement() -> None:
    est = StartupEstimator({"m": 9.0})
    est.observe_patch("m", 1, 2, T0)
    est.observe_patch("n", 1, 2, T0)
    est.cancel("m")
    assert est.observe_ready("m", 2, T0 + 1) is None
    est.cancel()
    assert est.observe_ready("n", 2, T0 + 1) is None
    assert est.samples("m") == est.samples("n") == ()


def test_the_estimate_is_the_median_of_the_last_samples() -> None:
    est = StartupEstimator(keep=3)
    for i, seconds in enumerate([100.0, 4.0, 5.0, 60.0, 6.0]):
        at = T0 + 1000 * i
        est.observe_patch("m", 1, 2, at)
        est.observe_ready("m", 2, at + seconds)
    assert est.samples("m") == (5.0, 60.0, 6.0)
    assert est.estimate("m") == 6.0


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep"):
        StartupEstimator(keep=0)
