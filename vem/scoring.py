"""Scoring one video: its storyboard, its soundtrack's beats, and the alignment metrics → a score row.

The row follows the Score row contract of DESIGN.md: ``id``, ``uri``, ``status`` (ok|error),
``error``, ``warning``, ``duration_s``, ``n_shots``, ``tempo_bpm``, ``transitions``,
``transition_kinds``, ``beats``, ``downbeats`` and one column per metric of :mod:`vem.metrics`.
A video without an audio track is scored (status ok) with the rhythm metrics null and the reason
in ``warning``; a video that cannot be parsed gives status error and the reason. Semantic
scores need a joint video-music embedder; without one they are null and ``semantic_note`` says
so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vem import metrics
from vem.audio import AudioError, analyze_audio, load_audio
from vem.storyboard import ParseConfig, VideoError, parse_video

__all__ = ["METRIC_COLUMNS", "error_row", "score_video"]

METRIC_COLUMNS = ("tbiou", "tbiou_tight", "cut_beat_hit", "cut_beat_align", "bas", "bhs", "bcs", "biou",
                  "semantic", "tw_semantic")
NO_EMBEDDER = "no joint video-music embedder configured: semantic scores not computed"


def error_row(id: str, uri: str, error: str) -> dict[str, Any]:
    """The row of an input that could not be scored."""
    row: dict[str, Any] = {"id": id, "uri": uri, "status": "error", "error": error, "warning": None,
                           "duration_s": None, "n_shots": None, "tempo_bpm": None, "transitions": None,
                           "transition_kinds": None, "beats": None, "downbeats": None, "semantic_note": None,
                           "seconds": None}
    row.update({k: None for k in METRIC_COLUMNS})
    return row


def rhythm_metrics(cuts: np.ndarray, beats: np.ndarray) -> dict[str, float]:
    """The video-vs-music rhythm metrics of one soundtrack (both event lists non-empty)."""
    return {
        "tbiou": metrics.tbiou(cuts, beats), "tbiou_tight": metrics.tbiou_tight(cuts, beats),
        "cut_beat_hit": metrics.cut_beat_hit(cuts, beats), "cut_beat_align": metrics.cut_beat_align(cuts, beats),
        "bas": metrics.bas(beats, cuts), "bhs": metrics.bhs(cuts, beats), "bcs": metrics.bcs(cuts, beats),
    }


def score_video(
    id: str, uri: str, data: bytes, *, config: ParseConfig | None = None,
    encoder: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Score one video given its bytes; never raises for a bad video (returns an error row)."""
    t0 = time.time()
    try:
        board = parse_video(data, config, encoder)
    except VideoError as e:
        return error_row(id, uri, f"video: {e}")
    row: dict[str, Any] = {
        "id": id, "uri": uri, "status": "ok", "error": None, "warning": None,
        "duration_s": board.duration_s, "n_shots": board.n_shots, "tempo_bpm": None,
        "transitions": [round(float(t), 4) for t in board.transitions], "transition_kinds": list(board.transition_kinds),
        "beats": None, "downbeats": None, "semantic_note": NO_EMBEDDER,
    }
    row.update({k: None for k in METRIC_COLUMNS})
    try:
        audio = analyze_audio(load_audio(data))
    except AudioError as e:
        row["warning"] = f"rhythm metrics not computed: {e}"
    else:
        cuts, beats = board.transitions, audio.beats
        row.update(tempo_bpm=audio.tempo_bpm, beats=[round(float(b), 4) for b in beats],
                   downbeats=[round(float(b), 4) for b in audio.downbeats])
        if len(cuts) and len(beats):
            row.update(rhythm_metrics(cuts, beats))
        elif not len(cuts):
            row["warning"] = "a single shot: no transitions to align with beats"
        else:
            row["warning"] = "no beats found in the soundtrack"
    row["seconds"] = round(time.time() - t0, 3)
    return row
