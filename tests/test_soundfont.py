"""Notes rendered with the General MIDI soundfont that pretty_midi ships (vem.soundfont)."""

from __future__ import annotations

import numpy as np
import pytest

from vem.soundfont import default_soundfont, render_notes


def test_a_scale_on_the_piano_sounds_where_its_notes_start() -> None:
    onsets = np.arange(8) * 0.5 + 0.25
    pitches = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    audio = render_notes(onsets, onsets + 0.3, pitches, np.full(8, 100), np.zeros(8, dtype=int), duration_s=4.5,
                         sample_rate=16_000)
    assert audio.shape == (72_000,) and audio.dtype == np.float32
    assert np.isclose(np.abs(audio).max(), 0.9, atol=1e-3)
    envelope = np.sqrt(np.convolve(audio**2, np.ones(160) / 160, mode="same"))[::160]  # 10 ms frames
    rise = np.diff(envelope)
    for t in onsets:  # the loudest rise within 30 ms of every onset, and silence before the first
        k = int(round(t * 100))
        assert rise[k - 3 : k + 3].max() > 0.5 * rise.max()
    assert envelope[:20].max() < 1e-3
    # the pitch is the note's: the spectrum of the first note peaks at middle C's fundamental or a harmonic
    first = audio[int(0.3 * 16_000) : int(0.5 * 16_000)]
    spectrum = np.abs(np.fft.rfft(first * np.hanning(len(first))))
    peak_hz = np.argmax(spectrum) * 16_000 / len(first)
    assert min(abs(peak_hz / 261.6 - round(peak_hz / 261.6)), 1) < 0.05


def test_each_program_plays_on_its_own_channel_and_bad_input_is_refused() -> None:
    organ = render_notes(np.array([0.1]), np.array([1.0]), np.array([60]), np.array([90]), np.array([19]), duration_s=1.2)
    piano = render_notes(np.array([0.1]), np.array([1.0]), np.array([60]), np.array([90]), np.array([0]), duration_s=1.2)
    assert not np.allclose(organ, piano)  # different instruments
    with pytest.raises(ValueError, match="differ in length"):
        render_notes(np.array([0.1, 0.2]), np.array([1.0]), np.array([60]), np.array([90]), np.array([0]), duration_s=1.0)
    assert default_soundfont().endswith("TimGM6mb.sf2")
