"""Does a trained VeM model learn? Held-out sync, controls, mood, spectrograms, and a 3-minute seam check.

    python benchmarks/vem_evidence.py --model models/vem-small --catalog work/evidence/catalog \\
        --out work/evidence/report

On the held-out videos of the sample catalog (the train job's split: ``jobs.train.held_out`` with
the same ``--holdout``), per video:

- ``cut_beat_hit`` (share of the video's transitions with a generated beat within 0.1 s),
  ``tbiou_tight`` and the paper's ``tbiou`` (0.5 s) of the generated music, beside the same
  figures of the video's own soundtrack (the ground truth);
- controls: TB-As switched off (``adapter_strength=0``), and the generated music measured against
  *another* held-out video's transitions (shuffled pairing): if the alignment comes from the
  video, both fall; ``plan_cut_beat_hit``: the share of cuts on the TB-As beat plan itself;
- the mode (major/minor) of the generated music from its chroma vs the video's mood label
  (``bright`` → major, ``dark`` → minor), the same estimator on the ground-truth soundtrack, and on
  that soundtrack passed through the model's log-mel and vocoder (the ceiling of any model that
  speaks through this vocoder), and through the model's VAE too (encode, decode, vocoder: the
  ceiling of this model's latent space); ``mode_margin_*``: the mean of (best major − best minor
  profile correlation) over the bright and over the dark videos, generated and true: a model whose
  music carries the mood at all has a larger margin on the bright videos than on the dark ones,
  even where the binary mode estimate misses;
- ablations, each a flag (``--ablation NAME``, repeatable; ``cut_beat_hit_<name>`` in the summary):
  ``plan`` (TB-As reads the beat plan only, the aligner's features zeroed), ``aligner`` (the
  aligner only: no plan, no BPM from it; the paper's TB-As), ``empty-plan`` (the adapter with the
  plan's BPM but its beat channels empty) and ``mask-off`` (SG-CAtt without the storyboard mask,
  the paper's own ablation; ``hard`` is the default);
- tempo: the generated music's tempo (beat tracker) within 8 % of the beat plan's BPM, the tempo
  the model was asked for (``tempo_within_8pct_of_plan``; ``..._octave`` also accepts double or
  half, the beat tracker's usual slip);
- Fréchet distances (``fd_*``) between embeddings of the generated and of the real held-out audio
  (the model's own VAE encoder, ``vem.validation.vae_embeddings``: no pretrained audio model ships
  in a package here), per mood and averaged over the moods: ours; ours decoded by Griffin-Lim
  instead of the learned vocoder (the same log-mels); and a shuffled-condition control (each
  clip's music taken as another clip's: a derangement with ``--seed``). ``fd_*_pooled``: the
  same over all clips regardless of mood;
- log-mel spectrogram PNGs of the first clips, generated above the video's own music, with the
  cuts (cyan) and the detected beats;
- a 180 s storyboard (held-out videos one after another) generated in one call: spectral flux
  around every window join vs the clip's 99th percentile.

The transitions are the catalog's ground truth, so parser errors do not blur the model's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.train import held_out  # noqa: E402
from vem.audio import analyze_audio, estimate_key, load_audio  # noqa: E402
from vem.mel import GriffinLim  # noqa: E402
from vem.metrics import frechet_distance  # noqa: E402
from vem.pipeline import VeMPipeline  # noqa: E402
from vem.scoring import rhythm_metrics  # noqa: E402
from vem.stitch import window_starts  # noqa: E402
from vem.storyboard import Storyboard  # noqa: E402
from vem.validation import spectrogram_png, vae_embeddings, wav_bytes  # noqa: E402

MOOD_MODE = {"bright": "major", "dark": "minor"}
ABLATIONS: dict[str, dict[str, Any]] = {  # generation arguments of each ablation
    "plan": {"adapter_inputs": "plan"}, "aligner": {"adapter_inputs": "aligner"},
    "empty-plan": {"adapter_inputs": "empty-plan"}, "mask-off": {"mask_mode": "off"},
}


def concatenate(boards: list[Storyboard], seconds: float) -> Storyboard:
    """Storyboards one after another (each join a hard cut), cut at ``seconds``."""
    fps = boards[0].fps
    offs, t = [], 0.0
    for b in boards:
        offs.append(t)
        t += b.duration_s
    cuts = [o + c for b, o in zip(boards, offs, strict=True) for c in b.transitions] + offs[1:]
    starts = [o + s for b, o in zip(boards, offs, strict=True) for s in b.shot_starts]
    cat = np.concatenate
    n = int(round(seconds * fps))
    starts_a = np.array(sorted(s for s in starts if s < seconds))
    durations = np.diff(np.append(starts_a, seconds))
    indicator = cat([b.transition_indicator for b in boards])[:n]
    return Storyboard(
        fps=fps, duration_s=seconds, transitions=np.array(sorted(c for c in cuts if c < seconds)),
        transition_kinds=["hard"] * sum(c < seconds for c in cuts), transition_strengths=np.ones(sum(c < seconds for c in cuts)),
        shot_starts=starts_a, shot_durations=durations, keyframe_times=starts_a + durations / 2,
        transition_indicator=indicator, motion_energy=cat([b.motion_energy for b in boards])[:n],
        embeddings=cat([b.embeddings for b in boards])[:n],
    )


def mode_and_margin(y: np.ndarray, sr: int) -> tuple[str, float]:
    """The estimated mode, and best major − best minor key-profile correlation (> 0: major)."""
    best = {mode: max(estimate_key_profile(y, sr, mode)) for mode in ("major", "minor")}
    return ("major" if best["major"] >= best["minor"] else "minor"), best["major"] - best["minor"]


def estimate_key_profile(y: np.ndarray, sr: int, mode: str) -> list[float]:
    """The mean chroma's correlation with the 12 rotations of a Krumhansl-Kessler profile (vem.audio's estimator)."""
    import librosa  # noqa: PLC0415

    from vem.audio import _MAJOR, _MINOR, HOP  # noqa: PLC0415

    chroma = librosa.feature.chroma_stft(y=np.asarray(y, np.float32), sr=sr, hop_length=HOP * 4).mean(axis=1)
    profile = _MAJOR if mode == "major" else _MINOR
    if chroma.std() == 0:
        return [0.0]
    return [float(np.corrcoef(chroma, np.roll(profile, k))[0, 1]) for k in range(12)]


def flux(y: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    return np.concatenate([[0.0], np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)])


_STATE: dict[str, Any] = {}


def _init(args: argparse.Namespace, pipe: VeMPipeline | None = None) -> None:
    """A process's model and arguments (a pool worker loads its own, with one torch thread)."""
    if pipe is None:
        torch.set_num_threads(1)
        pipe = VeMPipeline.from_pretrained(args.model)
    _STATE.update(args=args, pipe=pipe, griffin_lim=None if isinstance(pipe.vocoder, GriffinLim) else GriffinLim(pipe.config.mel))


