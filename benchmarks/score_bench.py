"""Our video parser against PySceneDetect's ContentDetector (the tool the VeM paper used), in one
process on the same videos: transition F1 (±0.25 s, against the sample catalog's ground truth)
and throughput (ours also with every frame decoded, to show what skipping non-reference frames
buys); then a 30 s 1280x720 H.264 video parsed and scored end to end (median of 3), split into
video decoding, transition detection, audio decoding and beat analysis.

Run (pinned to one core, as the targets are stated; the load average is printed: on a shared
machine compare the ratios, measured in the same process, rather than the seconds):
``.venv/bin/pip install scenedetect opencv-python-headless`` then
``.venv/bin/python benchmarks/score_bench.py [CATALOG]`` (default ``work/sample``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

import mir_eval
import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vem.audio import analyze_audio, load_audio  # noqa: E402
from vem.scoring import score_video  # noqa: E402
from vem.storyboard import ParseConfig, decode_frames, parse_frames, parse_video  # noqa: E402
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


def _median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(folder: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r["status"] == "ok"]
    score_video("warm-up", rows[0]["uri"], open(rows[0]["uri"], "rb").read())  # imports and numba compilation
    ours, full, theirs = [], [], []
    t_ours = t_ours_decode = t_full = t_theirs = 0.0
    for i, r in enumerate(rows):
        ref = np.array(r["transitions"])
        open(r["uri"], "rb").read()  # in the page cache for whichever runs first
        for who in (("ours", "full", "theirs") if i % 2 == 0 else ("theirs", "full", "ours")):  # alternate the order
            t0 = time.perf_counter()
            if who == "ours":
                cfg = ParseConfig(embedding="none")  # what the score job runs: parse_video, in its two steps
                frames, fresh, duration = decode_frames(r["uri"], cfg)
                t1 = time.perf_counter()
                board = parse_frames(frames, duration, cfg, fresh=fresh)
                t_ours += time.perf_counter() - t0
                t_ours_decode += t1 - t0
                ours.append((ref, board.transitions))
            elif who == "full":
                board_full = parse_video(r["uri"], ParseConfig(embedding="none", skip_nonref=False))
                t_full += time.perf_counter() - t0
                full.append((ref, board_full.transitions))
            else:
                cuts = scenedetect_cuts(r["uri"])
                t_theirs += time.perf_counter() - t0
                theirs.append((ref, cuts))
    hard = [(np.array([t for t, c in zip(r["transitions"], r["transition_category"], strict=True) if c == "hard"]), e)
            for r, (_, e) in zip(rows, theirs, strict=True)]
    seconds = sum(r["duration_s"] for r in rows)
    print(f"{len(rows)} videos ({seconds:.0f} s of video) of {folder}, one core:")
    print(f"  ours:         transition F1 {_f1(ours):.3f}, {t_ours:.1f} s ({seconds / t_ours:.0f}x real time; "
          f"decoding {t_ours_decode:.1f} s, detection {t_ours - t_ours_decode:.1f} s)")
    print(f"  ours decoding every frame: transition F1 {_f1(full):.3f}, {t_full:.1f} s")
    print(f"  PySceneDetect ContentDetector: transition F1 {_f1(theirs):.3f} (hard cuts only: {_f1(hard):.3f}), "
          f"{t_theirs:.1f} s ({seconds / t_theirs:.0f}x real time)")
    print(f"  speed ratio ours/PySceneDetect: {t_theirs / t_ours:.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_ad(seed=0, index=1, config=SyntheticAdConfig(width=1280, height=720, min_duration_s=30, max_duration_s=30))
        path = os.path.join(tmp, "hd.mp4")
        encode_mp4(plan, path)
        data = open(path, "rb").read()
        cfg = ParseConfig(embedding="none")
        row = score_video("hd", path, data, config=cfg)
        t_score = _median_time(lambda: score_video("hd", path, data, config=cfg))
        t_decode = _median_time(lambda: decode_frames(data, cfg))
        t_decode_all = _median_time(lambda: decode_frames(data, ParseConfig(embedding="none", skip_nonref=False)))
        frames, fresh, duration = decode_frames(data, cfg)
        t_detect = _median_time(lambda: parse_frames(frames, duration, cfg, fresh=fresh))
        t_load = _median_time(lambda: load_audio(data))
        sound = load_audio(data)
        t_beats = _median_time(lambda: analyze_audio(sound))
        t_sd = _median_time(lambda: scenedetect_cuts(path), repeats=1)
    print(f"  30 s 1280x720 H.264 ({plan.fps} fps): parsed and scored in {t_score:.2f} s by us (median of 3; status "
          f"{row['status']}, {row['n_shots']} shots; {len(plan.shots)} planted); PySceneDetect alone {t_sd:.2f} s")
    print(f"    of which: video decoding {t_decode:.2f} s ({int(fresh.sum())} frames converted of {len(fresh)} slots; "
          f"{t_decode_all:.2f} s decoding every frame), transition detection {t_detect:.2f} s, "
          f"audio decoding {t_load:.2f} s, beat analysis (vem.audio) {t_beats:.2f} s")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "work/sample")
