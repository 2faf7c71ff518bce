"""The losses of VeM's training phases (the Ray Train job drives them; nothing here knows Ray).

1. :func:`vae_loss` (the music latent space) and :func:`aligner_loss` (TB-As aligner);
2. :func:`diffusion_loss` with global + storyboard conditions (adapter off);
3. :func:`diffusion_loss` again with ``adapter_strength=1`` and only the adapters trainable
   (:func:`trainable_parameters` picks each phase's parameters);
4. besides the paper: ``vocoder``, a learned vocoder (:mod:`vem.vocoder`) on the true audio.

:class:`PhaseLoss` is one phase's loss as a module (what DDP wraps: its gradients are averaged
across workers in the backward pass), :func:`lr_factor` the learning-rate schedule (linear
warm-up, cosine decay to a tenth) and :class:`EMA` the exponential moving average of the
trained weights that a phase ends with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vem.beatgrid import beat_channels
from vem.conditioning import ConditionBatch, VideoConditions, video_conditions, window_batch
from vem.examples import Example
from vem.mel import MelConfig, mel_to_chroma
from vem.pipeline import VeMPipeline, noise_scheduler

__all__ = ["vae_loss", "chroma_loss", "aligner_loss", "diffusion_loss", "trainable_parameters", "crop_batch", "TrainBatch",
           "PHASES", "EMA", "PhaseLoss", "lr_factor"]

PHASES = ("vae", "aligner", "diffusion", "adapter", "vocoder")


def vae_loss(pipe: VeMPipeline, logmel: torch.Tensor, kl_weight: float = 1e-4, chroma_weight: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """L1 reconstruction of the log-mel + ``chroma_weight`` x chroma loss + ``kl_weight`` x KL to N(0, I).

    The chroma term (:func:`chroma_loss`) keeps the pitch classes of the music: an L1 on the
    log-mel weighs the noise floor as much as the harmonic peaks, so a VAE trained on it alone
    blurs a minor third into a major one while its L1 still falls.
    """
    f = pipe.config.vae_factor
    x = logmel[:, : logmel.shape[1] - logmel.shape[1] % f, None].transpose(1, 2)  # (B, 1, T, M)
    dist = pipe.vae.encode(x).latent_dist
    recon = pipe.vae.decode(dist.sample(generator)).sample
    loss = nn.functional.l1_loss(recon, x) + kl_weight * dist.kl().mean() / dist.mean[0].numel()
    if chroma_weight:
        loss = loss + chroma_weight * chroma_loss(recon[:, 0], x[:, 0], _chroma_map(pipe.config.mel, x.device))
    return loss


def chroma_loss(logmel: torch.Tensor, target: torch.Tensor, to_chroma: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the L1 distance between unit-length chroma vectors of two log-mels (B, T, M).

    Scale-free (a louder frame has the same chroma), so it compares harmony only; 0 for equal input.
    """
    def unit(m: torch.Tensor) -> torch.Tensor:
        c = torch.exp(m.float()) @ to_chroma.T  # (B, T, 12)
        return c / (c.norm(dim=-1, keepdim=True) + 1e-8)

    return (unit(logmel) - unit(target)).abs().sum(-1).mean()


@functools.lru_cache(maxsize=8)
def _chroma_map(cfg: MelConfig, device: torch.device) -> torch.Tensor:
    return mel_to_chroma(cfg).to(device)


def aligner_loss(pipe: VeMPipeline, frame_features: torch.Tensor, targets: torch.Tensor,
                 pos_weight: float = 10.0) -> torch.Tensor:
    """BCE of the aligner's per-frame logits against transition ∩ beat targets (B, n_frames).

    Positives are rare (a few frames in a hundred), hence ``pos_weight``.
    """
    _, logits = pipe.aligner(frame_features)
    return nn.functional.binary_cross_entropy_with_logits(
        logits, targets.float(), pos_weight=torch.tensor(pos_weight, device=logits.device))


