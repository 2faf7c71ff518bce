"""Generation speed of a VeM preset: real-time factor and peak memory for one soundtrack.

    python benchmarks/generate_bench.py                       # small preset, 30 s, 25 steps, CPU
    python benchmarks/generate_bench.py --preset base --device cuda --bf16
    python benchmarks/generate_bench.py --job 6              # also: the generate job, end to end

The real-time factor (RTF) is generation seconds / soundtrack seconds: at most 1 means no slower
than real time. The stages (denoiser, VAE decoder, vocoder) are timed separately in the same
process, so the report says where the time goes. The weights are random: speed does not depend on
their values.

``--job N`` also measures the ``python -m jobs generate`` job end to end on N synthetic ads the
script renders (vem.synthetic, 8-30 s each) with the committed weights (``--model``, default
models/vem-small): Ray Data actor pool, parse in the sandbox, generate, write the WAV, mux the
MP4, score it, write the Parquet rows. Videos/minute is the job's wall time from start to last
row (actors starting and loading the model included; Ray itself already up). Beside it, in the
same process, the same N videos one after another in-process (parse, generate, mux, score; one
torch thread, as one actor has): the ratio says what the job adds or saves over a bare loop.
Ray runs its workers at nice 15 (its ``worker_niceness``) and this loop at the shell's priority,
so on a busy machine the ratio also measures that: read it beside the printed load.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vem.pipeline import VeMPipeline  # noqa: E402
from vem.storyboard import Storyboard  # noqa: E402


def storyboard(duration: float, shot_s: float = 2.5, dim: int = 30) -> Storyboard:
    rng = np.random.default_rng(0)
    fps, n = 16.0, int(duration * 16)
    starts = np.arange(0.0, duration, shot_s)
    durations = np.diff(np.append(starts, duration))
    indicator = np.zeros(n)
    indicator[(starts[1:] * fps).astype(int)] = 1
    return Storyboard(fps=fps, duration_s=duration, transitions=starts[1:], transition_kinds=["hard"] * (len(starts) - 1),
                      transition_strengths=np.ones(len(starts) - 1), shot_starts=starts, shot_durations=durations,
                      keyframe_times=starts, transition_indicator=indicator, motion_energy=rng.random(n),
                      embeddings=rng.random((n, dim)).astype(np.float32))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="autocast the denoiser and VAE decoder to bfloat16")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--job", type=int, default=0, metavar="N", help="also time the generate job on N synthetic ads")
    ap.add_argument("--model", default="models/vem-small", help="the job's model (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=None, help="the job's actors (default: the job's, CPUs - 1)")
    args = ap.parse_args()

    pipe = VeMPipeline.build(args.preset).to(args.device)
    sb = storyboard(args.seconds)
    timings: dict[str, float] = {}
    for part in ("denoiser", "vae", "vocoder"):  # time each stage's forward calls
        module = {"denoiser": pipe.denoiser, "vae": pipe.vae, "vocoder": pipe.vocoder}[part]

        def pre(*_: object, part: str = part) -> None:
            sync(args.device)
            timings[part + "_start"] = time.perf_counter()

        def post(*_: object, part: str = part) -> None:
            sync(args.device)
            timings[part] = timings.get(part, 0.0) + time.perf_counter() - timings.pop(part + "_start")

        if part == "vae":
            module.decoder.register_forward_pre_hook(pre)
            module.decoder.register_forward_hook(post)
        else:
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)

    pipe(storyboard(3.0), steps=2, guidance_scale=args.guidance, bf16=args.bf16)  # warm-up (allocations, kernels)
    timings.clear()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    wav = pipe(sb, steps=args.steps, guidance_scale=args.guidance, bf16=args.bf16)
    sync(args.device)
    seconds = time.perf_counter() - t0
    assert len(wav) == round(args.seconds * pipe.config.mel.sample_rate)
    result = {
        "preset": args.preset, "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "threads": torch.get_num_threads(), "bf16": args.bf16,
        "parameters_m": round(sum(pipe.num_parameters().values()) / 1e6, 2),
        "audio_s": args.seconds, "steps": args.steps, "guidance": args.guidance, "generate_s": round(seconds, 2),
        "rtf": round(seconds / args.seconds, 3),
        **{f"{k}_s": round(v, 2) for k, v in timings.items() if not k.endswith("_start")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.device.startswith("cuda"):
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    for k, v in result.items():
        print(f"{k:>14}: {v}")
    print(f"real-time factor {result['rtf']} ({'faster' if result['rtf'] <= 1 else 'slower'} than real time; target <= 1)")
    if args.job:
        result.update(job_throughput(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


def job_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Videos/minute of ``python -m jobs generate`` on ``args.job`` synthetic ads, and of an in-process loop."""
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from jobs import generate  # noqa: PLC0415
    from jobs.__main__ import build_parser  # noqa: PLC0415
    from jobs.runtime import quiet_logs, start_ray, stop_ray  # noqa: PLC0415
    from jobs.tracking import job_run  # noqa: PLC0415
    from vem.media import mux_soundtrack  # noqa: PLC0415
    from vem.scoring import score_video  # noqa: PLC0415
    from vem.storyboard import ParseConfig  # noqa: PLC0415
    from vem.synthetic import encode_mp4, plan_ad  # noqa: PLC0415

    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        audio_s = 0.0
        for i in range(args.job):
            plan = plan_ad(seed=7, index=i)
            encode_mp4(plan, str(videos / f"ad{i:03d}.mp4"))
            audio_s += plan.duration_s
        # the in-process loop: one thread, like one actor (Ray gives an actor of 1 CPU one thread)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        pipe = VeMPipeline.from_pretrained(args.model)
        t0 = time.perf_counter()
        for path in sorted(videos.glob("*.mp4")):
            data = path.read_bytes()
            wav = pipe(pipe.storyboard(data), steps=args.steps, guidance_scale=args.guidance)
            muxed = mux_soundtrack(data, wav, pipe.config.mel.sample_rate)
            score_video(path.stem, str(path), muxed, config=ParseConfig(embedding="none"))
        loop_s = time.perf_counter() - t0
        torch.set_num_threads(threads)
        load = os.getloadavg()[0]
        started = start_ray(num_cpus=os.cpu_count())
        try:
            argv = ["generate", "--input", str(videos), "--model", args.model, "--output", str(Path(tmp) / "out"),
                    "--steps", str(args.steps), "--guidance", str(args.guidance), "--workdir", str(Path(tmp) / "mlflow")]
            parsed = build_parser().parse_args(argv + (["--workers", str(args.workers)] if args.workers else []))
            generate.check(parsed)
            with job_run("generate", workdir=parsed.workdir, params={"bench": True}):
                t0 = time.perf_counter()
                summary = generate.run(parsed)
                job_s = time.perf_counter() - t0
        finally:
            stop_ray(started)
    if summary["errors"]:
        raise SystemExit(f"the job wrote {summary['errors']} error rows: {summary}")
    out = {
        "job_videos": args.job, "job_audio_s": round(audio_s, 1), "job_s": round(job_s, 1),
        "job_videos_per_minute": round(args.job / job_s * 60, 2), "loop_s": round(loop_s, 1),
        "loop_videos_per_minute": round(args.job / loop_s * 60, 2), "job_vs_loop": round(loop_s / job_s, 3),
        "load_1min": round(load, 2),
    }
    for k, v in out.items():
        print(f"{k:>22}: {v}")
    print(f"generate job: {out['job_videos_per_minute']} videos/min end to end, {out['job_vs_loop']}x the in-process "
          f"loop's {out['loop_videos_per_minute']} (load {load:.1f})")
    return out


if __name__ == "__main__":
    main()
