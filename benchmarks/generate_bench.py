"""Generation speed of a VeM preset: real-time factor and peak memory for one soundtrack.

    python benchmarks/generate_bench.py                       # small preset, 30 s, 25 steps, CPU
    python benchmarks/generate_bench.py --preset base --device cuda --bf16

The real-time factor (RTF) is generation seconds / soundtrack seconds: at most 1 means no slower
than real time. The stages (denoiser, VAE decoder, vocoder) are timed separately in the same
process, so the report says where the time goes. The weights are random: speed does not depend on
their values.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

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
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
