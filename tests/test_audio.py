"""The beat tracker's novelty curve (spectral flux + harmonic change) and the tracker on legato chords.

The tracker was chosen on real scores rendered with a GM soundfont (``benchmarks/beat_real.py``);
these tests pin the properties that choice rests on: the harmonic change ignores loudness (a
tremolo is not a beat), peaks where the chord changes, and is zero over silence, and the whole
analysis follows a legato chord sequence under a tremolo at a known tempo.
"""

from __future__ import annotations

import mir_eval
import numpy as np

from vem.audio import SAMPLE_RATE, analyze_audio, onset_envelope


def _chroma(frames: int, classes: list[tuple[int, int]]) -> np.ndarray:
    """Chroma (12, frames) with pitch classes ``(class, first frame)``: each sounds until the next."""
    c = np.zeros((12, frames))
    starts = [s for _, s in classes] + [frames]
    for (pc, s), e in zip(classes, starts[1:], strict=True):
        c[pc, s:e] = 1.0
        c[(pc + 4) % 12, s:e] = 0.6
        c[(pc + 7) % 12, s:e] = 0.8
    return c


def test_harmonic_change_ignores_loudness_and_peaks_on_the_chord_change() -> None:
    frames = 400
    chroma = _chroma(frames, [(0, 0), (9, 250)])  # C major, then A major at frame 250
    tremolo = 1.0 + 0.8 * np.sin(2 * np.pi * np.arange(frames) / 23.0)  # loudness swells
    flux = np.zeros(frames)
    flux[[0, 250]] = 1.0
    env, unit = onset_envelope(flux, chroma * tremolo)
    change = env - flux / flux.std()
    assert unit.shape == (12, frames)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=0), 1.0, atol=1e-6)
    assert int(np.argmax(change)) == 250
    assert np.abs(np.delete(change, 250)).max() < 1e-6  # the tremolo alone changes nothing


def test_silence_has_no_harmonic_change() -> None:
    frames = 200
    chroma = _chroma(frames, [(2, 0), (7, 120)])
    chroma[:, 50:100] = 0.0  # a rest
    flux = np.random.default_rng(0).random(frames)
    env, _ = onset_envelope(flux, chroma)
    change = env - flux / flux.std()
    assert np.all(np.abs(change[50:101]) < 1e-6)  # into, inside and out of the rest: no harmony to compare
    assert int(np.argmax(change)) == 120


def test_beats_of_legato_chords_under_a_tremolo() -> None:
    """Chords crossfaded on every beat at 84 BPM (no gaps, no attacks), under a 5.3 Hz tremolo."""
    sr, bpm, dur = SAMPLE_RATE, 84.0, 16.0
    rng = np.random.default_rng(3)
    t = np.arange(int(dur * sr)) / sr
    bounds = np.arange(0.3, dur, 60.0 / bpm)
    edges = np.concatenate([[0.0], bounds, [dur]])
    y = np.zeros_like(t)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        gate = np.sin(np.pi / 2 * np.clip((t - a + 0.03) / 0.06, 0, 1) * np.clip((b + 0.03 - t) / 0.06, 0, 1))
        root = int(rng.choice([52, 53, 55, 57, 59, 60, 62]))
        for p in (root, root + int(rng.choice([3, 4])), root + 7, root + 12):
            y += 0.2 * gate * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t + rng.random() * 6.3)
    y *= 1 - 0.6 * (0.5 + 0.5 * np.sin(2 * np.pi * 5.3 * t))
    a = analyze_audio(y.astype(np.float32))
    ref, est = mir_eval.beat.trim_beats(bounds), mir_eval.beat.trim_beats(a.beats)
    assert mir_eval.beat.f_measure(ref, est) >= 0.95
    assert abs(a.tempo_bpm / bpm - 1) < 0.02  # not the tremolo's rate, not double or half
    assert len(a.downbeats) >= len(a.beats) // 4 - 1
    assert a.onset_envelope.shape == (int(dur * a.fps),) and float(a.onset_envelope.max()) == 1.0
