"""How well a model's music fits held-out clips: generate, analyse, compare (no Ray, no MLflow).

For each clip: a soundtrack from the clip's storyboard, its beats (vem.audio), and
- ``cut_beat_hit`` / ``tbiou_tight`` / ``tbiou`` of the clip's transitions vs the generated beats;
- ``biou`` of the generated beats vs the clip's own soundtrack's beats;
- the key and mode of the generated music (chroma vs Krumhansl-Kessler profiles).
A WAV and a log-mel spectrogram PNG per clip are written to ``out_dir``.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vem import metrics
from vem.audio import analyze_audio, estimate_key
from vem.examples import Example
from vem.scoring import rhythm_metrics

__all__ = ["evaluate_clip", "validate_pipeline", "wav_bytes", "spectrogram_png"]


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of a mono float signal in [-1, 1]."""
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def spectrogram_png(y: np.ndarray, sr: int, title: str, cuts: Sequence[float] | np.ndarray = (),
                    beats: Sequence[float] | np.ndarray = (), *,
                    below: Sequence[tuple[np.ndarray, str, Sequence[float] | np.ndarray]] = ()) -> bytes:
    """A log-mel spectrogram PNG of ``y`` with the cuts (cyan) and beats (white ticks); ``below``:
    more (audio, title, beats) panels on the same time axis and cuts (the video's own music)."""
    import librosa  # noqa: PLC0415
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [(y, title, beats), *below]
    seconds = max(len(a) for a, _, _ in panels) / sr
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3 * len(panels)), squeeze=False)
    for ax, (audio, name, ticks) in zip(axes[:, 0], panels, strict=True):
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=1024, hop_length=160, n_mels=64),
                                  ref=np.max)
        ax.imshow(mel, origin="lower", aspect="auto", extent=(0, len(audio) / sr, 0, 64), cmap="magma", vmin=-70)
        for c in cuts:
            ax.axvline(c, color="cyan", lw=1.2)
        for b in ticks:
            ax.axvline(b, color="white", lw=0.5, ls=":", ymax=0.15)
        ax.set(title=name, xlabel="s", ylabel="mel band", xlim=(0, seconds))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def vae_embeddings(pipe: Any, y: np.ndarray, *, segment_s: float = 2.0, bands: int = 8) -> np.ndarray:
    """Embeddings of audio for a Fréchet distance, from the model's own VAE encoder (no pretrained
    audio model ships in a package here): per ``segment_s`` segment, the latents pooled into
    ``bands`` frequency bands per latent channel, their mean and standard deviation over time.
    Shape ``(n_segments, 2 * latent_channels * bands)``; audio shorter than one segment gives none.
    """
    import torch  # noqa: PLC0415

    cfg = pipe.config
    with torch.no_grad():
        z = pipe.audio_to_latents(torch.from_numpy(np.asarray(y, np.float32))[None].to(pipe.device))[0].cpu().numpy()
    z = z.reshape(len(z), cfg.latent_channels, -1)  # (latent frames, channels, latent mel bins)
    z = np.stack([part.mean(-1) for part in np.array_split(z, bands, axis=-1)], -1).reshape(len(z), -1)
    per = max(2, round(segment_s * cfg.latent_rate))
    segments = [z[s : s + per] for s in range(0, len(z) - per + 1, per)]
    return np.array([np.concatenate([g.mean(0), g.std(0)]) for g in segments]).reshape(len(segments), 2 * z.shape[1])


def evaluate_clip(y: np.ndarray, sr: int, cuts: np.ndarray, reference_beats: np.ndarray | None = None) -> dict[str, Any]:
    """Rhythm and key figures of one generated soundtrack for a clip with transitions ``cuts``."""
    analysis = analyze_audio(y, sr=sr)
    out: dict[str, Any] = {"tempo_bpm": analysis.tempo_bpm, "n_beats": len(analysis.beats), "beats": analysis.beats}
    if len(cuts) and len(analysis.beats):
        out.update(rhythm_metrics(np.asarray(cuts), analysis.beats))
    if reference_beats is not None and len(reference_beats) and len(analysis.beats):
        out["biou"] = metrics.biou(reference_beats, analysis.beats)
    tonic, mode, _ = estimate_key(y, sr=sr)
    out.update(key=tonic, mode=mode)
    return out


def validate_pipeline(pipe: Any, examples: Sequence[Example], out_dir: Path, *, steps: int = 10, seed: int = 0,
                      adapter_strength: float = 1.0) -> dict[str, float]:
    """Mean figures over ``examples``; WAVs and spectrograms of each go to ``out_dir``."""
    sr = pipe.config.mel.sample_rate
    rows = []
    for e in examples:
        y = pipe(e.storyboard, seed=seed, steps=steps, adapter_strength=adapter_strength)
        r = evaluate_clip(y, sr, e.storyboard.transitions, e.beats)
        rows.append(r)
        (out_dir / f"{e.id}.wav").write_bytes(wav_bytes(y, sr))
        title = f"{e.id}: cut_beat_hit {r.get('cut_beat_hit', float('nan')):.2f}, {r['tempo_bpm']:.0f} BPM"
        (out_dir / f"{e.id}.png").write_bytes(spectrogram_png(y, sr, title, e.storyboard.transitions, r["beats"]))
    keys = ("cut_beat_hit", "tbiou_tight", "tbiou", "biou", "tempo_bpm")
    return {k: float(np.mean([r[k] for r in rows if r.get(k) is not None])) for k in keys
            if any(r.get(k) is not None for r in rows)}
