"""``python -m vem presets``: the model presets, their sizes and latent geometry."""

from __future__ import annotations

import argparse
import sys


def presets() -> str:
    from vem.pipeline import VeMPipeline, build_vae  # noqa: PLC0415
    from vem.presets import PRESETS  # noqa: PLC0415

    lines = ["| preset | VAE | conditioner | aligner | denoiser | total | latent (frames/s x numbers) | window |",
             "|---|---|---|---|---|---|---|---|"]
    for name, cfg in PRESETS.items():
        n = VeMPipeline(cfg, build_vae(cfg)).num_parameters()
        total = sum(n.values())
        lines.append(f"| {name} | {_m(n['vae'])} | {_m(n['conditioner'])} | {_m(n['aligner'])} | {_m(n['denoiser'])} | "
                     f"{_m(total)} | {cfg.latent_rate:g} x {cfg.latent_features} | {cfg.window_s:g} s |")
    return "\n".join(lines)


def _m(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vem", description=__doc__)
    parser.add_argument("command", choices=["presets"], help="what to show")
    parser.parse_args(argv)
    print(presets())
    return 0


if __name__ == "__main__":
    sys.exit(main())
