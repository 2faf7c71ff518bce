"""Conditions of the denoiser: global tokens and one storyboard token per shot.

Per video (:func:`video_conditions`, numpy, computed once): the video-level visual embedding, an
optional caption and tags through a pluggable text encoder, and per shot its visual embedding
(mean over the shot's analysis frames), optional text, start and duration, plus the frame-level
features the TB-As aligner reads.

Per window of latent frames (:func:`window_batch`, torch, padded over a batch): shot times are
made relative to the window's start (so a 3-minute video and a 10-second clip look alike to the
model) and only the shots that overlap the window are kept.

:class:`Conditioner` turns a batch into tokens (``d_model`` each):
global = [visual, BPM, caption, tags] (the last two only when ``text_dim > 0``);
storyboard token i = MLP([shot visual ‖ shot text ‖ position enc(i) ‖ time MLP(start) ‖
time MLP(duration)]). A condition that is absent (no caption, no BPM) or dropped for
classifier-free guidance is replaced by a learned null token of its slot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vem.presets import VeMConfig
from vem.storyboard import Storyboard

__all__ = ["VideoConditions", "ConditionBatch", "video_conditions", "window_batch", "Conditioner", "frame_features"]

TextEncoder = Callable[[list[str]], np.ndarray]
SINUSOID = 16  # size of the shot position encoding and of the time MLP's Fourier features


def frame_features(sb: Storyboard) -> np.ndarray:
    """The aligner's input per analysis frame: transition indicator, motion energy (robustly
    scaled), time since the shot began (s, capped at 4, /4), and the visual embedding."""
    n = len(sb.transition_indicator)
    t = np.arange(n) / sb.fps
    shot = np.clip(np.searchsorted(sb.shot_starts, t, side="right") - 1, 0, max(len(sb.shot_starts) - 1, 0))
    since = np.minimum(t - sb.shot_starts[shot], 4.0) / 4.0 if len(sb.shot_starts) else np.zeros(n)
    motion = sb.motion_energy.astype(np.float32)
    motion = motion / (np.percentile(motion, 95) + 1e-6) if n else motion
    emb = sb.embeddings if len(sb.embeddings) == n else np.zeros((n, 0), np.float32)
    return np.concatenate([sb.transition_indicator[:, None], motion[:, None], since[:, None], emb], axis=1).astype(np.float32)


@dataclass
class VideoConditions:
    duration_s: float
    global_visual: np.ndarray  # (Dv,)
    shot_starts: np.ndarray  # (S,) s
    shot_durations: np.ndarray  # (S,) s
    shot_visual: np.ndarray  # (S, Dv)
    frame_features: np.ndarray  # (n_frames, 3 + Dv) at fps
    fps: float
    shot_text: np.ndarray | None = None  # (S, Dt)
    caption: np.ndarray | None = None  # (Dt,)
    tags: np.ndarray | None = None  # (Dt,)
    bpm: float | None = None


def video_conditions(sb: Storyboard, *, text_encoder: TextEncoder | None = None, caption: str | None = None,
                     tags: Sequence[str] | None = None, shot_texts: Sequence[str] | None = None,
                     bpm: float | None = None) -> VideoConditions:
    """Everything the model reads from one video, once."""
    emb = np.asarray(sb.embeddings, np.float32)
    n = len(emb)
    starts = np.asarray(sb.shot_starts, np.float64)
    durs = np.asarray(sb.shot_durations, np.float64)
    if len(starts) == 0:  # no shots parsed: the whole video is one
        starts, durs = np.zeros(1), np.array([sb.duration_s])
    shot_visual = np.zeros((len(starts), emb.shape[1] if emb.ndim == 2 else 0), np.float32)
    for i, (s, d) in enumerate(zip(starts, durs, strict=True)):
        lo, hi = int(s * sb.fps), max(int(math.ceil((s + d) * sb.fps)), int(s * sb.fps) + 1)
        if n:
            shot_visual[i] = emb[min(lo, n - 1) : min(hi, n)].mean(axis=0)
    texts: dict[str, np.ndarray | None] = {"caption": None, "tags": None, "shot_text": None}
    if text_encoder is not None:
        if caption:
            texts["caption"] = text_encoder([caption])[0]
        if tags:
            texts["tags"] = text_encoder([", ".join(tags)])[0]
        if shot_texts is not None:
            if len(shot_texts) != len(starts):
                raise ValueError(f"{len(shot_texts)} shot texts for {len(starts)} shots")
            texts["shot_text"] = text_encoder(list(shot_texts))
    elif caption or tags or shot_texts:
        raise ValueError("a caption, tags or shot texts need a model with a text encoder")
    return VideoConditions(
        duration_s=float(sb.duration_s), global_visual=emb.mean(axis=0) if n else np.zeros(shot_visual.shape[1], np.float32),
        shot_starts=starts, shot_durations=durs, shot_visual=shot_visual, frame_features=frame_features(sb),
        fps=float(sb.fps), bpm=bpm, **texts,
    )


@dataclass
class ConditionBatch:
    """A batch of windows' conditions (torch, padded to the most shots in the batch)."""

    global_visual: torch.Tensor  # (B, Dv)
    bpm: torch.Tensor  # (B,), NaN = none
    caption: torch.Tensor  # (B, Dt); rows without a caption are ignored (caption_on False)
    caption_on: torch.Tensor  # (B,) bool
    tags: torch.Tensor  # (B, Dt)
    tags_on: torch.Tensor  # (B,) bool
    shot_visual: torch.Tensor  # (B, S, Dv)
    shot_text: torch.Tensor  # (B, S, Dt)
    shot_index: torch.Tensor  # (B, S) position of the shot in its video
    shot_starts: torch.Tensor  # (B, S) s, relative to the window's start
    shot_durations: torch.Tensor  # (B, S) s
    shot_valid: torch.Tensor  # (B, S) bool

    def to(self, device: torch.device | str) -> ConditionBatch:
        return ConditionBatch(**{k: v.to(device) for k, v in vars(self).items()})

    def repeat(self, n: int) -> ConditionBatch:
        return ConditionBatch(**{k: v.repeat(n, *([1] * (v.dim() - 1))) for k, v in vars(self).items()})


