"""The VeM model: storyboard mask, adapter, save/load, any length, seams, pretrained parts, learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vem.beatgrid import BeatPlan
from vem.conditioning import video_conditions, window_batch
from vem.examples import Example
from vem.mel import GriffinLim, LogMel, MelConfig, mel_to_chroma
from vem.pipeline import ModelError, VeMPipeline
from vem.presets import preset
from vem.sgcatt import SGCrossAttention, attention_bias, storyboard_mask
from vem.stitch import overlap_add, window_starts
from vem.storyboard import Storyboard
from vem.training import TrainBatch, chroma_loss, crop_batch, diffusion_loss, trainable_parameters

from .tiny_models import save_tiny_audioldm, save_tiny_clap_text, save_tiny_clip_vision


def storyboard(duration: float, cuts: list[float], dim: int = 30, seed: int = 0) -> Storyboard:
    """A storyboard with shots between ``cuts`` and random frame embeddings of size ``dim``."""
    rng = np.random.default_rng(seed)
    fps = 16.0
    n = int(round(duration * fps))
    starts = np.array([0.0, *cuts])
    durations = np.diff(np.append(starts, duration))
    indicator = np.zeros(n)
    indicator[(np.array(cuts, dtype=float) * fps).astype(int)] = 1.0
    return Storyboard(
        fps=fps, duration_s=duration, transitions=np.array(cuts, dtype=float), transition_kinds=["hard"] * len(cuts),
        transition_strengths=np.ones(len(cuts)), shot_starts=starts, shot_durations=durations,
        keyframe_times=starts + durations / 2, transition_indicator=indicator, motion_energy=rng.random(n),
        embeddings=rng.random((n, dim)).astype(np.float32),
    )


def as_if_trained(pipe: VeMPipeline) -> VeMPipeline:
    """Give the zero-initialised layers (adaLN gates, output) random values, as training would;
    the adapters stay at zero (they are trained last). A fresh denoiser outputs exactly 0, which
    would make every "does X change the output" check vacuous."""
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for name, p in pipe.denoiser.named_parameters():
            if not name.startswith("adapters.") and float(p.abs().max()) == 0.0:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return pipe


@pytest.fixture(scope="module")
def debug_pipe() -> VeMPipeline:
    return as_if_trained(VeMPipeline.build("debug", seed=0))


# ---- SG-CAtt ------------------------------------------------------------------------------------
def _attend(mode: str, shot_tokens: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    layer = SGCrossAttention(16, 2)
    frames = torch.randn(1, 40, 16)
    times = (torch.arange(40)[None] + 0.5) / 10.0  # 4 s at 10 frames/s
    starts, durations = torch.tensor([[0.0, 1.0, 2.5]]), torch.tensor([[1.0, 1.5, 1.5]])
    mask = storyboard_mask(times, starts, durations, torch.ones(1, 3, dtype=torch.bool), n_global=2)
    tokens = torch.cat([torch.randn(1, 2, 16), shot_tokens], dim=1)
    bias = attention_bias(mask, torch.ones(1, 5, dtype=torch.bool), mode, strength=4.0)
    with torch.no_grad():
        return layer(frames, tokens, bias)[0]


@pytest.mark.parametrize("mode", ["hard", "soft", "off"])
def test_storyboard_mask_confines_a_shot_to_its_frames(mode: str) -> None:
    torch.manual_seed(1)
    shots = torch.randn(1, 3, 16)
    changed = shots.clone()
    changed[0, 1] = torch.randn(16) * 3  # shot 1 covers 1.0 .. 2.5 s = frames 10..24
    moved = (_attend(mode, shots) - _attend(mode, changed)).abs().amax(dim=1)
    inside = torch.zeros(40, dtype=torch.bool)
    inside[10:25] = True
    assert bool((moved[inside] > 1e-4).all())  # the shot's own frames hear it
    if mode == "hard":
        assert float(moved[~inside].max()) == 0.0  # no other frame does
    else:  # soft: others hear it, less; off: everyone hears it
        assert bool((moved[~inside] > 1e-6).all())
        if mode == "soft":
            assert float(moved[~inside].mean()) < float(moved[inside].mean())


def test_padding_shots_are_never_attended() -> None:
    valid = torch.tensor([[True, True, True, False]])
    mask = torch.ones(1, 3, 4, dtype=torch.bool)
    bias = attention_bias(mask, valid, "off", 0.0)
    assert bool(torch.isfinite(bias[..., :3]).all()) and float(bias[..., 3].max()) < -1e30


def test_window_conditions_keep_the_overlapping_shots_relative_to_the_window() -> None:
    vc = video_conditions(storyboard(20.0, [4.0, 9.0, 15.0]))
    c = window_batch([vc, vc], [0.0, 8.0], 4.0, text_dim=0)
    assert c.shot_valid.sum(dim=1).tolist() == [1, 2]  # 0..4 s: shot 0; 8..12 s: shots 1 and 2
    assert c.shot_index[1, :2].tolist() == [1, 2]
    assert torch.allclose(c.shot_starts[1, :2], torch.tensor([-4.0, 1.0]))


# ---- TB-As --------------------------------------------------------------------------------------
def test_adapter_is_a_no_op_at_initialisation_and_not_after_training(debug_pipe: VeMPipeline) -> None:
    sb = storyboard(3.0, [1.0, 2.0])
    # with the tempo given, TB-As on and off condition on the same BPM (else the beat plan's tempo differs)
    on = debug_pipe(sb, steps=3, seed=5, adapter_strength=1.0, bpm=120.0)
    off = debug_pipe(sb, steps=3, seed=5, adapter_strength=0.0, bpm=120.0)
    assert np.array_equal(on, off)
    trained = as_if_trained(VeMPipeline.build("debug", seed=0))
    with torch.no_grad():
        for p in trained.denoiser.adapters.parameters():
            p.normal_(0, 0.1)
    assert not np.array_equal(trained(sb, steps=3, seed=5, adapter_strength=1.0, bpm=120.0),
                              trained(sb, steps=3, seed=5, adapter_strength=0.0, bpm=120.0))


def test_the_beat_plan_follows_the_cuts_and_goes_with_tb_as(debug_pipe: VeMPipeline) -> None:
    trained = as_if_trained(VeMPipeline.build("debug", seed=0))
    with torch.no_grad():
        for p in trained.denoiser.adapters.parameters():
            p.normal_(0, 0.1)
    a, b = storyboard(6.0, [1.0, 2.0, 3.0]), storyboard(6.0, [1.25, 2.25, 3.25])  # the same pulse, shifted
    plan_a, plan_b = trained.beat_plan(a, bpm=120.0), trained.beat_plan(b, bpm=120.0)
    n = min(len(plan_a.beats), len(plan_b.beats))
    assert np.allclose(plan_b.beats[:n], plan_a.beats[:n] + 0.25)  # the phase moves with the cuts
    # the same video with the plan shifted by a quarter beat: other music with TB-As on, the same with it off
    on, off = trained(a, steps=3, seed=5, bpm=120.0), trained(a, steps=3, seed=5, bpm=120.0, adapter_strength=0.0)
    shifted = BeatPlan(plan_a.bpm, plan_a.beats + 0.125, plan_a.fit)
    trained.beat_plan = lambda sb, bpm=None: shifted  # type: ignore[method-assign]
    assert not np.array_equal(on, trained(a, steps=3, seed=5, bpm=120.0))
    assert np.array_equal(off, trained(a, steps=3, seed=5, bpm=120.0, adapter_strength=0.0))


# ---- lengths, save / load -----------------------------------------------------------------------
def test_save_load_round_trip_is_bit_identical(debug_pipe: VeMPipeline, tmp_path: Path) -> None:
    sb = storyboard(5.0, [1.5, 3.0])
    before = debug_pipe(sb, steps=4, seed=11, guidance_scale=2.0)
    loaded = VeMPipeline.from_pretrained(debug_pipe.save_pretrained(tmp_path / "model"))
    after = loaded(sb, steps=4, seed=11, guidance_scale=2.0)
    assert np.array_equal(before, after)
    assert not np.array_equal(before, loaded(sb, steps=4, seed=12, guidance_scale=2.0))  # the seed matters


@pytest.mark.parametrize("duration", [5.0, 37.3, 180.0])
def test_output_lasts_exactly_the_video(debug_pipe: VeMPipeline, duration: float) -> None:
    cuts = list(np.arange(2.3, duration, 3.1))
    fast = VeMPipeline(debug_pipe.config, debug_pipe.vae, GriffinLim(debug_pipe.config.mel, iterations=2))
    fast.load_state_dict(debug_pipe.state_dict())  # the same model; a 2-iteration vocoder keeps 3 minutes quick
    wav = fast(storyboard(duration, cuts), steps=2, seed=0, guidance_scale=1.0)
    assert wav.dtype == np.float32
    assert len(wav) == round(duration * fast.config.mel.sample_rate)
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 0.99 and np.abs(wav).max() > 0


def test_one_generated_log_mel_decodes_through_either_vocoder(debug_pipe: VeMPipeline) -> None:
    sb = storyboard(5.0, [1.5, 3.0])
    mel, n_samples = debug_pipe.generate_mel(sb, steps=3, seed=4, guidance_scale=2.0)
    assert n_samples == round(5.0 * debug_pipe.config.mel.sample_rate)
    assert np.array_equal(debug_pipe.decode(mel, n_samples), debug_pipe(sb, steps=3, seed=4, guidance_scale=2.0))
    other = debug_pipe.decode(mel, n_samples, GriffinLim(debug_pipe.config.mel, iterations=2))
    assert len(other) == n_samples and not np.array_equal(other, debug_pipe.decode(mel, n_samples))


def test_vae_embeddings_cut_audio_into_segments_of_pooled_latents(debug_pipe: VeMPipeline) -> None:
    from vem.validation import vae_embeddings  # noqa: PLC0415

    sr, cfg = debug_pipe.config.mel.sample_rate, debug_pipe.config
    t = np.arange(7 * sr) / sr
    tone, noise = np.sin(2 * np.pi * 440 * t).astype(np.float32) * 0.3, np.random.default_rng(0).normal(0, 0.3, len(t))
    a, b = vae_embeddings(debug_pipe, tone, segment_s=2.0, bands=4), vae_embeddings(debug_pipe, noise.astype(np.float32),
                                                                                      segment_s=2.0, bands=4)
    assert a.shape == (3, 2 * cfg.latent_channels * 4)  # three whole 2 s segments in 7 s
    assert vae_embeddings(debug_pipe, tone[: sr], segment_s=2.0).shape[0] == 0  # shorter than a segment: none
    assert np.abs(a - b).max() > 1e-3  # a tone and noise embed apart


def test_a_folder_without_safetensors_weights_is_refused(debug_pipe: VeMPipeline, tmp_path: Path) -> None:
    folder = debug_pipe.save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle posing as weights
    with pytest.raises(ModelError, match="safetensors"):
        VeMPipeline.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        VeMPipeline.from_pretrained(folder)
    with pytest.raises(ModelError, match="not a saved VeM pipeline"):
        VeMPipeline.from_pretrained(tmp_path)


# ---- stitching ----------------------------------------------------------------------------------
N_FFT, HOP = 512, 128


def _flux(x: np.ndarray) -> np.ndarray:
    """Spectral flux per STFT frame (sum of positive magnitude increases)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP] * np.hanning(N_FFT)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    return np.concatenate([[0.0], np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)])