def _ceilings(pipe: VeMPipeline, data: bytes, row: dict[str, Any]) -> dict[str, Any]:
    """The real soundtrack's mode as it is, through the model's log-mel and vocoder (the ceiling of any
    model that speaks through them), and through its VAE too (the ceiling of this latent space)."""
    sr = pipe.config.mel.sample_rate
    real = load_audio(data)
    row["truth_mode"], row["truth_margin"] = mode_and_margin(real, sr)
    with torch.no_grad():
        mel = pipe.logmel(torch.from_numpy(real)[None])
        vocoded = pipe.vocoder(mel)[0].cpu().numpy()
        through_vae = pipe.vocoder(pipe.latents_to_mel(pipe.mel_to_latents(mel))[:, : mel.shape[1]])[0].cpu().numpy()
    row["truth_vocoded_mode"] = estimate_key(vocoded, sr=sr)[1]
    row["truth_vae_mode"] = estimate_key(through_vae, sr=sr)[1]
    return row


def _one_video(i: int, r: dict[str, Any]) -> tuple[dict[str, Any], Storyboard]:
    """One held-out video's figures (and its storyboard, for the 180 s check)."""
    args, pipe = _STATE["args"], _STATE["pipe"]
    out, sr = Path(args.out), pipe.config.mel.sample_rate
    data = (Path(args.catalog) / "videos" / f"{r['id']}.mp4").read_bytes()
    sb = pipe.storyboard(data)
    cuts = np.asarray(r["transitions"], float)
    if args.ceilings_only:
        return _ceilings(pipe, data, {"id": r["id"], "mood": r["mood"]}), sb
    mel, n_samples = pipe.generate_mel(sb, seed=args.seed, steps=args.steps, guidance_scale=args.guidance)
    y = pipe.decode(mel, n_samples)
    y_gl = y if _STATE["griffin_lim"] is None else pipe.decode(mel, n_samples, _STATE["griffin_lim"])
    y_off = pipe(sb, seed=args.seed, steps=args.steps, guidance_scale=args.guidance, adapter_strength=0.0)
    ablated = {name: pipe(sb, seed=args.seed, steps=args.steps, guidance_scale=args.guidance, **ABLATIONS[name])
               for name in args.ablation or []}
    analysis = analyze_audio(y, sr=sr)
    beats = analysis.beats
    beats_off = analyze_audio(y_off, sr=sr).beats
    real = load_audio(data)
    real_beats = analyze_audio(real).beats
    row: dict[str, Any] = {"id": r["id"], "mood": r["mood"], "n_cuts": len(cuts), "tempo_true": r["tempo_bpm"]}
    ablated_beats = [(f"abl_{name}", analyze_audio(y_abl, sr=sr).beats) for name, y_abl in ablated.items()]
    for name, b in (("gen", beats), ("off", beats_off), ("truth", real_beats), *ablated_beats):
        if len(cuts) and len(b):
            m = rhythm_metrics(cuts, b)
            row.update({f"{name}_{k}": m[k] for k in ("cut_beat_hit", "tbiou_tight", "tbiou")})
    row["gen_mode"], row["gen_margin"] = mode_and_margin(y, sr)
    _ceilings(pipe, data, row)
    plan = pipe.beat_plan(sb)
    row["tempo_gen"], row["tempo_plan"] = analysis.tempo_bpm, plan.bpm
    row["emb_gen"], row["emb_gl"], row["emb_real"] = (vae_embeddings(pipe, a) for a in (y, y_gl, real))
    row["plan_cut_beat_hit"] = rhythm_metrics(cuts, plan.beats)["cut_beat_hit"] if len(cuts) else None
    row["gen_beats"], row["n_samples"] = beats, len(y)
    if i < args.pngs:
        (out / f"{r['id']}.png").write_bytes(spectrogram_png(
            y, sr, f"{r['id']} generated ({r['mood']})", cuts, beats,
            below=[(real, f"{r['id']}: the video's own music", real_beats)]))
        (out / f"{r['id']}.wav").write_bytes(wav_bytes(y, sr))
    print(f"  {r['id']}: hit {row.get('gen_cut_beat_hit', float('nan')):.2f} (truth "
          f"{row.get('truth_cut_beat_hit', float('nan')):.2f}, adapter off {row.get('off_cut_beat_hit', float('nan')):.2f}), "
          f"{row['gen_mode']} for {r['mood']}", file=sys.stderr)
    return row, sb