def window_batch(videos: Sequence[VideoConditions], starts_s: Sequence[float], window_s: float,
                 text_dim: int) -> ConditionBatch:
    """Conditions of the window ``[start, start + window_s)`` of each video (shots overlapping it)."""
    rows = []
    for vc, t0 in zip(videos, starts_s, strict=True):
        keep = np.nonzero((vc.shot_starts < t0 + window_s) & (vc.shot_starts + vc.shot_durations > t0))[0]
        if len(keep) == 0:  # past the end: the last shot goes on
            keep = np.array([len(vc.shot_starts) - 1])
        rows.append((vc, t0, keep))
    b, s = len(rows), max(len(k) for _, _, k in rows)
    dv = len(videos[0].global_visual)
    out = ConditionBatch(
        global_visual=torch.zeros(b, dv), bpm=torch.full((b,), float("nan")),
        caption=torch.zeros(b, text_dim), caption_on=torch.zeros(b, dtype=torch.bool),
        tags=torch.zeros(b, text_dim), tags_on=torch.zeros(b, dtype=torch.bool),
        shot_visual=torch.zeros(b, s, dv), shot_text=torch.zeros(b, s, text_dim),
        shot_index=torch.zeros(b, s, dtype=torch.long), shot_starts=torch.zeros(b, s),
        shot_durations=torch.zeros(b, s), shot_valid=torch.zeros(b, s, dtype=torch.bool),
    )
    for r, (vc, t0, keep) in enumerate(rows):
        k = len(keep)
        out.global_visual[r] = torch.from_numpy(vc.global_visual)
        if vc.bpm is not None:
            out.bpm[r] = float(vc.bpm)
        for name in ("caption", "tags"):
            value = getattr(vc, name)
            if value is not None and text_dim:
                getattr(out, name)[r] = torch.from_numpy(np.asarray(value, np.float32))
                getattr(out, name + "_on")[r] = True
        out.shot_visual[r, :k] = torch.from_numpy(vc.shot_visual[keep])
        if vc.shot_text is not None and text_dim:
            out.shot_text[r, :k] = torch.from_numpy(np.asarray(vc.shot_text, np.float32)[keep])
        out.shot_index[r, :k] = torch.from_numpy(keep)
        out.shot_starts[r, :k] = torch.from_numpy((vc.shot_starts[keep] - t0).astype(np.float32))
        out.shot_durations[r, :k] = torch.from_numpy(vc.shot_durations[keep].astype(np.float32))
        out.shot_valid[r, :k] = True
    return out


