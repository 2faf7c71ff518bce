"""The music representation: 16 kHz mono audio ↔ log-mel spectrogram, and vocoders back to audio.

The log-mel is AudioLDM's: magnitude STFT (n_fft = window = 1024, hop 160 = 10 ms, so 100 frames
per second), 64 Slaney mel bands up to 8 kHz, natural log of the magnitude clamped at 1e-5.
Keeping that exact definition means an AudioLDM / AudioLDM2 / MusicLDM VAE and HiFi-GAN vocoder
can be swapped in for ours (their settings are then read from the checkpoint, see
:func:`MelConfig.from_vocoder`). Hop 160 rather than the paper's 256 because it is what those
16 kHz checkpoints use and gives a 10 ms grid (beats at 120 BPM are 50 frames apart).

Vocoders map ``log-mel (batch, frames, n_mels) -> waveform (batch, samples)``:
:class:`GriffinLim` needs no weights (the default); :class:`HifiGan` wraps a
``transformers.SpeechT5HifiGan`` loaded from a directory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["MelConfig", "LogMel", "GriffinLim", "HifiGan", "Vocoder", "mel_to_chroma"]

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_mels: int = 64
    hop: int = 160  # samples per mel frame (10 ms)
    n_fft: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_vocoder(cls, config: Any) -> MelConfig:
        """The mel settings a ``SpeechT5HifiGan`` checkpoint was trained with (its config)."""
        hop = int(np.prod(config.upsample_rates))
        sr = int(config.sampling_rate)
        return cls(sample_rate=sr, n_mels=int(config.model_in_dim), hop=hop, n_fft=1024, fmin=0.0, fmax=sr / 2)


def _mel_basis(cfg: MelConfig) -> torch.Tensor:
    import librosa  # noqa: PLC0415

    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return torch.from_numpy(basis.astype(np.float32))  # (n_mels, n_fft // 2 + 1)


def mel_to_chroma(cfg: MelConfig) -> torch.Tensor:
    """(12, n_mels): maps mel energies to pitch-class energies (``mel @ M.T``).

    Each mel band is spread back over the STFT bins it averages (its filter, normalised to sum 1),
    then the bins are folded onto the 12 pitch classes (``librosa.filters.chroma``, A440 tuning).
    A fixed music prior, independent of any data.
    """
    import librosa  # noqa: PLC0415

    basis = _mel_basis(cfg).numpy()
    spread = basis / np.maximum(basis.sum(axis=1, keepdims=True), 1e-12)  # (n_mels, bins)
    chroma = librosa.filters.chroma(sr=cfg.sample_rate, n_fft=cfg.n_fft, tuning=0.0)  # (12, bins)
    return torch.from_numpy((chroma @ spread.T).astype(np.float32))


class LogMel(torch.nn.Module):
    """``waveform (batch, samples) -> log-mel (batch, frames, n_mels)``, frames = ceil(samples / hop)."""

    basis: torch.Tensor
    window: torch.Tensor

    def __init__(self, cfg: MelConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("basis", _mel_basis(cfg), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        n_frames = math.ceil(wav.shape[-1] / cfg.hop)
        pad = (cfg.n_fft - cfg.hop) // 2
        x = torch.nn.functional.pad(wav.unsqueeze(1), (pad, pad + n_frames * cfg.hop - wav.shape[-1]), mode="reflect")
        spec = torch.stft(x.squeeze(1), cfg.n_fft, cfg.hop, window=self.window, center=False, return_complex=True)
        mel = self.basis @ spec.abs()  # (batch, n_mels, frames)
        return torch.log(torch.clamp(mel, min=LOG_FLOOR)).transpose(1, 2)[:, :n_frames]


class Vocoder(torch.nn.Module):
    """The vocoder interface: ``log-mel (batch, frames, n_mels) -> waveform (batch, frames * hop)``."""

    mel: MelConfig


class GriffinLim(Vocoder):
    """Weight-free vocoder: mel → linear magnitude (non-negative pseudo-inverse of the mel
    filters), then fast Griffin-Lim (momentum 0.99, Perraudin et al. 2013) for the phase."""

    inverse: torch.Tensor
    window: torch.Tensor

    def __init__(self, cfg: MelConfig, iterations: int = 32, momentum: float = 0.99):
        super().__init__()
        self.mel, self.iterations, self.momentum = cfg, iterations, momentum
        basis = _mel_basis(cfg)
        self.register_buffer("inverse", torch.linalg.pinv(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    @torch.no_grad()
    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        cfg = self.mel
        mag = torch.clamp(self.inverse @ torch.exp(logmel.float()).transpose(1, 2), min=0.0)  # (b, bins, frames)
        n = logmel.shape[1] * cfg.hop
        gen = torch.Generator().manual_seed(0)  # deterministic phase start: same mel, same audio
        angles = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=gen)).to(mag.device)
        prev = torch.zeros_like(angles)
        kw: dict[str, Any] = {"n_fft": cfg.n_fft, "hop_length": cfg.hop, "window": self.window, "center": True}
        for _ in range(self.iterations):
            wav = torch.istft(mag * angles, length=n, **kw)
            spec = torch.stft(wav, return_complex=True, **kw)[..., : mag.shape[-1]]
            new = spec - self.momentum / (1 + self.momentum) * prev
            prev = spec
            angles = new / (new.abs() + 1e-8)
        return torch.istft(mag * angles, length=n, **kw)


class HifiGan(Vocoder):
    """A ``transformers.SpeechT5HifiGan`` (AudioLDM's vocoder) loaded from a local directory."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model
        self.mel = MelConfig.from_vocoder(model.config)

    @torch.no_grad()
    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        wav = self.model(logmel.float())
        return wav if wav.dim() == 2 else wav.unsqueeze(0)
