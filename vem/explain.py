"""One video's timeline as a picture: frames, transitions, beats and which cuts land on a beat."""

from __future__ import annotations

import io

import numpy as np

from vem.audio import AudioError, analyze_audio, load_audio
from vem.metrics import TIGHT_TOLERANCE_S
from vem.storyboard import ParseConfig, parse_video

__all__ = ["timeline_png"]


def timeline_png(data: bytes, *, title: str = "", config: ParseConfig | None = None, n_thumbs: int = 12) -> bytes:
    """PNG bytes: a strip of frames over time; below it the transitions (green: a beat within
    0.1 s, red: none), the beats (grey ticks; downbeats darker) and the onset envelope."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    board = parse_video(data, config, keep_frames=True)
    assert board.frames is not None
    try:
        audio = analyze_audio(load_audio(data))
        beats, downbeats, env, note = audio.beats, audio.downbeats, audio.onset_envelope, f"{audio.tempo_bpm:.1f} BPM"
    except AudioError as e:
        beats, downbeats, env, note = np.zeros(0), np.zeros(0), np.zeros(0), f"no rhythm: {e}"
    dur = board.duration_s
    fig, (ax_img, ax) = plt.subplots(2, 1, figsize=(14, 4.6), gridspec_kw={"height_ratios": [1.2, 1]}, sharex=True)
    idx = np.linspace(0, len(board.frames) - 1, n_thumbs).round().astype(int)
    strip = np.concatenate([board.frames[i] for i in idx], axis=1)
    ax_img.imshow(strip, extent=(0, dur, 0, 1), aspect="auto")
    ax_img.set_yticks([])
    ax_img.set_title(f"{title}  ({dur:.1f} s, {board.n_shots} shots, {note})")
    if len(env):
        ax.plot(np.arange(len(env)) / board.fps, env, color="#bbbbbb", linewidth=0.8, label="onset envelope")
    for b in beats:
        ax.axvline(b, ymin=0, ymax=0.25, color="#888888", linewidth=0.8)
    for b in downbeats:
        ax.axvline(b, ymin=0, ymax=0.4, color="#333333", linewidth=1.2)
    for t, kind in zip(board.transitions, board.transition_kinds, strict=True):
        hit = len(beats) > 0 and float(np.min(np.abs(beats - t))) <= TIGHT_TOLERANCE_S
        ax.axvline(t, color="#2a9d3a" if hit else "#d62728", linewidth=2, linestyle="-" if kind == "hard" else "--")
        ax_img.axvline(t, color="white", linewidth=1)
    ax.set_xlim(0, dur)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([])
    ax.set_xlabel("time (s): transitions green = a beat within 0.1 s, red = none (dashed: gradual); grey ticks = beats")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
