"""A learned vocoder, trained from scratch: log-mel frames → STFT magnitude and phase → inverse STFT.

The architecture is Vocos's (Siuzdenko 2023): the log-mel is embedded, passed through ConvNeXt
blocks *at the frame rate* (no upsampling convolutions, which is what makes it cheap enough to
train on CPUs) and projected to a phase per STFT bin and a correction of the log-magnitude that
the mel filters' pseudo-inverse gives (where Griffin-Lim starts; the head starts at zero, so
training begins from that magnitude and learns mostly the phase); the inverse STFT
(``n_fft`` and hop of the mel) gives the waveform. Trained without a discriminator, on
:func:`vocoder_loss`: the L1 distance of the log-mels plus a multi-resolution STFT distance
(spectral convergence + log-magnitude L1 at three resolutions, Yamamoto et al. 2020), which is
also the figure reported against Griffin-Lim (:func:`audio_distances`).

Saved as ``vocoder/config.json`` + ``vocoder/model.safetensors`` beside the VAE; a pipeline loads
it when present (:mod:`vem.pipeline`), else it falls back to Griffin-Lim.

Examples
--------
>>> import torch
>>> from vem.mel import MelConfig
>>> voc = LearnedVocoder(MelConfig(n_mels=32), dim=16, layers=1)
>>> voc(torch.zeros(1, 50, 32)).shape
torch.Size([1, 8000])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vem.mel import LOG_FLOOR, LogMel, MelConfig, Vocoder, _mel_basis

__all__ = ["LearnedVocoder", "audio_distances", "multi_resolution_stft", "vocoder_loss"]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the multi-resolution STFT distance


class _ConvNeXt(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 3 * dim)
        self.down = nn.Linear(3 * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, dim, T)
        h = self.norm(self.dw(x).transpose(1, 2))
        h = self.down(nn.functional.gelu(self.up(h))) * self.scale
        return x + h.transpose(1, 2)


class LearnedVocoder(Vocoder):
    """``log-mel (batch, frames, n_mels) -> waveform (batch, frames * hop)``; see the module doc."""

    window: torch.Tensor
    inverse: torch.Tensor

    def __init__(self, mel: MelConfig, *, dim: int = 256, layers: int = 8):
        super().__init__()
        self.mel, self.dim, self.layers = mel, dim, layers
        self.embed = nn.Conv1d(mel.n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(_ConvNeXt(dim) for _ in range(layers))
        self.final = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, mel.n_fft + 2)  # log-magnitude correction and phase of n_fft // 2 + 1 bins
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("window", torch.hann_window(mel.n_fft), persistent=False)
        self.register_buffer("inverse", torch.linalg.pinv(_mel_basis(mel)), persistent=False)  # (bins, n_mels)

    def synthesize(self, logmel: torch.Tensor) -> torch.Tensor:
        """The waveform, with gradients (training)."""
        x = self.embed(logmel.float().transpose(1, 2))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.final(x.transpose(1, 2)))  # (B, T, n_fft + 2)
        bins = self.mel.n_fft // 2 + 1
        # the magnitude starts from the mel filters' pseudo-inverse (where Griffin-Lim starts) and learns a correction
        prior = torch.log(torch.clamp(torch.exp(logmel.float()) @ self.inverse.T, min=LOG_FLOOR))
        mag = torch.exp((prior + out[..., :bins]).clamp(max=6.0))
        phase = out[..., bins:]
        spec = torch.polar(mag, phase).transpose(1, 2)  # (B, bins, T)
        n = logmel.shape[1] * self.mel.hop
        return torch.istft(spec, self.mel.n_fft, self.mel.hop, window=self.window, center=True, length=n)

    @torch.no_grad()
    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.synthesize(logmel)

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file  # noqa: PLC0415

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(out / WEIGHTS))
        (out / CONFIG).write_text(json.dumps({"kind": "vocos", "mel": self.mel.to_dict(), "dim": self.dim,
                                              "layers": self.layers}, indent=2))
        return out

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> LearnedVocoder:
        from safetensors.torch import load_file  # noqa: PLC0415

        folder = Path(folder)
        meta = json.loads((folder / CONFIG).read_text())
        voc = cls(MelConfig(**meta["mel"]), dim=int(meta["dim"]), layers=int(meta["layers"]))
        voc.load_state_dict(load_file(str(folder / WEIGHTS)), strict=True)
        return voc.eval()

    @staticmethod
    def is_saved(folder: str | Path) -> bool:
        path = Path(folder) / CONFIG
        return path.is_file() and json.loads(path.read_text()).get("kind") == "vocos"


def _stft_mag(wav: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=wav.device)
    return torch.stft(wav, n_fft, hop, window=window, center=True, return_complex=True).abs().clamp(min=1e-7)


def multi_resolution_stft(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean over :data:`RESOLUTIONS` of spectral convergence + L1 of log magnitudes. The convergence
    is taken over the whole batch (one Frobenius ratio), so a near-silent crop cannot blow it up."""
    total = pred.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        p, t = _stft_mag(pred, n_fft, hop), _stft_mag(true, n_fft, hop)
        convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-7)
        total = total + convergence + (t.log() - p.log()).abs().mean()
    return total / len(RESOLUTIONS)


def vocoder_loss(vocoder: LearnedVocoder, logmel_of: LogMel, wav: torch.Tensor) -> torch.Tensor:
    """The training loss on true audio ``wav`` (B, samples): log-mel L1 + multi-resolution STFT distance."""
    logmel = logmel_of(wav)
    pred = vocoder.synthesize(logmel)[..., : wav.shape[-1]]
    return (logmel_of(pred) - logmel).abs().mean() + multi_resolution_stft(pred, wav)


@torch.no_grad()
def audio_distances(pred: torch.Tensor, true: torch.Tensor, logmel_of: LogMel) -> dict[str, Any]:
    """``mel_l1`` and ``mrstft`` of resynthesised audio against the true audio (equal lengths)."""
    n = min(pred.shape[-1], true.shape[-1])
    pred, true = pred[..., :n], true[..., :n]
    return {"mel_l1": float((logmel_of(pred) - logmel_of(true)).abs().mean()),
            "mrstft": float(multi_resolution_stft(pred, true))}