def tempo_agrees(generated: float, planned: float, *, octave: bool = False, within: float = 0.08) -> bool:
    """The generated tempo within ``within`` of the planned one (``octave``: or of its double or half)."""
    return any(abs(generated / (planned * k) - 1.0) <= within for k in ((0.5, 1.0, 2.0) if octave else (1.0,)))


def frechet_figures(rows: list[dict[str, Any]], seed: int) -> dict[str, float]:
    """Fréchet distances of the generated (and Griffin-Lim, and shuffled) audio's embeddings to the
    real audio's: per mood (the generated music of the clips of one mood against their real music),
    averaged over the moods; and pooled over all clips."""
    if len(rows) < 2:
        return {}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    while np.any(order == np.arange(len(rows))):  # a derangement: no clip keeps its own music
        order = rng.permutation(len(rows))

    def stack(key: str, which: list[int]) -> np.ndarray:
        parts = [rows[i][key] for i in which if len(rows[i][key])]
        return np.concatenate(parts) if parts else np.empty((0, 0))

    def fd(key: str, source: np.ndarray, mood: str | None) -> float | None:
        mine = [i for i, r in enumerate(rows) if mood is None or r["mood"] == mood]
        a, b = stack(key, [int(source[i]) for i in mine]), stack("emb_real", mine)
        return frechet_distance(a, b) if min(len(a), len(b)) >= 2 else None

    same = np.arange(len(rows))
    figures: dict[str, float] = {}
    for name, key, source in (("ours", "emb_gen", same), ("griffin_lim", "emb_gl", same),
                              ("shuffled_conditions", "emb_gen", order)):
        per_mood = [d for mood in MOOD_MODE if (d := fd(key, source, mood)) is not None]
        if per_mood:
            figures[f"fd_{name}"] = round(float(np.mean(per_mood)), 3)
        pooled = fd(key, source, None)
        if pooled is not None:
            figures[f"fd_{name}_pooled"] = round(pooled, 3)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a saved pipeline folder")
    ap.add_argument("--catalog", required=True, help="output folder of python -m jobs sample")
    ap.add_argument("--holdout", type=float, default=0.2, help="the train job's --holdout")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance (default: the pipeline's 3)")
    ap.add_argument("--split", choices=["held-out", "train"], default="held-out",
                    help="which videos: the held-out ones (the evidence) or the training ones (diagnosis: "
                         "does the model fit the mood where it was trained?)")
    ap.add_argument("--pngs", type=int, default=4, help="spectrograms of this many clips")
    ap.add_argument("--limit", type=int, default=None, help="only the first N held-out videos (a quick look)")
    ap.add_argument("--no-long", action="store_true", help="skip the 180 s seam check")
    ap.add_argument("--ceilings-only", action="store_true",
                    help="only the mode of the real soundtracks: as they are, through the model's log-mel and vocoder, "
                         "and through its VAE too (no generation: where does the mood get lost?)")
    ap.add_argument("--procs", type=int, default=1, help="videos generated in this many processes (default: %(default)s)")
    ap.add_argument("--ablation", action="append", choices=sorted(ABLATIONS),
                    help="also generate with this part ablated (repeatable): see the module docstring")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import pyarrow.parquet as pq  # noqa: PLC0415

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = VeMPipeline.from_pretrained(args.model)
    sr = pipe.config.mel.sample_rate
    truth = [r for r in pq.read_table(Path(args.catalog) / "ground_truth.parquet").to_pylist()
             if r["status"] == "ok" and held_out(r["id"], args.holdout) == (args.split == "held-out")]
    truth = truth[: args.limit]
    print(f"{len(truth)} {args.split} videos", file=sys.stderr)
    rows, boards = [], []
    t0 = time.time()
    if args.procs > 1:  # videos in parallel processes of one torch thread each (a busy machine's fair share)
        import multiprocessing  # noqa: PLC0415
        from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

        with ProcessPoolExecutor(args.procs, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                                 initargs=(args,)) as pool:
            done = list(pool.map(_one_video, range(len(truth)), truth))
    else:
        _init(args, pipe)
        done = [_one_video(i, r) for i, r in enumerate(truth)]
    for row, sb in done:
        rows.append(row)
        boards.append(sb)
    if args.ceilings_only:
        agree = {k: round(float(np.mean([MOOD_MODE[r["mood"]] == r[k] for r in rows])), 3)
                 for k in ("truth_mode", "truth_vocoded_mode", "truth_vae_mode")}
        print(json.dumps({"videos": len(rows), "split": args.split, "n_mels": pipe.config.mel.n_mels,
                          **{f"{k}_agrees_with_mood": v for k, v in agree.items()}}, indent=2))
        return
    # shuffled: each video's music against the next video's cuts
    shuffled = []
    for i, row in enumerate(rows):
        other = truth[(i + 1) % len(truth)]
        cuts = np.asarray(other["transitions"], float)
        cuts = cuts[cuts < row["n_samples"] / sr]
        if len(cuts) and len(row["gen_beats"]):
            shuffled.append(rhythm_metrics(cuts, row["gen_beats"])["cut_beat_hit"])

    def mean(key: str) -> float:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(values)), 3) if values else float("nan")

    summary = {
        "held_out_videos": len(rows), "steps": args.steps,
        "cut_beat_hit": mean("gen_cut_beat_hit"), "cut_beat_hit_truth": mean("truth_cut_beat_hit"),
        "cut_beat_hit_adapter_off": mean("off_cut_beat_hit"), "cut_beat_hit_shuffled": round(float(np.mean(shuffled)), 3),
        "tbiou_tight": mean("gen_tbiou_tight"), "tbiou_tight_truth": mean("truth_tbiou_tight"),
        "tbiou": mean("gen_tbiou"), "tbiou_truth": mean("truth_tbiou"),
        "mode_agrees_with_mood": round(float(np.mean([MOOD_MODE[r["mood"]] == r["gen_mode"] for r in rows])), 3),
        "truth_mode_agrees_with_mood": round(float(np.mean([MOOD_MODE[r["mood"]] == r["truth_mode"] for r in rows])), 3),
        "truth_vocoded_mode_agrees_with_mood": round(float(np.mean([MOOD_MODE[r["mood"]] == r["truth_vocoded_mode"]
                                                                    for r in rows])), 3),
        "truth_vae_mode_agrees_with_mood": round(float(np.mean([MOOD_MODE[r["mood"]] == r["truth_vae_mode"]
                                                                for r in rows])), 3),
        **{f"mode_margin_{who}_{mood}": round(float(np.mean([r[f"{who}_margin"] for r in rows if r["mood"] == mood])), 3)
           for who in ("gen", "truth") for mood in MOOD_MODE if any(r["mood"] == mood for r in rows)},
        "guidance": args.guidance, "split": args.split,
        "plan_cut_beat_hit": mean("plan_cut_beat_hit"),
        "tempo_within_8pct_of_plan": round(float(np.mean([tempo_agrees(r["tempo_gen"], r["tempo_plan"]) for r in rows])), 3),
        "tempo_within_8pct_of_plan_octave": round(float(np.mean([tempo_agrees(r["tempo_gen"], r["tempo_plan"], octave=True)
                                                                 for r in rows])), 3),
        **frechet_figures(rows, args.seed),
        **{f"cut_beat_hit_{name}": mean(f"abl_{name}_cut_beat_hit") for name in args.ablation or []},
        "seconds_per_video": round((time.time() - t0) / max(len(rows), 1), 1),
    }
    summary["hit_ratio_to_truth"] = round(summary["cut_beat_hit"] / summary["cut_beat_hit_truth"], 3)
    if not args.no_long:
        summary.update(seam_check(pipe, boards, args, out))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    kept = [{k: v for k, v in r.items() if k not in ("gen_beats", "n_samples") and not k.startswith("emb_")} for r in rows]
    (out / "clips.json").write_text(json.dumps(kept, indent=2, default=float))
    print(json.dumps(summary, indent=2))


