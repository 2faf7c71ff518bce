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
                    beats: Sequence[float] | np.ndarray = ()) -> bytes:
    import librosa  # noqa: PLC0415
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=160, n_mels=64), ref=np.max)
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.imshow(mel, origin="lower", aspect="auto", extent=(0, len(y) / sr, 0, 64), cmap="magma", vmin=-70)
    for c in cuts:
        ax.axvline(c, color="cyan", lw=1.2)
    for b in beats:
        ax.axvline(b, color="white", lw=0.5, ls=":", ymax=0.15)
    ax.set(title=title, xlabel="s", ylabel="mel band")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


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
