"""The beat plan of TB-As: a grid through the cuts, and the channels the adapter reads."""

from __future__ import annotations

import numpy as np
import pytest

from vem.beatgrid import BEAT_CHANNELS, beat_channels, plan_beats


@pytest.mark.parametrize("bpm", [72.0, 96.0, 123.0, 150.0])
def test_cuts_on_a_grid_give_that_grid(bpm: float) -> None:
    rng = np.random.default_rng(int(bpm))
    period, phase = 60.0 / bpm, 0.37
    beats = phase + period * np.arange(60)
    cuts = np.sort(rng.choice(beats[beats < 30], size=8, replace=False))
    plan = plan_beats(cuts, 30.0)
    assert plan.fit > 0.95
    assert np.abs(cuts[:, None] - plan.beats[None]).min(axis=1).max() < 0.02  # every cut on a planned beat
    ratio = plan.bpm / bpm
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.02  # the tempo, or its double or half


def test_off_grid_cuts_fit_worse_and_a_given_bpm_is_kept() -> None:
    rng = np.random.default_rng(0)
    scattered = np.sort(rng.uniform(0.5, 29.5, 12))
    on_grid = 0.2 + 0.5 * np.sort(rng.choice(58, 12, replace=False))
    assert plan_beats(scattered, 30.0).fit < plan_beats(on_grid, 30.0).fit
    plan = plan_beats(on_grid, 30.0, bpm=100.0)
    assert plan.bpm == 100.0 and np.allclose(np.diff(plan.beats), 0.6)
    assert plan_beats([], 10.0).bpm == pytest.approx(120.0, rel=0.01)  # no cuts: the prior's tempo


def test_beat_channels_peak_on_beats_and_carry_the_phase() -> None:
    beats = np.array([1.0, 1.5, 2.0, 2.5])
    times = np.array([1.0, 1.125, 1.25, 2.5, 3.0, 0.5])
    ch = beat_channels(beats, times)
    assert ch.shape == (BEAT_CHANNELS, len(times))
    assert ch[0, 0] == pytest.approx(1.0) and ch[0, 3] == pytest.approx(1.0) and ch[0, 4] == pytest.approx(1.0)
    assert ch[0, 2] < 1e-3  # halfway between two beats
    assert ch[1, 1] == pytest.approx(1.0) and ch[2, 2] == pytest.approx(-1.0)  # a quarter, a half of the way
    assert not beat_channels([1.0], times).any()  # one beat is no pulse
