"""Metrics: hand-computed answers, empty and invalid inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vem import metrics


def test_event_iou_by_hand() -> None:
    # 1.0 matches 1.05; 2.0 and 3.0 have no partner within 0.1 s; 2.6 none either: m = 1
    assert metrics.event_iou([1.0, 2.0, 3.0], [1.05, 2.6], tolerance=0.1) == pytest.approx(1 / (3 + 2 - 1))
    # matching is one-to-one: two estimates near one reference count once
    assert metrics.event_iou([1.0], [0.95, 1.05], tolerance=0.1) == pytest.approx(1 / (1 + 2 - 1))
    assert metrics.tbiou([1.0, 2.0], [1.4, 2.45]) == 1.0  # the paper's 0.5 s sees both as hits
    assert metrics.tbiou_tight([1.0, 2.0], [1.4, 2.45]) == 0.0  # 0.1 s does not
    assert metrics.biou([0.5, 1.0, 1.5], [0.5, 1.0, 1.5]) == 1.0


def test_cut_beat_metrics_by_hand() -> None:
    beats = np.arange(0, 10, 0.5)
    assert metrics.cut_beat_hit([1.0, 2.02, 3.3], beats) == pytest.approx(2 / 3)
    assert metrics.cut_beat_align([1.0], beats) == pytest.approx(1.0)
    assert metrics.cut_beat_align([1.05], beats) == pytest.approx(math.exp(-0.5))  # d = sigma
    assert metrics.bas([1.0, 2.0], [1.0, 2.1]) == pytest.approx((1 + math.exp(-2)) / 2)  # d = 0, 2 sigma


def test_bhs_bcs_on_one_second_bins() -> None:
    ref = [0.2, 1.5, 2.5]  # bins 0, 1, 2
    est = [0.7, 2.1, 3.9, 3.95]  # bins 0, 2, 3
    assert metrics.bhs(ref, est) == pytest.approx(2 / 3)
    assert metrics.bcs(ref, est) == pytest.approx(2 / 3)


def test_empty_input_gives_zero_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="empty"):
        assert metrics.tbiou_tight([], [1.0]) == 0.0
    with pytest.warns(UserWarning, match="empty"):
        assert metrics.cut_beat_hit([1.0], []) == 0.0


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([2.0, 1.0], "sorted"),
        ([1000.0, 200000.0], "seconds"),
        ([-1.0, 2.0], "negative"),
        ([1.0, float("nan")], "NaN"),
        ([[1.0, 2.0]], "1-D"),
    ],
)
def test_invalid_events_are_refused(events: list, message: str) -> None:
    with pytest.raises(metrics.MetricError, match=message):
        metrics.cut_beat_hit(events, [1.0])


def test_semantic_scores() -> None:
    assert metrics.semantic_score([1, 0], [1, 0]) == pytest.approx(1.0)
    assert metrics.semantic_score([1, 0], [0, 1]) == pytest.approx(0.0)
    # shots weighted by duration: a 3 s shot that matches, a 1 s shot that is orthogonal
    assert metrics.tw_semantic_score([[1, 0], [1, 0]], [[1, 0], [0, 1]], [3.0, 1.0]) == pytest.approx(0.75)
    with pytest.raises(metrics.MetricError, match="one size"):
        metrics.semantic_score([1, 0], [1, 0, 0])


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 6)), rng.normal(size=(400, 6))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    near = metrics.frechet_distance(a, b)
    assert near < 0.3
    assert metrics.frechet_distance(a, a + 1.0) == pytest.approx(6.0)  # the means 1 apart in 6 dimensions
    spread = np.trace(np.cov(a, rowvar=False)) + a.mean(0) @ a.mean(0)  # tr(S + 4S - 2 * 2S) + |2 mu - mu|^2
    assert metrics.frechet_distance(a, a * 2.0) == pytest.approx(spread)
    with pytest.raises(metrics.MetricError, match="at least 2"):
        metrics.frechet_distance(a[:1], b)
    with pytest.raises(metrics.MetricError, match="one size"):
        metrics.frechet_distance(a, b[:, :3])
