"""A learned vocoder against Griffin-Lim, on held-out real music: how close each comes to the true audio.

    python benchmarks/vocoder_bench.py --model work/vocoder/model --clips work/paired/ground_truth.parquet \\
        --out work/vocoder-bench

For every held-out clip of a ``python -m jobs paired`` set (``split == "holdout"``: pieces and
photos the model never met), the first ``--seconds`` of its true soundtrack go through the model's
log-mel and back to audio by the model's learned vocoder and by Griffin-Lim (32 iterations, the
fallback), and each is compared with the true audio: ``mel_l1`` (mean absolute difference of the
log-mels) and ``mrstft`` (multi-resolution STFT distance: spectral convergence + log-magnitude L1
at 512/1024/2048-point STFTs), both lower = closer (:func:`vem.vocoder.audio_distances`), plus the
seconds each takes per second of audio. Prints the per-clip means and the learned vocoder's wins,
writes ``summary.json`` and log-mel spectrogram PNGs (true / Griffin-Lim / learned) of the first
three clips.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vem.audio import load_audio  # noqa: E402
from vem.mel import GriffinLim  # noqa: E402
from vem.pipeline import VeMPipeline  # noqa: E402
from vem.validation import spectrogram_png  # noqa: E402
from vem.vocoder import LearnedVocoder, audio_distances  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved pipeline with a learned vocoder")
    parser.add_argument("--clips", required=True, help="ground_truth.parquet of a paired set")
    parser.add_argument("--out", default="work/vocoder-bench")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    import pyarrow.parquet as pq

    torch.set_num_threads(1)
    pipe = VeMPipeline.from_pretrained(args.model)
    if not isinstance(pipe.vocoder, LearnedVocoder):
        sys.exit(f"{args.model} has no learned vocoder: train one with python -m jobs train --phase vocoder")
    vocoders = {"griffin_lim": GriffinLim(pipe.config.mel), "learned": pipe.vocoder}
    rows = [r for r in pq.read_table(args.clips).to_pylist() if r["status"] == "ok" and r.get("split") == "holdout"]
    rows = rows[: args.limit]
    if not rows:
        sys.exit(f"{args.clips}: no held-out clips")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sr = pipe.config.mel.sample_rate
    results: dict[str, list[dict[str, float]]] = {k: [] for k in vocoders}
    for i, r in enumerate(rows):
        y = load_audio(Path(r["uri"]).read_bytes())[: int(args.seconds * sr)]
        true = torch.from_numpy(y).float()[None]
        mel = pipe.logmel(true)
        made = {}
        for name, vocoder in vocoders.items():
            t0 = time.perf_counter()
            made[name] = vocoder(mel)
            seconds = time.perf_counter() - t0
            results[name].append({**audio_distances(made[name], true, pipe.logmel), "seconds_per_s": seconds / (len(y) / sr)})
        if i < 3:
            for name, wav in [("true", true), *made.items()]:
                (out / f"{r['id']}-{name}.png").write_bytes(
                    spectrogram_png(wav[0].numpy(), sr, f"{r['id']} ({r['ensemble']}, {r['piece']}): {name}"))
        print(f"{r['id']}: " + "  ".join(f"{k} mel {v[-1]['mel_l1']:.3f} mrstft {v[-1]['mrstft']:.3f}"
                                       for k, v in results.items()), file=sys.stderr)
    summary: dict[str, object] = {"clips": len(rows), "seconds_per_clip": args.seconds}
    for name, res in results.items():
        for metric in ("mel_l1", "mrstft", "seconds_per_s"):
            summary[f"{name}_{metric}"] = round(float(np.mean([x[metric] for x in res])), 4)
    for metric in ("mel_l1", "mrstft"):
        wins = sum(a[metric] < b[metric] for a, b in zip(results["learned"], results["griffin_lim"], strict=True))
        summary[f"learned_wins_{metric}"] = f"{wins}/{len(rows)}"
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
