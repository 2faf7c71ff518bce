"""Notes rendered to audio with a General MIDI soundfont: real compositions, real instrument samples.

The renderer is TinySoundFont (``tinysoundfont`` on PyPI; install it with ``pip install --no-deps
tinysoundfont``: its ``pyaudio`` dependency is for live playback only), and the default soundfont
is ``TimGM6mb.sf2``, the small General MIDI bank that ships inside ``pretty_midi``. Nothing is
downloaded.

Conventions: times in seconds, pitches as MIDI numbers, programs as General MIDI numbers (0 =
acoustic grand piano, 19 = church organ, 40-42 = violin, viola, cello); output mono float32
at ``sample_rate`` Hz, peak-normalised to 0.9.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["default_soundfont", "render_notes"]


def default_soundfont() -> str:
    """Path of the General MIDI soundfont bundled with ``pretty_midi`` (TimGM6mb, 6 MB)."""
    import pretty_midi  # noqa: PLC0415

    path = os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no soundfont at {path}: reinstall pretty_midi, or pass soundfont=PATH to a .sf2 file")
    return path


def render_notes(onset_s: np.ndarray, end_s: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, program: np.ndarray,
                 *, duration_s: float, sample_rate: int = 16_000, soundfont: str | None = None) -> np.ndarray:
    """Render notes to ``(round(duration_s * sample_rate),)`` float32 mono audio.

    Parameters
    ----------
    onset_s, end_s : (n,) note starts and ends, seconds.
    pitch, velocity : (n,) MIDI pitch and velocity (1-127).
    program : (n,) General MIDI program of each note; each program plays on its own channel.
    duration_s : length of the output; notes past it are cut, the release of the last ones too.
    """
    try:
        import tinysoundfont  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("rendering needs tinysoundfont: pip install --no-deps tinysoundfont") from e
    n = len(onset_s)
    if not (len(end_s) == len(pitch) == len(velocity) == len(program) == n):
        raise ValueError(f"note arrays differ in length: {n}, {len(end_s)}, {len(pitch)}, {len(velocity)}, {len(program)}")
    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3.0)
    sfid = synth.sfload(soundfont or default_soundfont())
    programs = sorted({int(p) for p in program})
    channel_of = {}
    for i, p in enumerate(programs):
        channel = i % 15 + (1 if i % 15 >= 9 else 0)  # channel 9 is the drum kit
        channel_of[p] = channel
        synth.program_select(channel, sfid, 0, p)
    # events in time order; note-offs before note-ons at the same sample (a repeated note restrikes)
    events = sorted(
        [(int(round(e * sample_rate)), 0, channel_of[int(pr)], int(p), 0) for e, p, pr in zip(end_s, pitch, program, strict=True)]
        + [(int(round(o * sample_rate)), 1, channel_of[int(pr)], int(p), int(np.clip(v, 1, 127)))
           for o, p, v, pr in zip(onset_s, pitch, velocity, program, strict=True)]
    )
    total = int(round(duration_s * sample_rate))
    out = np.zeros(total, dtype=np.float32)
    now = 0
    for sample, on, channel, p, v in events:
        sample = min(sample, total)
        if sample > now:
            block = np.frombuffer(synth.generate_simple(sample - now), dtype=np.float32).reshape(-1, 2)
            out[now:sample] = block.mean(axis=1)
            now = sample
        if now >= total:
            break
        if on:
            synth.noteon(channel, p, v)
        else:
            synth.noteoff(channel, p)
    if now < total:
        out[now:] = np.frombuffer(synth.generate_simple(total - now), dtype=np.float32).reshape(-1, 2).mean(axis=1)
    peak = float(np.abs(out).max())
    return out * (0.9 / peak) if peak > 0 else out