def diffusion_loss(pipe: VeMPipeline, latents: torch.Tensor, cond: ConditionBatch, frame_features: torch.Tensor | None,
                   *, adapter_strength: float = 0.0, noise: torch.Tensor | None = None,
                   timesteps: torch.Tensor | None = None, drop: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, beats: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM loss (MSE against ε or v, as configured) on windows of latents ``(B, L, F)``.

    ``cond`` holds the windows' conditions (:func:`vem.conditioning.window_batch`);
    ``frame_features`` (B, n_frames, F) the aligner's input over the same windows. Conditions are
    dropped with probability ``config.cond_dropout`` (classifier-free guidance) unless ``drop`` is
    given; ``noise`` and ``timesteps`` may be fixed (tests), else drawn. ``beats`` (B, BEAT_CHANNELS,
    L): the beat channels of the windows (:attr:`TrainBatch.beat_channels`), for a ``beat_plan`` model.
    """
    cfg = pipe.config
    b, n, _ = latents.shape
    sched = noise_scheduler(cfg)
    if noise is None:
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    if timesteps is None:
        timesteps = torch.randint(0, cfg.train_timesteps, (b,), generator=generator).to(latents.device)
    if drop is None:
        drop = (torch.rand(b, generator=generator) < cfg.cond_dropout).to(latents.device)
    noisy = sched.add_noise(latents, noise, timesteps)
    target = noise if cfg.prediction_type == "epsilon" else sched.get_velocity(latents, noise, timesteps)
    tokens, bias = pipe.window_inputs(cond, n, drop=drop)
    align = None
    if frame_features is not None and adapter_strength:
        features, _ = pipe.aligner(frame_features)
        align = nn.functional.interpolate(features, size=n, mode="linear", align_corners=False)
        if cfg.beat_plan:
            if beats is None:
                raise ValueError("this model's adapter reads beat channels: pass beats=batch.beat_channels")
            align = torch.cat([align, beats.to(align)], dim=1)
    pred = pipe.denoiser(noisy, timesteps, tokens, bias, align, adapter_strength)
    return nn.functional.mse_loss(pred, target)


def trainable_parameters(pipe: VeMPipeline, phase: str) -> Iterator[nn.Parameter]:
    """The parameters a phase trains (everything else stays frozen)."""
    if phase == "vae":
        yield from pipe.vae.parameters()
    elif phase == "aligner":
        yield from pipe.aligner.parameters()
    elif phase == "diffusion":
        yield from pipe.conditioner.parameters()
        for name, p in pipe.denoiser.named_parameters():
            if not name.startswith("adapters."):
                yield p
    elif phase == "adapter":
        yield from pipe.denoiser.adapters.parameters()
    elif phase == "vocoder":
        yield from pipe.vocoder.parameters()
    else:
        raise ValueError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")


@dataclass
class TrainBatch:
    """Random crops of a few examples, aligned across the mel, the frames and the conditions."""

    logmel: torch.Tensor  # (B, T, n_mels), T a multiple of the VAE factor
    frames: torch.Tensor  # (B, n, 3 + Dv) aligner input at fps
    tb_target: torch.Tensor  # (B, n)
    cond: ConditionBatch
    starts_s: list[float]
    latent_starts: list[int]  # first latent frame of each crop
    n_latent: int  # latent frames per crop
    beat_channels: torch.Tensor  # (B, BEAT_CHANNELS, n_latent) of the clips' real beats (vem.beatgrid)


def crop_batch(pipe: VeMPipeline, examples: Sequence[Example], crop_s: float, rng: np.random.Generator,
               conditions: Sequence[VideoConditions] | None = None) -> TrainBatch:
    """Crops of ``min(crop_s, shortest clip)`` seconds starting on latent-frame boundaries.

    Without ``conditions``, each clip's are made here, as generation makes them: its tempo as the
    BPM condition except in a ``config.bpm_dropout`` share of the rows (drawn from ``rng``), which
    learn the music without one; and, for a model with a text encoder, its caption and tags except
    in a ``config.text_dropout`` share.
    """
    cfg = pipe.config
    f = cfg.vae_factor
    latent_s = 1.0 / cfg.latent_rate
    shortest = min(min(len(e.logmel) // f, int(e.storyboard.duration_s / latent_s)) for e in examples)
    n_latent = max(1, min(int(round(crop_s / latent_s)), shortest))
    length_s = n_latent * latent_s
    n_frames = max(1, int(round(length_s * cfg.fps)))
    mels, frames, tbs, starts, firsts, beats = [], [], [], [], [], []
    if conditions is None:  # the clip's own tempo is its BPM condition, as generation passes the plan's (or the user's)
        keep = rng.uniform(size=len(examples)) >= cfg.bpm_dropout
        keep_text = rng.uniform(size=len(examples)) >= cfg.text_dropout
        text = _cached_text(pipe.text_encoder) if pipe.text_encoder is not None else None
        conditions = [video_conditions(e.storyboard, bpm=e.tempo_bpm if k and np.isfinite(e.tempo_bpm) and e.tempo_bpm > 0
                                       else None, text_encoder=text, caption=e.caption if text and kt else None,
                                       tags=e.tags if text and kt else None)
                      for e, k, kt in zip(examples, keep, keep_text, strict=True)]
    vcs = list(conditions)
    for e, vc in zip(examples, vcs, strict=True):
        max_start = min(len(e.logmel) // f, int(e.storyboard.duration_s / latent_s)) - n_latent
        j = int(rng.integers(0, max_start + 1)) if max_start > 0 else 0
        t0 = j * latent_s
        mels.append(e.logmel[j * f : (j + n_latent) * f])
        k = int(round(t0 * cfg.fps))
        ff = vc.frame_features[k : k + n_frames]
        tb = e.tb_target[k : k + n_frames].astype(np.float32)
        if len(ff) < n_frames:  # the frame track can be a frame short of the audio
            ff = np.concatenate([ff, np.repeat(ff[-1:], n_frames - len(ff), axis=0)])
            tb = np.concatenate([tb, np.zeros(n_frames - len(tb), np.float32)])
        frames.append(ff)
        tbs.append(tb)
        starts.append(t0)
        firsts.append(j)
        beats.append(beat_channels(e.beats, t0 + (np.arange(n_latent) + 0.5) * latent_s))
    return TrainBatch(
        logmel=torch.from_numpy(np.stack(mels)).float(), frames=torch.from_numpy(np.stack(frames)).float(),
        tb_target=torch.from_numpy(np.stack(tbs)), cond=window_batch(vcs, starts, length_s, cfg.text_dim),
        starts_s=starts, latent_starts=firsts, n_latent=n_latent, beat_channels=torch.from_numpy(np.stack(beats)),
    )


def _cached_text(encoder: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """The text encoder with each text encoded once (a clip's caption comes back every epoch)."""
    return lambda texts: np.stack([_text_vector(encoder, t) for t in texts])


@functools.lru_cache(maxsize=16384)
def _text_vector(encoder: Callable[[list[str]], np.ndarray], text: str) -> np.ndarray:
    return np.asarray(encoder([text])[0])


class PhaseLoss(nn.Module):
    """One phase's loss as a module over the whole pipeline: ``loss = PhaseLoss(pipe, phase)(**inputs)``.

    Inputs per phase: ``vae``: ``logmel``; ``aligner``: ``frames``, ``tb_target``; ``diffusion``
    and ``adapter``: ``latents``, ``cond``, ``frames``, ``beats``; ``vocoder``: ``wav``.
    """

    def __init__(self, pipe: VeMPipeline, phase: str):
        super().__init__()
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
        self.pipe, self.phase = pipe, phase

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        pipe, phase = self.pipe, self.phase
        if phase == "vae":
            return vae_loss(pipe, inputs["logmel"])
        if phase == "aligner":
            return aligner_loss(pipe, inputs["frames"], inputs["tb_target"])
        if phase == "vocoder":
            from vem.vocoder import vocoder_loss  # noqa: PLC0415

            return vocoder_loss(pipe.vocoder, pipe.logmel, inputs["wav"])  # type: ignore[arg-type]
        return diffusion_loss(pipe, inputs["latents"], inputs["cond"], inputs["frames"],  # type: ignore[arg-type]
                              adapter_strength=1.0 if phase == "adapter" else 0.0, beats=inputs["beats"])


def lr_factor(step: int, steps: int, warmup: int | None = None) -> float:
    """The learning rate's factor at ``step`` of ``steps``: linear warm-up over ``warmup`` steps
    (default 5 %, at most 200), then a cosine decay to 0.1 at the last step."""
    warm = max(1, min(200, steps // 20) if warmup is None else warmup)
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.1 + 0.9 * 0.5 * (1 + float(np.cos(np.pi * min(1.0, progress))))


class EMA:
    """An exponential moving average of some parameters (by name), with the usual warm-up: the
    decay at update ``n`` is ``min(decay, (1 + n) / (10 + n))``, so early weights fade fast."""

    def __init__(self, named: Sequence[tuple[str, nn.Parameter]], decay: float = 0.999):
        self.decay, self.updates = decay, 0
        self.params = dict(named)
        self.shadow = {k: p.detach().clone() for k, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, p in self.params.items():
            self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self) -> dict[str, torch.Tensor]:
        """Put the averages into the parameters; returns the weights they had (for :meth:`restore`)."""
        saved = {k: p.detach().clone() for k, p in self.params.items()}
        for k, p in self.params.items():
            p.copy_(self.shadow[k])
        return saved

    @torch.no_grad()
    def restore(self, saved: dict[str, torch.Tensor]) -> None:
        for k, p in self.params.items():
            p.copy_(saved[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{f"shadow.{k}": v.contiguous().cpu() for k, v in self.shadow.items()},
                "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = [k for k in self.shadow if f"shadow.{k}" not in state]
        if missing:
            raise ValueError(f"the EMA state lacks {len(missing)} parameters, e.g. {missing[0]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[f"shadow.{k}"])
        self.updates = int(state["updates"])
