"""The parts of training that scale: the learning-rate schedule, the EMA, the phase losses as
modules (what DDP wraps) and the learned vocoder (vem.vocoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vem.mel import GriffinLim, LogMel, MelConfig
from vem.pipeline import VeMPipeline
from vem.training import EMA, PhaseLoss, lr_factor
from vem.vocoder import LearnedVocoder, audio_distances, multi_resolution_stft, vocoder_loss

MEL = MelConfig(n_mels=32)


def _music(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Plucked harmonic notes at 16 kHz (what a vocoder has to rebuild: onsets, partials, decays)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    y = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.25):
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 6), 0)
        y += sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3)) * env
    return torch.from_numpy((0.3 * y / np.abs(y).max()).astype(np.float32))


def test_the_schedule_warms_up_then_decays_to_a_tenth() -> None:
    steps = 1000
    lrs = [lr_factor(s, steps) for s in range(steps)]
    warm = 50  # 5 % of the steps
    assert lrs[0] == pytest.approx(1 / warm) and lrs[warm - 1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1 :], strict=False))  # decays, never rises
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_the_ema_averages_and_swaps_in_and_out() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([("p", p)], decay=0.5)
    with torch.no_grad():
        p.fill_(1.0)
    for _ in range(20):
        ema.update()
    assert torch.allclose(ema.shadow["p"], torch.ones(3), atol=1e-3)  # a constant weight is its own average
    with torch.no_grad():
        p.fill_(3.0)
    ema.update()
    assert 1.0 < float(ema.shadow["p"][0]) < 3.0
    saved = ema.copy_to()
    assert torch.equal(p.detach(), ema.shadow["p"])
    ema.restore(saved)
    assert float(p.detach()[0]) == 3.0
    other = EMA([("p", torch.nn.Parameter(torch.zeros(3)))])
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadow["p"], ema.shadow["p"]) and other.updates == ema.updates
    with pytest.raises(ValueError, match="lacks"):
        EMA([("q", p)]).load_state_dict(ema.state_dict())


def test_a_phase_loss_trains_only_its_parameters() -> None:
    from vem.training import trainable_parameters

    pipe = VeMPipeline.build("debug", seed=0)
    loss_of = PhaseLoss(pipe, "aligner")
    frames = torch.randn(2, 40, 3 + pipe.config.visual_dim)
    targets = torch.zeros(2, 40)
    targets[:, 10] = 1
    for p in pipe.parameters():
        p.requires_grad_(False)
    for p in trainable_parameters(pipe, "aligner"):
        p.requires_grad_(True)
    loss_of(frames=frames, tb_target=targets).backward()
    assert all(p.grad is not None for p in pipe.aligner.parameters())
    assert all(p.grad is None for p in pipe.denoiser.parameters())
    with pytest.raises(ValueError, match="unknown phase"):
        PhaseLoss(pipe, "nope")


def test_the_learned_vocoder_learns_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    logmel_of = LogMel(MEL)
    voc = LearnedVocoder(MEL, dim=32, layers=2)
    wav = torch.stack([_music(seed=s) for s in range(4)])
    opt = torch.optim.AdamW(voc.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = vocoder_loss(voc, logmel_of, wav)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    out = voc(logmel_of(wav[:1]))
    assert out.shape == (1, wav.shape[1])
    figures = audio_distances(out, wav[:1], logmel_of)
    assert figures["mel_l1"] > 0 and figures["mrstft"] > 0
    assert float(multi_resolution_stft(wav[:1], wav[:1])) == pytest.approx(0.0, abs=1e-4)
    back = LearnedVocoder.from_pretrained(voc.save_pretrained(tmp_path / "vocoder"))
    assert torch.equal(back(logmel_of(wav[:1])), out)


def test_a_pipeline_saves_and_loads_its_learned_vocoder(tmp_path: Path) -> None:
    import json

    pipe = VeMPipeline.build("debug", seed=0)
    assert isinstance(pipe.vocoder, GriffinLim)
    pipe.vocoder = LearnedVocoder(pipe.config.mel, dim=16, layers=1)
    folder = pipe.save_pretrained(tmp_path / "vem")
    assert json.loads((folder / "vem_config.json").read_text())["vocoder"] == "learned"
    back = VeMPipeline.from_pretrained(folder)
    assert isinstance(back.vocoder, LearnedVocoder)
    mel = torch.randn(1, 30, pipe.config.mel.n_mels) - 4
    assert torch.equal(back.vocoder(mel), pipe.vocoder(mel))
    (folder / "vocoder" / "model.safetensors").write_bytes(b"not weights")
    from vem.pipeline import ModelError

    with pytest.raises(ModelError, match="learned vocoder"):
        VeMPipeline.from_pretrained(folder)
