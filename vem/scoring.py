"""Scoring one video: its storyboard, its soundtrack's beats, and the alignment metrics → a score row.

The row follows the Score row contract of DESIGN.md: ``id``, ``uri``, ``status`` (ok|error),
``error``, ``warning``, ``duration_s``, ``n_shots``, ``tempo_bpm``, ``transitions``,
``transition_kinds``, ``beats``, ``downbeats`` and one column per metric of :mod:`vem.metrics`.
A video without an audio track is scored (status ok) with the rhythm metrics null and the reason
in ``warning``; a video that cannot be parsed gives status error and the reason.

Semantic scores need a joint video-music embedder; without one they are null and
``semantic_note`` says so. A visual encoder (``encoder_dir``: CLIP/SigLIP) replaces the light
frame embedding and fills ``visual_embedding``: the video's unit-norm embedding (the shots' mean
embeddings, weighted by duration) in that model's image-text space, for search and de-duplication
of a catalog. With a CLAP model as well (``music_encoder_dir``; the visual encoder must then be a
full two-tower CLIP/SigLIP), :class:`vem.encoders.PromptBridge` makes the joint embedder:
``semantic`` compares the whole video with the whole soundtrack, ``tw_semantic`` each shot with
the music under it, weighted by shot duration (both cosines of concept distributions, in [0, 1]).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vem import metrics
from vem.audio import SAMPLE_RATE, AudioError, analyze_audio, load_audio
from vem.storyboard import ParseConfig, Storyboard, VideoError, parse_video

__all__ = ["METRIC_COLUMNS", "error_row", "score_video"]

METRIC_COLUMNS = ("tbiou", "tbiou_tight", "cut_beat_hit", "cut_beat_align", "bas", "bhs", "bcs", "biou",
                  "semantic", "tw_semantic")
NO_EMBEDDER = "no joint video-music embedder configured: semantic scores not computed"
VISUAL_ONLY = ("visual encoder only (no music encoder): visual_embedding filled; semantic scores need a joint "
               "video-music embedder, not computed")
BRIDGED = "joint embedder: CLIP/SigLIP image and CLAP audio bridged by {n} shared concepts (vem.encoders.PromptBridge)"


def error_row(id: str, uri: str, error: str) -> dict[str, Any]:
    """The row of an input that could not be scored."""
    row: dict[str, Any] = {"id": id, "uri": uri, "status": "error", "error": error, "warning": None,
                           "duration_s": None, "n_shots": None, "tempo_bpm": None, "transitions": None,
                           "transition_kinds": None, "beats": None, "downbeats": None, "semantic_note": None,
                           "visual_embedding": None, "seconds": None}
    row.update({k: None for k in METRIC_COLUMNS})
    return row


def rhythm_metrics(cuts: np.ndarray, beats: np.ndarray) -> dict[str, float]:
    """The video-vs-music rhythm metrics of one soundtrack (both event lists non-empty)."""
    return {
        "tbiou": metrics.tbiou(cuts, beats), "tbiou_tight": metrics.tbiou_tight(cuts, beats),
        "cut_beat_hit": metrics.cut_beat_hit(cuts, beats), "cut_beat_align": metrics.cut_beat_align(cuts, beats),
        "bas": metrics.bas(beats, cuts), "bhs": metrics.bhs(cuts, beats), "bcs": metrics.bcs(cuts, beats),
    }


@functools.lru_cache(maxsize=2)
def _image_encoder(folder: str) -> Callable[[np.ndarray], np.ndarray]:
    from vem.encoders import load_image_encoder  # noqa: PLC0415

    return load_image_encoder(folder)


@functools.lru_cache(maxsize=2)
def _bridge(image_folder: str, audio_folder: str) -> Any:
    from vem.encoders import load_prompt_bridge  # noqa: PLC0415

    return load_prompt_bridge(image_folder, audio_folder)


def shot_embeddings(board: Storyboard) -> np.ndarray:
    """``(n_shots, dim)``: the unit-norm mean of each shot's frame embeddings."""
    frame_shot = np.searchsorted(board.shot_starts, np.arange(len(board.embeddings)) / board.fps, side="right") - 1
    out = np.stack([board.embeddings[frame_shot == k].mean(axis=0) if np.any(frame_shot == k)
                    else board.embeddings[min(int(round(board.keyframe_times[k] * board.fps)), len(board.embeddings) - 1)]
                    for k in range(board.n_shots)])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def video_embedding(board: Storyboard) -> np.ndarray:
    """The video's unit-norm embedding: its shots' embeddings weighted by duration."""
    v = (shot_embeddings(board) * board.shot_durations[:, None]).sum(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def semantic_scores(board: Storyboard, signal: np.ndarray, bridge: Any, sr: int = SAMPLE_RATE) -> tuple[float, float]:
    """(semantic, tw_semantic) of a storyboard with image-model embeddings and its soundtrack."""
    shots = bridge.video(shot_embeddings(board))
    whole = bridge.video(video_embedding(board)[None])[0]
    edges = np.round(np.concatenate([board.shot_starts, [board.duration_s]]) * sr).astype(int)
    segments = [signal[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    music = bridge.music([signal, *segments])
    return (metrics.semantic_score(whole, music[0]),
            metrics.tw_semantic_score(shots, music[1:], board.shot_durations))


def score_video(
    id: str, uri: str, data: bytes, *, config: ParseConfig | None = None,
    encoder: Callable[[np.ndarray], np.ndarray] | None = None,
    encoder_dir: str | None = None, music_encoder_dir: str | None = None,
) -> dict[str, Any]:
    """Score one video given its bytes; never raises for a bad video (returns an error row).

    ``encoder`` (a callable) or ``encoder_dir`` (a local CLIP/SigLIP directory, loaded once per
    process) embeds the frames; ``music_encoder_dir`` (a local CLAP directory, with
    ``encoder_dir``) adds the semantic scores (see the module docstring).
    """
    t0 = time.time()
    if music_encoder_dir and not encoder_dir:
        raise ValueError("music_encoder_dir needs encoder_dir: the joint embedder bridges the two")
    bridge = _bridge(encoder_dir, music_encoder_dir) if encoder_dir and music_encoder_dir else None
    if encoder_dir:
        encoder = _image_encoder(encoder_dir)
    try:
        board = parse_video(data, config, encoder)
    except VideoError as e:
        return error_row(id, uri, f"video: {e}")
    row: dict[str, Any] = {
        "id": id, "uri": uri, "status": "ok", "error": None, "warning": None,
        "duration_s": board.duration_s, "n_shots": board.n_shots, "tempo_bpm": None,
        "transitions": [round(float(t), 4) for t in board.transitions], "transition_kinds": list(board.transition_kinds),
        "beats": None, "downbeats": None, "semantic_note": NO_EMBEDDER, "visual_embedding": None,
    }
    row.update({k: None for k in METRIC_COLUMNS})
    if encoder is not None:
        row["visual_embedding"] = [round(float(x), 6) for x in video_embedding(board)]
        row["semantic_note"] = VISUAL_ONLY
    try:
        signal = load_audio(data)
        audio = analyze_audio(signal)
    except AudioError as e:
        row["warning"] = f"rhythm metrics not computed: {e}"
        if bridge is not None:
            row["semantic_note"] = f"semantic scores not computed: {e}"
    else:
        if bridge is not None:
            row["semantic"], row["tw_semantic"] = semantic_scores(board, signal, bridge)
            row["semantic_note"] = BRIDGED.format(n=len(bridge.concepts))
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