def seam_check(pipe: VeMPipeline, boards: list[Storyboard], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """180 s in one call: spectral flux at the window joins against the soundtrack's 99th percentile."""
    sr = pipe.config.mel.sample_rate
    long_board = concatenate((boards * 20)[: max(1, int(np.ceil(180 / np.mean([b.duration_s for b in boards]))) + 1)], 180.0)
    y = pipe(long_board, seed=args.seed, steps=args.steps)
    f = flux(y)
    limit = float(np.percentile(f, 99))
    window = round(pipe.config.window_s * pipe.config.latent_rate)
    overlap = round(pipe.config.overlap_s * pipe.config.latent_rate)
    samples_per_latent = pipe.config.mel.hop * pipe.config.vae_factor
    joins = [(s + overlap // 2) * samples_per_latent for s in window_starts(int(np.ceil(180 * pipe.config.latent_rate)),
                                                                            window, overlap)[1:]]
    at = [float(f[max(0, (j - 1024) // 256 + 1) : j // 256 + 1].mean()) for j in joins]
    (out / "long_180s.png").write_bytes(spectrogram_png(y[: 30 * sr], sr, "first 30 s of the 180 s soundtrack"))
    (out / "long_180s.wav").write_bytes(wav_bytes(y, sr))
    return {"long_seconds": round(len(y) / sr, 2), "long_joins": len(joins),
            "long_joins_within_p99": int(sum(a <= limit for a in at))}

if __name__ == "__main__":
    main()
