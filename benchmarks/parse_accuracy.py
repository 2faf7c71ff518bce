"""Accuracy of the scoring analysis on a sample catalog's ground truth, and of the video parser on
the same kind of ads encoded with other H.264 settings (B-frames, GOP, scene-cut detection).

Run: ``.venv/bin/python -m jobs sample --out work/cat40 --videos 40 --seed 1 --composers none``
then ``.venv/bin/python benchmarks/parse_accuracy.py work/cat40``. Prints hard-cut and
gradual-transition F1 (±0.25 s), their timing errors, beat F-measure (mir_eval, ±70 ms), the
largest tempo error and the parse time per video; then, for ``--encodes`` freshly drawn ads
(seed 7, not the catalog's) each encoded with several libx264 settings, the transition F1 and
timing errors with non-reference frames skipped (the default) and with every frame decoded,
and the share of frames the skipping decodes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction

import mir_eval
import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vem.audio import analyze_audio, load_audio  # noqa: E402
from vem.storyboard import ParseConfig, Storyboard, parse_video  # noqa: E402
from vem.synthetic import SyntheticAdConfig, plan_ad, render_frames  # noqa: E402

# libx264 settings of typical real encodes: x264's own (preset veryfast) (3 adaptive B-frames, B-pyramid, scene-cut
# detection), none (baseline / low latency), B-frames without pyramid, a fixed IBBP pattern with no
# scene-cut detection (hardware-encoder-like: cuts land on B-frames), and 8 B-frames in a 250-frame GOP.
ENCODES = {
    "x264 veryfast (3 adaptive B, pyramid)": "",
    "no B-frames": "bframes=0",
    "3 B, no pyramid": "b-pyramid=none",
    "fixed IBBP, no scenecut, GOP 48": "bframes=2:b-adapt=0:b-pyramid=none:scenecut=0:keyint=48:min-keyint=48",
    "8 B, pyramid, GOP 250": "bframes=8:b-pyramid=normal:keyint=250",
}


def _counts(truth_times: list[float], truth_cats: list[str], board: Storyboard) -> dict[str, tuple[np.ndarray, list[float]]]:
    out = {}
    for cat in ("hard", "gradual"):
        ref = np.array([t for t, c in zip(truth_times, truth_cats, strict=True) if c == cat])
        est = np.array([t for t, k in zip(board.transitions, board.transition_kinds, strict=True) if k == cat])
        pairs = mir_eval.util.match_events(ref, est, 0.25) if len(ref) and len(est) else []
        out[cat] = (np.array([len(pairs), len(ref), len(est)]), [float(est[j] - ref[i]) for i, j in pairs])
    return out


def _report(counts: dict[str, np.ndarray], errors: dict[str, list[float]], indent: str = "  ") -> str:
    parts = []
    for cat, (m, n_ref, n_est) in counts.items():
        err = np.abs(errors[cat]) if errors[cat] else np.array([np.nan])
        parts.append(f"{cat} F1 {2 * m / max(n_ref + n_est, 1):.3f} (|error| mean {err.mean():.3f} s, max {err.max():.3f} s)")
    return indent + "; ".join(parts)


def catalog(folder: str) -> None:
    rows = [r for r in pq.read_table(os.path.join(folder, "ground_truth.parquet")).to_pylist() if r.get("status", "ok") == "ok"]
    counts = {"hard": np.zeros(3), "gradual": np.zeros(3)}
    errors: dict[str, list[float]] = {"hard": [], "gradual": []}
    beat_f, tempo_err, seconds = [], [], []
    for r in rows:
        t0 = time.time()
        board = parse_video(r["uri"])
        seconds.append(time.time() - t0)
        for cat, (c, e) in _counts(r["transitions"], r["transition_category"], board).items():
            counts[cat] += c
            errors[cat] += e
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


def encode_with(frames: list[np.ndarray], fps: int, path: str, x264_params: str) -> None:
    """``frames`` as an H.264 mp4 with these libx264 settings (crf 23, one thread: reproducible)."""
    import av

    with av.open(path, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
        if x264_params:
            video.options = {**video.options, "x264-params": x264_params}
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)


def nonref_share(path: str) -> tuple[float, float]:
    """(share of frames decoded when non-reference frames are skipped, longest gap between them in s)."""
    import av

    times = {}
    for skip in ("DEFAULT", "NONREF"):
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = skip
            times[skip] = [float(f.time) for f in container.decode(stream) if f.time is not None]
    kept = times["NONREF"]
    return len(kept) / max(len(times["DEFAULT"]), 1), float(np.max(np.diff(kept))) if len(kept) > 1 else float("inf")


def encodes(n_ads: int) -> None:
    print(f"{n_ads} ads (seed 7, 320x180 at 24 fps) encoded with libx264 settings; "
          "skipping non-reference frames vs decoding all (parse times interleaved, one video at a time):")
    plans = [plan_ad(seed=7, index=i, config=SyntheticAdConfig(max_duration_s=20.0)) for i in range(n_ads)]
    with tempfile.TemporaryDirectory() as tmp:
        rendered = [list(render_frames(p)) for p in plans]
        for name, params in ENCODES.items():
            paths = [os.path.join(tmp, f"{k}.mp4") for k in range(n_ads)]
            for plan, frames, path in zip(plans, rendered, paths, strict=True):
                encode_with(frames, plan.fps, path, params)
            shares, gaps = zip(*(nonref_share(path) for path in paths), strict=True)
            counts = {skip: {"hard": np.zeros(3), "gradual": np.zeros(3)} for skip in (True, False)}
            errors: dict[bool, dict[str, list[float]]] = {skip: {"hard": [], "gradual": []} for skip in (True, False)}
            seconds = {True: 0.0, False: 0.0}
            for plan, path in zip(plans, paths, strict=True):
                for skip in (True, False):
                    t0 = time.perf_counter()
                    board = parse_video(path, ParseConfig(embedding="none", skip_nonref=skip))
                    seconds[skip] += time.perf_counter() - t0
                    for cat, (c, e) in _counts([t.time_s for t in plan.transitions],
                                               [t.category for t in plan.transitions], board).items():
                        counts[skip][cat] += c
                        errors[skip][cat] += e
            fallback = sum(g > ParseConfig().max_skip_gap_s for g in gaps)
            print(f"  {name}: skipping keeps {100 * np.mean(shares):.0f} % of frames (longest gap {max(gaps):.3f} s; "
                  f"{fallback} of {n_ads} with a gap over {ParseConfig().max_skip_gap_s} s: decoded in full)")
            for skip in (True, False):
                print(f"    {'skip non-ref' if skip else 'decode all  '}: {_report(counts[skip], errors[skip], indent='')}; "
                      f"parse {seconds[skip]:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="work/cat40", help="a sample catalog (default: %(default)s)")
    parser.add_argument("--encodes", type=int, default=8, help="ads to draw and encode with other settings (0: none)")
    args = parser.parse_args()
    catalog(args.folder)
    if args.encodes:
        encodes(args.encodes)


if __name__ == "__main__":
    main()
