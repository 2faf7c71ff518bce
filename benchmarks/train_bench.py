"""Training throughput of ``python -m jobs train``: samples/s with 1 and 2 Ray Train workers (CPU).

    python benchmarks/train_bench.py                          # small preset, diffusion phase, 40 steps
    python benchmarks/train_bench.py --preset base --gpu --workers 1   # a GPU machine (samples/s of base)

Both runs go through the job itself (Ray Train ``TorchTrainer``, gloo all-reduce, the shard
streamed with ``get_dataset_shard``) in this one process, on the same synthetic examples the
script writes first (Parquet rows of the preprocess job's schema: storyboard arrays of cuts every
2.5 s and the log-mel of a pulse train over a chord, at the preset's mel settings). Samples/s is
the job's own figure: clips per optimiser step x workers / seconds of the phase's loop (the
per-worker batch stays ``--batch-size``, so 2 workers do twice the work per step). Scaling
efficiency = samples/s(2) / (2 x samples/s(1)); 1.0 is linear. Each Ray Train worker gets one CPU
(and one torch thread): on a 2-core machine the 2-worker run has no core to spare for anything
else, so the load of the machine (printed before and after each run) matters: Ray's workers run
at nice 15, and a load that changes between the two runs makes the ratio meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_examples(folder: Path, preset_name: str, clips: int, seconds: float, seed: int = 0) -> None:
    """``clips`` synthetic training rows (the preprocess job's schema) under ``folder/examples``."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from jobs.preprocess import schema  # noqa: PLC0415
    from vem.examples import make_example  # noqa: PLC0415
    from vem.mel import LogMel  # noqa: PLC0415
    from vem.presets import preset  # noqa: PLC0415
    from vem.storyboard import Storyboard  # noqa: PLC0415

    cfg = preset(preset_name)
    logmel = LogMel(cfg.mel)
    rng = np.random.default_rng(seed)
    sr, fps = cfg.mel.sample_rate, cfg.fps
    rows: list[dict[str, Any]] = []
    for i in range(clips):
        n = int(seconds * fps)
        starts = np.arange(0.0, seconds, 2.5)
        durations = np.diff(np.append(starts, seconds))
        indicator = np.zeros(n, np.float32)
        indicator[(starts[1:] * fps).astype(int)] = 1
        sb = Storyboard(fps=fps, duration_s=seconds, transitions=starts[1:], transition_kinds=["hard"] * (len(starts) - 1),
                        transition_strengths=np.ones(len(starts) - 1), shot_starts=starts, shot_durations=durations,
                        keyframe_times=starts + durations / 2, transition_indicator=indicator,
                        motion_energy=rng.random(n).astype(np.float32),
                        embeddings=rng.random((n, cfg.visual_dim)).astype(np.float32))
        t = np.arange(int(seconds * sr)) / sr
        bpm = 100 + 10 * (i % 5)
        beats = np.arange(0.0, seconds, 60 / bpm)
        audio = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.1
        since = t[:, None] - beats[None]  # seconds since each beat: a decaying noise burst per beat
        audio = audio + np.where(since >= 0, np.exp(-since.clip(0) * 40), 0.0).max(axis=1) * rng.normal(0, 0.3, len(t))
        with torch.no_grad():
            mel = logmel(torch.from_numpy(audio.astype(np.float32))[None])[0].numpy()
        row = make_example(f"synthetic{i:04d}", sb, mel, beats, float(bpm))
        rows.append({**row, "uri": f"synthetic://{i}", "status": "ok", "error": None, "seconds": 0.0, "version": "1"})
    out = folder / "examples"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), out / "part-00000.parquet")


def train_once(data: Path, out: Path, workdir: Path, args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """One ``python -m jobs train`` run in this process (Ray is already up); its summary."""
    from jobs import train  # noqa: PLC0415
    from jobs.__main__ import build_parser  # noqa: PLC0415
    from jobs.tracking import job_run, tracking_uri  # noqa: PLC0415

    argv = ["train", "--data", str(data), "--output", str(out), "--preset", args.preset, "--phase", args.phase,
            "--steps", str(args.steps), "--workers", str(workers), "--batch-size", str(args.batch_size),
            "--checkpoint-every", str(args.steps), "--log-every", str(args.steps), "--holdout", "0",
            "--register", f"train-bench-{workers}", "--workdir", str(workdir)] + (["--gpu"] if args.gpu else [])
    parsed = build_parser().parse_args(argv)
    train.check(parsed)
    with job_run("train", workdir=str(workdir), params={"bench_workers": workers}) as run:
        summary = train.run(parsed)
    import mlflow  # noqa: PLC0415

    # rank 0 logs samples/s at every --log-every steps (here: once, at the phase's end, over all its steps)
    history = mlflow.MlflowClient(tracking_uri(str(workdir))).get_metric_history(run.info.run_id, "samples_per_s")
    if not history:
        raise SystemExit(f"the train job logged no samples_per_s: {summary}")
    return {**summary, "samples_per_s": max(history, key=lambda m: m.step).value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", choices=["debug", "small", "base"])
    ap.add_argument("--phase", default="diffusion", choices=["vae", "aligner", "diffusion", "adapter"],
                    help="the phase timed (default: %(default)s, the longest)")
    ap.add_argument("--steps", type=int, default=40, help="optimiser steps per run (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per worker per step (default: %(default)s)")
    ap.add_argument("--clips", type=int, default=16, help="synthetic training clips (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=12.0, help="seconds per clip (default: %(default)s)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run (default: 1 2)")
    ap.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    import torch  # noqa: PLC0415

    from jobs.runtime import quiet_logs, start_ray, stop_ray  # noqa: PLC0415

    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.time()
        write_examples(root / "data", args.preset, args.clips, args.seconds)
        print(f"{args.clips} synthetic clips of {args.seconds} s written in {time.time() - t0:.1f} s", file=sys.stderr)
        started = start_ray(num_cpus=max(max(args.workers), os.cpu_count() or 1))
        runs: dict[int, dict[str, Any]] = {}
        try:
            for w in args.workers:
                load = os.getloadavg()[0]
                summary = train_once(root / "data", root / f"model-{w}", root / "mlflow", args, w)
                runs[w] = {"samples_per_s": summary["samples_per_s"], "job_seconds": summary["seconds"],
                           "load_1min_before": round(load, 2), "load_1min_after": round(os.getloadavg()[0], 2)}
                print(f"{w} worker(s): {runs[w]['samples_per_s']} samples/s (job {summary['seconds']} s, "
                      f"load {load:.1f} -> {runs[w]['load_1min_after']})", file=sys.stderr)
        finally:
            stop_ray(started)
    result: dict[str, Any] = {
        "preset": args.preset, "phase": args.phase, "steps": args.steps, "batch_size_per_worker": args.batch_size,
        "device": torch.cuda.get_device_name() if args.gpu else "cpu", "cpus": os.cpu_count(),
        "runs": {str(k): v for k, v in runs.items()},
    }
    if 1 in runs and len(runs) > 1:
        for w, r in runs.items():
            if w > 1:
                ratio = r["samples_per_s"] / runs[1]["samples_per_s"]
                result[f"speedup_{w}_vs_1"] = round(ratio, 3)
                result[f"scaling_efficiency_{w}"] = round(ratio / w, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
