"""Training examples: one paired clip (video + its soundtrack) as a flat row of numbers and bytes.

:func:`make_example` analyses a clip (storyboard, log-mel, beats) and returns the row of the
DESIGN's training-example contract; :func:`read_example` turns a row back into arrays. Arrays are
stored as raw little-endian bytes with their shapes (float16 for the mel, float32 for frame
features, uint8 for targets), so Parquet holds them compactly and any reader can decode them.

Targets at the analysis rate (16 fps): ``beat_target`` marks frames holding a beat;
``tb_target`` marks transitions that land on a beat: a transition whose nearest beat is within
one analysis frame (62.5 ms), the paper's "frames that are both a transition and a beat" with the
rounding of both to frames allowed for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vem.storyboard import Storyboard

__all__ = ["Example", "make_example", "read_example", "targets"]


@dataclass
class Example:
    id: str
    storyboard: Storyboard
    logmel: np.ndarray  # (frames, n_mels) float32 at the mel frame rate
    beats: np.ndarray  # s
    tempo_bpm: float
    beat_target: np.ndarray  # (n_frames,) 0/1 at fps
    tb_target: np.ndarray  # (n_frames,) 0/1 at fps
    caption: str | None = None
    tags: list[str] | None = None
    uri: str | None = None  # the clip the example was made from (the vocoder phase reads its audio)


def targets(transitions: np.ndarray, beats: np.ndarray, n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(beat indicator, transition ∩ beat indicator) at ``fps``, ``n_frames`` long."""
    beat = np.zeros(n_frames, np.uint8)
    idx = np.round(np.asarray(beats) * fps).astype(int)
    beat[idx[(idx >= 0) & (idx < n_frames)]] = 1
    tb = np.zeros(n_frames, np.uint8)
    if len(beats):
        for t in np.asarray(transitions):
            if np.min(np.abs(np.asarray(beats) - t)) <= 1.0 / fps:
                i = int(round(t * fps))
                if 0 <= i < n_frames:
                    tb[i] = 1
    return beat, tb


def _pack(a: np.ndarray, dtype: str) -> tuple[bytes, list[int]]:
    a = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return a.tobytes(), list(a.shape)


def _unpack(data: bytes, shape: list[int], dtype: str) -> np.ndarray:
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


def make_example(id_: str, sb: Storyboard, logmel: np.ndarray, beats: np.ndarray, tempo_bpm: float, *,
                 caption: str | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    """The training row of one clip (see the module doc)."""
    n = len(sb.transition_indicator)
    beat, tb = targets(sb.transitions, beats, n, sb.fps)
    row: dict[str, Any] = {
        "id": id_, "duration_s": float(sb.duration_s), "fps": float(sb.fps), "n_frames": n,
        "shot_starts": [float(x) for x in sb.shot_starts], "shot_durations": [float(x) for x in sb.shot_durations],
        "transitions": [float(x) for x in sb.transitions], "transition_kinds": list(sb.transition_kinds),
        "beats": [float(x) for x in beats], "tempo_bpm": float(tempo_bpm), "caption": caption, "tags": tags,
        "n_tb": int(tb.sum()),
    }
    for name, array, dtype in (("transition_indicator", sb.transition_indicator, "float32"),
                               ("motion_energy", sb.motion_energy, "float32"), ("embeddings", sb.embeddings, "float32"),
                               ("logmel", logmel, "float16"), ("beat_target", beat, "uint8"), ("tb_target", tb, "uint8")):
        row[name], row[name + "_shape"] = _pack(array, dtype)
    return row


def read_example(row: dict[str, Any]) -> Example:
    def arr(name: str, dtype: str) -> np.ndarray:
        return _unpack(row[name], row[name + "_shape"], dtype)

    starts = np.asarray(row["shot_starts"], np.float64)
    durations = np.asarray(row["shot_durations"], np.float64)
    transitions = np.asarray(row["transitions"], np.float64)
    sb = Storyboard(
        fps=float(row["fps"]), duration_s=float(row["duration_s"]), transitions=transitions,
        transition_kinds=list(row["transition_kinds"]), transition_strengths=np.ones(len(transitions)),
        shot_starts=starts, shot_durations=durations, keyframe_times=starts + durations / 2,
        transition_indicator=arr("transition_indicator", "float32"), motion_energy=arr("motion_energy", "float32"),
        embeddings=arr("embeddings", "float32"),
    )
    return Example(id=str(row["id"]), storyboard=sb, logmel=arr("logmel", "float16").astype(np.float32),
                   beats=np.asarray(row["beats"], np.float64), tempo_bpm=float(row["tempo_bpm"]),
                   beat_target=arr("beat_target", "uint8"), tb_target=arr("tb_target", "uint8"),
                   caption=row.get("caption"), tags=list(row["tags"]) if row.get("tags") else None, uri=row.get("uri"))