def sinusoid(x: torch.Tensor, n: int = SINUSOID, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sinusoidal encoding of ``x`` (any shape) → (..., n)."""
    freqs = torch.exp(-math.log(max_period) * torch.arange(n // 2, device=x.device) / (n // 2))
    a = x.float()[..., None] * freqs
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


class TimeMLP(nn.Module):
    """Continuous-time encoding of seconds: Fourier features (periods 0.25 s .. 128 s) → MLP."""

    freqs: torch.Tensor

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("freqs", 2 * math.pi / torch.logspace(math.log10(0.25), math.log10(128.0), SINUSOID // 2),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(SINUSOID + 1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, seconds: torch.Tensor) -> torch.Tensor:
        a = seconds[..., None] * self.freqs
        return self.mlp(torch.cat([torch.sin(a), torch.cos(a), seconds[..., None] / 60.0], dim=-1))


class Conditioner(nn.Module):
    def __init__(self, cfg: VeMConfig):
        super().__init__()
        d, dv, dt = cfg.d_model, cfg.visual_dim, cfg.text_dim
        self.text_dim = dt
        self.n_global = 4 if dt else 2
        self.visual = nn.Sequential(nn.Linear(dv, d), nn.SiLU(), nn.Linear(d, d))
        self.bpm = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, d))
        self.text = nn.Linear(dt, d) if dt else None
        self.time = TimeMLP(d // 4)
        self.shot = nn.Sequential(nn.Linear(dv + dt + SINUSOID + 2 * (d // 4), d), nn.SiLU(), nn.Linear(d, d))
        self.null_global = nn.Parameter(torch.randn(self.n_global, d) * 0.02)
        self.null_shot = nn.Parameter(torch.randn(d) * 0.02)

    def forward(self, c: ConditionBatch, drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, n_global + S, d)`` and their validity ``(B, n_global + S)``.

        ``drop`` (B,) bool replaces every condition of a row by the null tokens (guidance).
        """
        b = c.global_visual.shape[0]
        drop = torch.zeros(b, dtype=torch.bool, device=c.global_visual.device) if drop is None else drop
        has_bpm = ~torch.isnan(c.bpm)
        bpm = torch.log2(torch.nan_to_num(c.bpm, nan=120.0).clamp(30, 300) / 120.0)[:, None]
        glob = [(self.visual(c.global_visual), ~drop), (self.bpm(bpm), has_bpm & ~drop)]
        if self.text is not None:
            glob += [(self.text(c.caption), c.caption_on & ~drop), (self.text(c.tags), c.tags_on & ~drop)]
        tokens = torch.stack([torch.where(on[:, None], tok, self.null_global[i]) for i, (tok, on) in enumerate(glob)], dim=1)
        parts = [c.shot_visual]
        if self.text_dim:
            parts.append(c.shot_text)
        parts += [sinusoid(c.shot_index), self.time(c.shot_starts), self.time(c.shot_durations)]
        shots = self.shot(torch.cat(parts, dim=-1))
        shots = torch.where(drop[:, None, None], self.null_shot, shots)
        valid = torch.cat([torch.ones(b, self.n_global, dtype=torch.bool, device=shots.device), c.shot_valid], dim=1)
        return torch.cat([tokens, shots], dim=1), valid
