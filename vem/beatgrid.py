"""The beat plan of TB-As: where a video's music should put its beats, read from its transitions.

An editor cuts on the beat, so a video's transitions already imply a pulse: :func:`plan_beats`
finds the constant tempo and phase whose beat grid passes closest to the transitions (each cut
scores exp(-d²/2σ²) by its distance d to the nearest grid beat), weighted by a log-normal tempo
prior around 120 BPM (one octave wide), the prior beat trackers use to choose between a tempo and
its double or half. A user's BPM fixes the tempo and leaves the phase to the cuts.

:func:`beat_channels` turns beat times into the per-frame features the adapter reads beside the
aligner's (``BEAT_CHANNELS``): a bump at each beat and the sine/cosine of the position between
two beats. In training they come from the clip's real beats (the music that is there); at
generation from the plan (the music that should be there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BEAT_CHANNELS", "BeatPlan", "beat_channels", "plan_beats"]

BEAT_CHANNELS = 3
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0
SIGMA_S = 0.03  # a cut within ~0.05 s of a beat counts as on it
MIN_BPM, MAX_BPM = 60.0, 200.0


@dataclass(frozen=True)
class BeatPlan:
    bpm: float
    beats: np.ndarray  # seconds, the grid over [0, duration]
    fit: float  # mean closeness of the transitions to the grid, 0..1 (1: every cut on a beat)


def plan_beats(transitions: np.ndarray | list[float], duration_s: float, *, bpm: float | None = None,
               n_tempi: int = 400) -> BeatPlan:
    """The beat grid that best carries ``transitions`` (seconds) over ``[0, duration_s]``."""
    cuts = np.asarray([t for t in np.asarray(transitions, np.float64).ravel() if 0.0 < t < duration_s])
    if bpm is not None:
        if not MIN_BPM / 4 <= bpm <= MAX_BPM * 2:
            raise ValueError(f"bpm must be in {MIN_BPM / 4:g}..{MAX_BPM * 2:g}, got {bpm}")
        tempi = np.array([float(bpm)])
    else:
        tempi = np.geomspace(MIN_BPM, MAX_BPM, n_tempi)
    periods = 60.0 / tempi
    prior = np.exp(-0.5 * (np.log2(tempi / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    if len(cuts) == 0:
        k = int(np.argmax(prior))
        return BeatPlan(float(tempi[k]), _grid(0.0, periods[k], duration_s), 0.0)
    anchors = cuts if len(cuts) <= 32 else cuts[np.linspace(0, len(cuts) - 1, 32).round().astype(int)]
    best_score = -1.0
    best: tuple[float, float, float] = (float(tempi[0]), 0.0, 0.0)
    for tempo, period, weight in zip(tempi, periods, prior, strict=True):
        # the grid passes through one of the cuts: try each as its phase
        offsets = (cuts[None, :] - anchors[:, None]) / period
        d = np.abs(offsets - np.round(offsets)) * period  # (anchors, cuts) distance to the nearest beat
        fits = np.exp(-0.5 * (d / SIGMA_S) ** 2).mean(axis=1)
        i = int(np.argmax(fits))
        if fits[i] * weight > best_score:
            best_score, best = float(fits[i] * weight), (float(tempo), float(anchors[i] % period), float(fits[i]))
    return BeatPlan(best[0], _grid(best[1], 60.0 / best[0], duration_s), best[2])


def _grid(phase: float, period: float, duration_s: float) -> np.ndarray:
    return np.arange(phase % period, duration_s + 1e-9, period)


def beat_channels(beats: np.ndarray | list[float], times: np.ndarray) -> np.ndarray:
    """``(BEAT_CHANNELS, len(times))``: a bump at each beat, sin and cos of the phase between beats.

    Before the first and after the last beat the nearest beat interval is continued; with fewer
    than two beats the channels are zero (no pulse to follow).
    """
    b = np.sort(np.asarray(beats, np.float64).ravel())
    t = np.asarray(times, np.float64)
    out = np.zeros((BEAT_CHANNELS, len(t)), np.float32)
    if len(b) < 2:
        return out
    i = np.clip(np.searchsorted(b, t, side="right") - 1, 0, len(b) - 2)
    lo, hi = b[i], b[i + 1]
    frac = (t - lo) / np.maximum(hi - lo, 1e-6)  # <0 before the first beat, >1 after the last
    period = hi - lo
    d = np.abs(frac - np.round(frac)) * period
    out[0] = np.exp(-0.5 * (d / SIGMA_S) ** 2)
    out[1] = np.sin(2 * np.pi * frac)
    out[2] = np.cos(2 * np.pi * frac)
    return out
