"""Our video parser against PySceneDetect's ContentDetector (the tool the VeM paper used), in one
process on the same videos: transition F1 (±0.25 s, against the sample catalog's ground truth)
and throughput; then a 30 s 1280x720 H.264 video parsed and scored end to end.

Run (pinned to one core, as the targets are stated):
``.venv/bin/pip install scenedetect opencv-python-headless`` then
``.venv/bin/python benchmarks/score_bench.py [CATALOG]`` (default ``work/sample``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import mir_eval
import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vem.scoring import score_video  # noqa: E402
from vem.storyboard import ParseConfig, parse_video  # noqa: E402
from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad  # noqa: E402


def _f1(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    m = n_ref = n_est = 0
    for ref, est in pairs:
        m += len(mir_eval.util.match_events(ref, est, 0.25)) if len(ref) and len(est) else 0
        n_ref, n_est = n_ref + len(ref), n_est + len(est)
    return 2 * m / max(n_ref + n_est, 1)


def scenedetect_cuts(path: str) -> np.ndarray:
    from scenedetect import ContentDetector, detect

    scenes = detect(path, ContentDetector())
    return np.array([start.seconds for start, _ in scenes[1:]])


def main(folder: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r["status"] == "ok"]
    score_video("warm-up", rows[0]["uri"], open(rows[0]["uri"], "rb").read())  # imports and numba compilation
    ours, theirs = [], []
    t_ours = t_theirs = 0.0
    for r in rows:
        ref = np.array(r["transitions"])
        t0 = time.time()
        board = parse_video(r["uri"], ParseConfig(embedding="none"))  # what the score job runs
        t_ours += time.time() - t0
        t0 = time.time()
        cuts = scenedetect_cuts(r["uri"])
        t_theirs += time.time() - t0
        ours.append((ref, board.transitions))
        theirs.append((ref, cuts))
    hard = [(np.array([t for t, c in zip(r["transitions"], r["transition_category"], strict=True) if c == "hard"]), e)
            for r, (_, e) in zip(rows, theirs, strict=True)]
    seconds = sum(r["duration_s"] for r in rows)
    print(f"{len(rows)} videos ({seconds:.0f} s of video) of {folder}, one core:")
    print(f"  ours:         transition F1 {_f1(ours):.3f}, {t_ours:.1f} s ({seconds / t_ours:.0f}x real time)")
    print(f"  PySceneDetect ContentDetector: transition F1 {_f1(theirs):.3f} (hard cuts only: {_f1(hard):.3f}), "
          f"{t_theirs:.1f} s ({seconds / t_theirs:.0f}x real time)")
    print(f"  speed ratio ours/PySceneDetect: {t_theirs / t_ours:.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_ad(seed=0, index=1, config=SyntheticAdConfig(width=1280, height=720, min_duration_s=30, max_duration_s=30))
        path = os.path.join(tmp, "hd.mp4")
        encode_mp4(plan, path)
        data = open(path, "rb").read()
        t0 = time.time()
        row = score_video("hd", path, data, config=ParseConfig(embedding="none"))
        t_ours = time.time() - t0
        t0 = time.time()
        scenedetect_cuts(path)
        t_sd = time.time() - t0
    print(f"  30 s 1280x720 H.264: parsed and scored in {t_ours:.2f} s by us (status {row['status']}, {row['n_shots']} shots; "
          f"{len(plan.shots)} planted); PySceneDetect alone {t_sd:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "work/sample")