def _flux_at(flux: np.ndarray, sample: int) -> float:
    """Mean flux of the frames whose analysis window holds ``sample`` (a click raises them all)."""
    return float(flux[max(0, (sample - N_FFT) // HOP + 1) : sample // HOP + 1].mean())


def test_windows_of_a_continuous_tone_stitch_without_clicks() -> None:
    sr, seconds = 16000, 30.0
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    loudness = 0.5 + 0.1 * np.sin(2 * np.pi * 0.7 * t)
    noise = 0.003 * rng.standard_normal(len(t))
    window, overlap = 5 * sr, sr // 2
    starts = window_starts(len(t), window, overlap)
    assert len(starts) >= 6 and starts[-1] + window == len(t)
    # each window renders the tone on its own, as independently generated windows would: its own
    # phase and a slightly different loudness
    chunks = [torch.from_numpy((loudness * rng.uniform(0.9, 1.1) * np.sin(2 * np.pi * 440 * t + rng.uniform(-np.pi, np.pi))
                                + noise)[s : s + window]) for s in starts]
    stitched = overlap_add(chunks, starts, len(t)).numpy()
    flux = _flux(stitched)
    for join in (s + overlap // 2 for s in starts[1:]):
        assert _flux_at(flux, join) <= np.percentile(flux, 99), f"click at {join / sr:.2f} s"
    # the check can fail: butting the windows together without the fades clicks at every join
    ends = [*starts[1:], len(t)]
    butted = np.concatenate([c.numpy()[: e - s] for c, s, e in zip(chunks, starts, ends, strict=True)])
    flux = _flux(butted)
    assert all(_flux_at(flux, join) > np.percentile(flux, 99) for join in starts[1:])


def test_overlap_add_rejects_gaps() -> None:
    with pytest.raises(ValueError, match="gaps"):
        overlap_add([torch.ones(4), torch.ones(4)], [0, 6], 10)


# ---- pretrained parts ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained_parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pretrained")
    return {"audio": save_tiny_audioldm(root / "audioldm", n_mels=32), "text": save_tiny_clap_text(root / "clap"),
            "image": save_tiny_clip_vision(root / "clip")}


def test_pretrained_parts_load_through_the_users_path(pretrained_parts: dict[str, Path], catalog: Path,
                                                      tmp_path: Path, s3_server: str, bucket: str) -> None:
    import s3fs

    pipe = as_if_trained(VeMPipeline.build("debug", audio_dir=pretrained_parts["audio"],
                                           text_encoder_dir=pretrained_parts["text"],
                                           image_encoder_dir=pretrained_parts["image"]))
    cfg = pipe.config
    assert (cfg.mel.n_mels, cfg.mel.hop, cfg.latent_channels, cfg.vae_factor) == (32, 160, 8, 4)  # from the checkpoints
    assert (cfg.text_dim, cfg.visual_dim) == (12, 16)
    video = sorted((catalog / "videos").glob("*.mp4"))[0]
    sb = pipe.storyboard(str(video))
    assert sb.embeddings.shape[1] == 16  # parsed with the CLIP encoder
    kw = {"steps": 2, "seed": 3, "caption": "a happy bright city ad", "tags": ["fast", "drums"]}
    wav = pipe(sb, **kw)
    assert len(wav) == round(sb.duration_s * 16000)
    assert not np.array_equal(wav, pipe(sb, **{**kw, "caption": "a sad dark sea ad"}))  # the text is heard
    # save, put the folder in object storage, load it back from s3://
    local = pipe.save_pretrained(tmp_path / "vem")
    fs = s3fs.S3FileSystem()
    fs.put(str(local) + "/", f"{bucket}/models/vem/", recursive=True)
    loaded = VeMPipeline.from_pretrained(f"s3://{bucket}/models/vem")
    assert np.array_equal(wav, loaded(sb, **kw))
    with pytest.raises(ModelError, match="need a model with a text encoder|text encoder"):
        VeMPipeline.build("debug")(storyboard(2.0, []), caption="no text model")


# ---- learning -----------------------------------------------------------------------------------
def test_debug_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    pipe = VeMPipeline.build(preset("debug"), seed=0).train()
    sb = storyboard(4.0, [1.0, 2.5])
    vc = video_conditions(sb)
    gen = torch.Generator().manual_seed(0)
    t = np.arange(4 * 16000) / 16000
    wav = torch.from_numpy(np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).float()[None]
    with torch.no_grad():
        latents = pipe.audio_to_latents(wav)
    cond = window_batch([vc], [0.0], 4.0, 0)
    # one fixed batch: the same clean latent, noise and noise level every step
    noise = torch.randn(latents.shape, generator=gen)
    steps = torch.tensor([500])
    drop = torch.zeros(1, dtype=torch.bool)
    opt = torch.optim.AdamW(list(trainable_parameters(pipe, "diffusion")), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = diffusion_loss(pipe, latents, cond, None, noise=noise, timesteps=steps, drop=drop)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] <= 0.1 * losses[0], f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_the_vae_chroma_loss_hears_harmony_not_loudness() -> None:
    cfg = MelConfig(n_mels=128)
    t = np.arange(16000) / 16000

    def chord(*hz: float, gain: float = 1.0) -> torch.Tensor:
        wav = gain * sum(np.sin(2 * np.pi * f * t) for f in hz) / len(hz)
        return LogMel(cfg)(torch.from_numpy(wav).float()[None])

    m = mel_to_chroma(cfg)
    assert m.shape == (12, 128)
    a_minor, a_major = chord(220.0, 261.63, 329.63), chord(220.0, 277.18, 329.63)
    assert float(chroma_loss(a_minor, a_minor, m)) == 0.0
    louder = float(chroma_loss(chord(220.0, 261.63, 329.63, gain=0.25), a_minor, m))
    third = float(chroma_loss(a_major, a_minor, m))
    assert third > 0.2 and louder < 0.1 * third, (louder, third)


def test_presets_are_ordered_by_size() -> None:
    counts = {name: sum(VeMPipeline.build(name).num_parameters().values()) for name in ("debug", "small")}
    assert counts["debug"] < counts["small"]
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def _clip(seed: int, tempo_bpm: float, pipe: VeMPipeline) -> Example:
    """A 4 s training clip: a storyboard and the log-mel of clicks at ``tempo_bpm``."""
    sr = pipe.config.mel.sample_rate
    beats = np.arange(0.1, 4.0, 60.0 / tempo_bpm)
    wav = np.zeros(4 * sr, np.float32)
    wav[(beats * sr).astype(int)] = 1.0
    with torch.no_grad():
        logmel = pipe.logmel(torch.from_numpy(wav)[None])[0].numpy()
    n = 64
    return Example(id=f"c{seed}", storyboard=storyboard(4.0, [1.5, 3.0], seed=seed), logmel=logmel, beats=beats,
                   tempo_bpm=tempo_bpm, beat_target=np.zeros(n, np.uint8), tb_target=np.zeros(n, np.uint8))


def _diffusion_steps(pipe: VeMPipeline, clips: list[Example], steps: int = 4) -> list[TrainBatch]:
    """A few diffusion-phase optimiser steps on crops of ``clips``, as the train job takes them; the batches."""
    opt = torch.optim.AdamW(list(trainable_parameters(pipe, "diffusion")), lr=1e-3, weight_decay=0.0)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(steps):
        batch = crop_batch(pipe, clips, 2.0, rng)
        with torch.no_grad():
            latents = pipe.mel_to_latents(batch.logmel)
        loss = diffusion_loss(pipe, latents, batch.cond, None, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        batches.append(batch)
    return batches


@pytest.mark.parametrize("bpm_dropout", [0.3, 1.0])
def test_the_conditions_generation_uses_are_trained(bpm_dropout: float) -> None:
    # generation passes a BPM (the beat plan's) beside the video and its shots: each must learn in training.
    # Control: with every row's tempo dropped (as training did before), the BPM layer keeps its initial weights.
    import dataclasses

    cfg = dataclasses.replace(preset("debug"), bpm_dropout=bpm_dropout)
    pipe = VeMPipeline.build(cfg, seed=0).train()
    as_if_trained(pipe)  # the zero-initialised output layers pass no gradient back to the conditions otherwise
    clips = [_clip(k, tempo, pipe) for k, tempo in enumerate((90.0, 150.0))]
    layers = {"bpm": pipe.conditioner.bpm, "video": pipe.conditioner.visual, "shots": pipe.conditioner.shot}
    before = {name: [p.detach().clone() for p in layer.parameters()] for name, layer in layers.items()}
    _diffusion_steps(pipe, clips)
    moved = {name: any(not torch.equal(a, b) for a, b in zip(before[name], layer.parameters(), strict=True))
             for name, layer in layers.items()}
    assert moved["video"] and moved["shots"]
    assert moved["bpm"] == (bpm_dropout < 1.0)


@pytest.mark.parametrize("text_dropout", [0.3, 1.0])
def test_captions_and_tags_are_trained_when_the_model_reads_text(text_dropout: float, pretrained_parts: dict[str, Path]) -> None:
    # a model with a text encoder is given a caption and tags at generation: training must teach its text layer.
    # Control: with every row's text dropped, the text layer keeps its initial weights.
    import dataclasses

    cfg = dataclasses.replace(preset("debug"), text_dropout=text_dropout)
    pipe = VeMPipeline.build(cfg, text_encoder_dir=pretrained_parts["text"], seed=0).train()
    as_if_trained(pipe)
    clips = [dataclasses.replace(_clip(k, 120.0, pipe), caption=caption, tags=tags)
             for k, (caption, tags) in enumerate([("a bright summer city ad", ["fast", "drums"]),
                                                  ("a dark rainy night", ["slow", "strings"])])]
    assert pipe.conditioner.text is not None
    before = [p.detach().clone() for p in pipe.conditioner.text.parameters()]
    for batch in _diffusion_steps(pipe, clips):
        if text_dropout == 1.0:
            assert not batch.cond.caption_on.any() and not batch.cond.tags_on.any()
    moved = any(not torch.equal(a, b) for a, b in zip(before, pipe.conditioner.text.parameters(), strict=True))
    assert moved == (text_dropout < 1.0)


def test_each_adapter_input_ablation_changes_what_tb_as_reads() -> None:
    pipe = as_if_trained(VeMPipeline.build("debug", seed=0))
    assert pipe.config.beat_plan
    with torch.no_grad():
        for p in pipe.denoiser.adapters.parameters():
            p.normal_(0, 0.1)
    sb = storyboard(3.0, [1.0, 2.0])
    outs = {m: pipe(sb, steps=2, seed=3, adapter_inputs=m) for m in ("both", "plan", "aligner", "empty-plan")}
    names = list(outs)
    assert all(not np.array_equal(outs[a], outs[b]) for i, a in enumerate(names) for b in names[i + 1 :])
    with pytest.raises(ValueError, match="adapter_inputs must be one of"):
        pipe(sb, steps=1, adapter_inputs="planless")
