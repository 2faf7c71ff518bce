"""Accuracy of the scoring analysis on a sample catalog's ground truth.

Run: ``.venv/bin/python -m jobs sample --out work/cat40 --videos 40 --seed 1 --composers none``
then ``.venv/bin/python benchmarks/parse_accuracy.py work/cat40``. Prints hard-cut and
gradual-transition F1 (±0.25 s), their timing errors, beat F-measure (mir_eval, ±70 ms), the
largest tempo error and the parse time per video.
"""

from __future__ import annotations

import os
import sys
import time

import mir_eval
import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vem.audio import analyze_audio, load_audio  # noqa: E402
from vem.storyboard import parse_video  # noqa: E402


def main(folder: str) -> None:
    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r["status"] == "ok"]
    counts = {"hard": np.zeros(3), "gradual": np.zeros(3)}
    errors: dict[str, list[float]] = {"hard": [], "gradual": []}
    beat_f, tempo_err, seconds = [], [], []
    for r in rows:
        t0 = time.time()
        board = parse_video(r["uri"])
        seconds.append(time.time() - t0)
        for cat in counts:
            ref = np.array([t for t, c in zip(r["transitions"], r["transition_category"], strict=True) if c == cat])
            est = np.array([t for t, k in zip(board.transitions, board.transition_kinds, strict=True) if k == cat])
            pairs = mir_eval.util.match_events(ref, est, 0.25) if len(ref) and len(est) else []
            counts[cat] += (len(pairs), len(ref), len(est))
            errors[cat] += [float(est[j] - ref[i]) for i, j in pairs]
        audio = analyze_audio(load_audio(r["uri"]))
        reference = mir_eval.beat.trim_beats(np.array(r["beats"]))
        beat_f.append(mir_eval.beat.f_measure(reference, mir_eval.beat.trim_beats(audio.beats)))
        tempo_err.append(abs(audio.tempo_bpm - r["tempo_bpm"]) / r["tempo_bpm"])
    print(f"{len(rows)} videos of {folder}")
    for cat, (m, n_ref, n_est) in counts.items():
        print(f"  {cat:8s} transitions: F1 {2 * m / max(n_ref + n_est, 1):.3f} (precision {m / max(n_est, 1):.3f}, "
              f"recall {m / max(n_ref, 1):.3f}, {int(n_ref)} annotated); mean |time error| "
              f"{np.mean(np.abs(errors[cat])) if errors[cat] else float('nan'):.3f} s")
    print(f"  beats: mean F-measure {np.mean(beat_f):.3f}; tempo error max {100 * max(tempo_err):.2f} %")
    print(f"  video parsing: {np.mean(seconds[1:] or seconds):.2f} s per video (after the first)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "work/cat40")
