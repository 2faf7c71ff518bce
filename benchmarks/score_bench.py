"""Our video parser against PySceneDetect (ContentDetector, the tool the VeM paper used, and
AdaptiveDetector), in one process on the same videos of each set given: transition F1 (±0.25 s,
against the set's ground truth) overall and for hard and gradual transitions apart, the mean
timing error of the matched transitions, the time per video and the beat F-measure of the
soundtracks against the set's beats; then a 30 s 1280x720 H.264
video parsed and scored end to end (median of 3), split into video decoding, transition
detection, audio decoding and beat analysis: a synthetic ad, and footage of real photographs
(when the photos of ``benchmarks/real_footage.py`` are installed).

PySceneDetect reports cuts without a kind: its F1 is over all transitions, and per kind it
is the recall (the share of that kind's transitions it found).

Run (pinned to one core, as the targets are stated; the load average is printed: on a shared
machine compare the ratios, measured in the same process, rather than the seconds)::

    .venv/bin/pip install scenedetect opencv-python-headless
    .venv/bin/python benchmarks/score_bench.py work/cat40 work/realfootage/test

(``work/cat40``: ``python -m jobs sample --out work/cat40 --videos 40 --seed 1 --composers none``;
``work/realfootage``: ``python benchmarks/real_footage.py``.)
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
sys.path.insert(0, os.path.dirname(__file__))

from vem.audio import analyze_audio, load_audio  # noqa: E402
from vem.scoring import score_video  # noqa: E402
from vem.storyboard import ParseConfig, decode_frames, parse_frames  # noqa: E402
from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad  # noqa: E402

TOLERANCE_S = 0.25
DETECTORS = ("ours", "content", "adaptive")


def scenedetect_cuts(path: str, kind: str = "content") -> np.ndarray:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    scenes = detect(path, ContentDetector() if kind == "content" else AdaptiveDetector())
    return np.array([start.get_seconds() for start, _ in scenes[1:]])


def ours(path: str) -> tuple[np.ndarray, list[str]]:
    cfg = ParseConfig(embedding="none")  # what the score job runs: parse_video, in its two steps
    frames, fresh, duration = decode_frames(path, cfg)
    board = parse_frames(frames, duration, cfg, fresh=fresh)
    return board.transitions, list(board.transition_kinds)


class Tally:
    """Matches (±0.25 s) summed over videos: overall, and per kind of the reference transition."""

    def __init__(self) -> None:
        self.counts = {c: np.zeros(3, dtype=int) for c in ("all", "hard", "gradual")}  # matched, reference, estimated
        self.errors: list[float] = []
        self.seconds = 0.0

    def add(self, ref: np.ndarray, cats: list[str], est: np.ndarray, kinds: list[str] | None) -> None:
        pairs = mir_eval.util.match_events(ref, est, TOLERANCE_S) if len(ref) and len(est) else []
        self.counts["all"] += [len(pairs), len(ref), len(est)]
        self.errors += [abs(float(est[j] - ref[i])) for i, j in pairs]
        for cat in ("hard", "gradual"):
            matched = sum(cats[i] == cat for i, j in pairs if kinds is None or kinds[j] == cat)
            n_est = sum(k == cat for k in kinds) if kinds is not None else 0
            self.counts[cat] += [matched, sum(c == cat for c in cats), n_est]

    def f1(self, cat: str = "all") -> float:
        m, r, e = self.counts[cat]
        return 2 * m / max(r + e, 1)

    def recall(self, cat: str) -> float:
        m, r, _ = self.counts[cat]
        return m / max(r, 1)

    def line(self, labelled: bool) -> str:
        m, r, e = self.counts["all"]
        per_kind = (f"hard F1 {self.f1('hard'):.3f}, gradual F1 {self.f1('gradual'):.3f}" if labelled
                    else f"recall hard {self.recall('hard'):.3f}, gradual {self.recall('gradual'):.3f}")
        err = np.mean(self.errors) if self.errors else float("nan")
        return (f"F1 {self.f1():.3f} (P {m / max(e, 1):.3f}, R {m / max(r, 1):.3f}); {per_kind}; "
                f"|timing error| {err * 1000:.0f} ms")


def compare(folder: str) -> None:
    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r.get("status", "ok") == "ok"]
    ours(rows[0]["uri"])  # imports
    tallies = {d: Tally() for d in DETECTORS}
    for i, r in enumerate(rows):
        ref, cats = np.array(r["transitions"]), list(r["transition_category"])
        open(r["uri"], "rb").read()  # in the page cache for whichever runs first
        for who in (DETECTORS if i % 2 == 0 else DETECTORS[::-1]):  # alternate the order
            t0 = time.perf_counter()
            if who == "ours":
                est, kinds = ours(r["uri"])
                tallies[who].seconds += time.perf_counter() - t0
                tallies[who].add(ref, cats, est, kinds)
            else:
                cuts = scenedetect_cuts(r["uri"], who)
                tallies[who].seconds += time.perf_counter() - t0
                tallies[who].add(ref, cats, cuts, None)
    beat_f = [beat_f_measure(r) for r in rows if r.get("beats")]
    seconds = sum(r["duration_s"] for r in rows)
    n_hard = sum(c == "hard" for r in rows for c in r["transition_category"])
    n_all = sum(len(r["transitions"]) for r in rows)
    print(f"{folder}: {len(rows)} videos, {seconds:.0f} s of video, {n_all} transitions ({n_hard} hard, "
          f"{n_all - n_hard} gradual), one core:")
    names = {"ours": "ours", "content": "PySceneDetect ContentDetector", "adaptive": "PySceneDetect AdaptiveDetector"}
    for who in DETECTORS:
        t = tallies[who]
        print(f"  {names[who]:31s} {t.line(who == 'ours')}; {t.seconds / len(rows):.3f} s per video "
              f"({seconds / t.seconds:.0f}x real time)")
    print(f"  speed ratio ours / ContentDetector: {tallies['content'].seconds / tallies['ours'].seconds:.1f}x; "
          f"ours / AdaptiveDetector: {tallies['adaptive'].seconds / tallies['ours'].seconds:.1f}x")
    if beat_f:
        print(f"  beat F-measure of the soundtracks (vem.audio against the set's beats, mir_eval, ±70 ms, first 5 s "
              f"trimmed): mean {np.mean(beat_f):.3f}, median {np.median(beat_f):.3f}, {len(beat_f)} videos")


def beat_f_measure(row: dict) -> float:
    """mir_eval's beat F-measure of ``vem.audio``'s beats in the video's soundtrack against the row's beats."""
    beats = analyze_audio(load_audio(open(row["uri"], "rb").read())).beats
    ref = mir_eval.beat.trim_beats(np.asarray(row["beats"], dtype=float))
    return float(mir_eval.beat.f_measure(ref, mir_eval.beat.trim_beats(np.asarray(beats, dtype=float))))


def _median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def hd_timing(label: str, path: str, n_planted: int) -> None:
    data = open(path, "rb").read()
    cfg = ParseConfig(embedding="none")
    row = score_video("hd", path, data, config=cfg)
    t_score = _median_time(lambda: score_video("hd", path, data, config=cfg))
    t_decode = _median_time(lambda: decode_frames(data, cfg))
    frames, fresh, duration = decode_frames(data, cfg)
    t_detect = _median_time(lambda: parse_frames(frames, duration, cfg, fresh=fresh))
    t_load = _median_time(lambda: load_audio(data))
    sound = load_audio(data)
    t_beats = _median_time(lambda: analyze_audio(sound))
    t_sd = _median_time(lambda: scenedetect_cuts(path), repeats=1)
    print(f"  30 s 1280x720 H.264, {label}: parsed and scored in {t_score:.2f} s (median of 3; status {row['status']}, "
          f"{row['n_shots']} shots, {n_planted} planted); PySceneDetect ContentDetector alone {t_sd:.2f} s")
    print(f"    of which: video decoding {t_decode:.2f} s ({int(fresh.sum())} frames converted of {len(fresh)} slots), "
          f"transition detection {t_detect:.2f} s, audio decoding {t_load:.2f} s, beat analysis {t_beats:.2f} s")


def main(folders: list[str]) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for folder in folders:
        compare(folder)
    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_ad(seed=0, index=1, config=SyntheticAdConfig(width=1280, height=720, min_duration_s=30, max_duration_s=30))
        path = os.path.join(tmp, "hd.mp4")
        encode_mp4(plan, path)
        hd_timing("synthetic ad", path, len(plan.shots))
        real = real_hd(tmp)
        if real is not None:
            hd_timing("real photographs", *real)
        else:
            print("  (no real-footage HD timing: the photos of benchmarks/real_footage.py are not installed)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def real_hd(tmp: str) -> tuple[str, int] | None:
    """A 30 s 1280x720 video of real photographs with a rendered score, or None without the photos."""
    import real_footage

    from vem.footage import FootageConfig, load_photo, packaged_photos, plan_footage, render_footage
    from vem.media import write_mp4
    from vem.realmusic import select_pieces

    photos = [load_photo(p, 2560) for p in packaged_photos()]
    if len(photos) < 2:
        return None
    plan = plan_footage([p.shape[:2] for p in photos], seed=3, index=0, config=FootageConfig())
    music = real_footage.render_music(*select_pieces(2)[0], np.random.default_rng(0), plan.duration_s)
    if music is None:
        raise RuntimeError("the first chorale of the corpus no longer renders: pick another piece for the HD video")
    path = os.path.join(tmp, "real_hd.mp4")
    write_mp4(path, render_footage(plan, photos), width=plan.width, height=plan.height, fps=plan.fps, crf=plan.crf,
              audio=music["audio"], sample_rate=real_footage.SR)
    return path, len(plan.shots)


if __name__ == "__main__":
    main(sys.argv[1:] or ["work/cat40", "work/realfootage/test"])
