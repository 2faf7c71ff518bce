"""VeMPipeline: a storyboard (or a video) in, a soundtrack of exactly the video's duration out.

Parts (each its own module): the music latent space (:mod:`vem.mel` + a ``diffusers``
``AutoencoderKL``), the conditions (:mod:`vem.conditioning`), TB-As (:mod:`vem.tbas`), the
denoiser with SG-CAtt (:mod:`vem.denoiser`), the sampler (``diffusers``
``DPMSolverMultistepScheduler``, DPM-Solver++) with classifier-free guidance, and any length through
overlapping windows blended at every step (:mod:`vem.stitch`).

A saved pipeline is a folder: ``vem_config.json``, ``model.safetensors`` (conditioner, aligner,
denoiser), ``vae/`` (diffusers), and when used ``vocoder/`` (a HiFi-GAN loaded with ``audio_dir``,
or the learned vocoder of :mod:`vem.vocoder`; else Griffin-Lim), ``text_encoder/`` and
``image_encoder/`` (transformers). Every weight is read from safetensors; nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vem.beatgrid import BeatPlan, beat_channels, plan_beats
from vem.conditioning import ConditionBatch, Conditioner, VideoConditions, video_conditions, window_batch
from vem.denoiser import Denoiser
from vem.encoders import EncoderError, load_image_encoder, load_text_encoder, local_dir
from vem.mel import GriffinLim, HifiGan, LogMel, MelConfig, Vocoder
from vem.presets import VeMConfig, preset
from vem.sgcatt import attention_bias, storyboard_mask
from vem.stitch import overlap_add, window_starts
from vem.storyboard import ParseConfig, Storyboard, parse_video
from vem.tbas import Aligner, resample
from vem.vocoder import LearnedVocoder

__all__ = ["VeMPipeline", "ModelError", "audio_dir_mel", "build_vae", "noise_scheduler"]

CONFIG_NAME = "vem_config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
PEAK = 0.99  # louder output is scaled down to this peak
DECODE_CHUNK = 256  # latent frames per VAE decoder call (bounded memory for any length)
ADAPTER_INPUTS = ("both", "plan", "aligner", "empty-plan")  # what TB-As reads (ablations: see __call__)


class ModelError(ValueError):
    """A model folder is missing, incomplete or unsafe, or a request does not fit the model."""


def build_vae(cfg: VeMConfig) -> Any:
    """A fresh ``AutoencoderKL`` over the (frames x mels) log-mel image, one channel."""
    from diffusers import AutoencoderKL  # noqa: PLC0415

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1, latent_channels=cfg.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_channels), layers_per_block=1, norm_num_groups=min(8, cfg.vae_channels[0]),
        mid_block_add_attention=False,  # attention over every (frame, mel) cell costs O(length²): not for minutes of audio
    )


def noise_scheduler(cfg: VeMConfig, kind: str = "ddpm") -> Any:
    """The training noise schedule (AudioLDM's betas) or, for ``kind="dpm"``, its DPM-Solver++ sampler."""
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler  # noqa: PLC0415

    betas: dict[str, Any] = {"num_train_timesteps": cfg.train_timesteps, "beta_schedule": "scaled_linear",
                             "beta_start": 0.0015, "beta_end": 0.0195, "prediction_type": cfg.prediction_type}
    if kind == "ddpm":
        return DDPMScheduler(**betas, clip_sample=False)
    return DPMSolverMultistepScheduler(**betas, algorithm_type="dpmsolver++", solver_order=2)


class VeMPipeline(nn.Module):
    def __init__(self, config: VeMConfig, vae: Any, vocoder: Vocoder | None = None, *,
                 text_encoder_dir: Path | None = None, image_encoder_dir: Path | None = None):
        super().__init__()
        self.config = config
        self.vae = vae
        self.vocoder: Vocoder = vocoder if vocoder is not None else GriffinLim(config.mel)
        self.logmel = LogMel(config.mel)
        self.conditioner = Conditioner(config)
        self.aligner = Aligner(3 + config.visual_dim, config.aligner_hidden, config.aligner_layers)
        self.denoiser = Denoiser(config)
        self.text_encoder_dir, self.image_encoder_dir = text_encoder_dir, image_encoder_dir
        self.text_encoder: Callable[[list[str]], np.ndarray] | None = (
            load_text_encoder(text_encoder_dir) if text_encoder_dir else None)
        self.image_encoder: Callable[[np.ndarray], np.ndarray] | None = (
            load_image_encoder(image_encoder_dir) if image_encoder_dir else None)
        self.eval()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, config: VeMConfig | str = "small", *, audio_dir: str | Path | None = None,
              text_encoder_dir: str | Path | None = None, image_encoder_dir: str | Path | None = None,
              seed: int = 0) -> VeMPipeline:
        """A new pipeline with random weights, optionally around pretrained parts.

        ``audio_dir``: an AudioLDM-style folder with ``vae/`` (diffusers ``AutoencoderKL``) and
        ``vocoder/`` (``SpeechT5HifiGan``); the mel settings and latent size then follow those
        checkpoints. ``text_encoder_dir`` / ``image_encoder_dir``: CLAP or CLIP text, CLIP or
        SigLIP vision (local or s3); the condition sizes follow them.
        """
        cfg = preset(config) if isinstance(config, str) else config
        torch.manual_seed(seed)
        vocoder = None
        if audio_dir is not None:
            vae, vocoder = _load_audio_parts(local_dir(audio_dir))
            channels = tuple(vae.config.block_out_channels)
            cfg = replace(cfg, mel=vocoder.mel, vae_channels=channels, latent_channels=int(vae.config.latent_channels),
                          latent_scale=float(vae.config.scaling_factor), latent_shift=0.0)
        else:
            vae = build_vae(cfg)
        text_dir = local_dir(text_encoder_dir) if text_encoder_dir else None
        image_dir = local_dir(image_encoder_dir) if image_encoder_dir else None
        if text_dir is not None:
            cfg = replace(cfg, text_dim=int(load_text_encoder(text_dir)(["music"]).shape[1]))
        if image_dir is not None:
            cfg = replace(cfg, visual_dim=int(load_image_encoder(image_dir)(np.zeros((1, 32, 32, 3), np.uint8)).shape[1]))
        torch.manual_seed(seed)
        return cls(cfg, vae, vocoder, text_encoder_dir=text_dir, image_encoder_dir=image_dir)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the pipeline to a local folder (safetensors + JSON)."""
        from safetensors.torch import save_file  # noqa: PLC0415

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        state = {f"{name}.{k}": v.detach().contiguous().cpu() for name in ("conditioner", "aligner", "denoiser")
                 for k, v in getattr(self, name).state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME))
        self.vae.save_pretrained(out / "vae", safe_serialization=True)
        if isinstance(self.vocoder, HifiGan):
            self.vocoder.model.save_pretrained(out / "vocoder", safe_serialization=True)
        elif isinstance(self.vocoder, LearnedVocoder):
            self.vocoder.save_pretrained(out / "vocoder")
        for name, src in (("text_encoder", self.text_encoder_dir), ("image_encoder", self.image_encoder_dir)):
            if src is not None and Path(src).resolve() != (out / name).resolve():
                shutil.copytree(src, out / name, dirs_exist_ok=True)
        kind = ("hifigan" if isinstance(self.vocoder, HifiGan) else "learned" if isinstance(self.vocoder, LearnedVocoder)
                else "griffin-lim")
        meta = {"format_version": FORMAT_VERSION, "vocoder": kind,
                "text_encoder": self.text_encoder_dir is not None, "image_encoder": self.image_encoder_dir is not None,
                "config": self.config.to_dict()}
        (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path) -> VeMPipeline:
        """Load a folder written by :meth:`save_pretrained` (local path or s3:// URL)."""
        from safetensors.torch import load_file  # noqa: PLC0415

        try:
            folder = local_dir(path)
        except EncoderError as e:
            raise ModelError(str(e)) from e
        meta_file = folder / CONFIG_NAME
        if not meta_file.is_file():
            raise ModelError(f"{path}: no {CONFIG_NAME}; not a saved VeM pipeline")
        if not (folder / WEIGHTS_NAME).is_file():
            raise ModelError(f"{path}: no {WEIGHTS_NAME} (weights load only from safetensors)")
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{path}: format version {meta.get('format_version')}, this code reads {FORMAT_VERSION}")
        cfg = VeMConfig.from_dict(meta["config"])
        vocoder: Vocoder | None
        if meta.get("vocoder") == "hifigan":
            vae, vocoder = _load_audio_parts(folder)
        elif meta.get("vocoder") == "learned":
            try:
                vae, vocoder = _load_vae(folder / "vae"), LearnedVocoder.from_pretrained(folder / "vocoder")
            except Exception as e:  # safetensors, json and torch raise their own types for a corrupt folder
                raise ModelError(f"{path}: cannot load the learned vocoder: {e}") from e
        else:
            vae, vocoder = _load_vae(folder / "vae"), None
        pipe = cls(cfg, vae, vocoder, text_encoder_dir=folder / "text_encoder" if meta.get("text_encoder") else None,
                   image_encoder_dir=folder / "image_encoder" if meta.get("image_encoder") else None)
        try:
            state = load_file(str(folder / WEIGHTS_NAME))
        except Exception as e:  # safetensors raises its own error types for a corrupt or foreign file
            raise ModelError(f"{path}: {WEIGHTS_NAME} is not a readable safetensors file: {e}") from e
        for name in ("conditioner", "aligner", "denoiser"):
            part = {k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")}
            try:
                getattr(pipe, name).load_state_dict(part, strict=True)
            except RuntimeError as e:
                raise ModelError(f"{path}: the {name} weights do not fit the config: {e}") from e
        return pipe.eval()

    # ---- the latent space ---------------------------------------------------------------------
    def mel_to_latents(self, logmel: torch.Tensor, *, sample: bool = False,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``log-mel (B, T, n_mels) -> latents (B, T / f, F)``, scaled for diffusion; T is padded to a multiple of f."""
        f = self.config.vae_factor
        pad = (-logmel.shape[1]) % f
        x = nn.functional.pad(logmel, (0, 0, 0, pad), value=math.log(1e-5)) if pad else logmel
        dist = self.vae.encode(x[:, None]).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        z = (z - self.config.latent_shift) * self.config.latent_scale
        b, c, t, m = z.shape
        return z.permute(0, 2, 1, 3).reshape(b, t, c * m)

    def latents_to_mel(self, z: torch.Tensor) -> torch.Tensor:
        """``latents (B, L, F) -> log-mel (B, L * f, n_mels)``, decoded in overlapping chunks."""
        cfg = self.config
        b, n, _ = z.shape
        img = (z.reshape(b, n, cfg.latent_channels, -1).permute(0, 2, 1, 3) / cfg.latent_scale) + cfg.latent_shift
        overlap = 16
        starts = window_starts(n, DECODE_CHUNK, overlap)
        chunks = [self.vae.decode(img[:, :, s : s + DECODE_CHUNK]).sample[:, 0] for s in starts]
        f = cfg.vae_factor
        return overlap_add(chunks, [s * f for s in starts], n * f, dim=1)

    def audio_to_latents(self, wav: torch.Tensor, **kw: Any) -> torch.Tensor:
        """``waveform (B, samples) at mel.sample_rate -> latents (B, L, F)``."""
        return self.mel_to_latents(self.logmel(wav), **kw)

    # ---- conditions ---------------------------------------------------------------------------
    def parse_config(self, parse: ParseConfig | None = None) -> ParseConfig:
        """The parse settings this model was trained with (its frame rate, the built-in visual features)."""
        return replace(parse or ParseConfig(), fps=self.config.fps, embedding="light")

    def storyboard(self, video: str | bytes, parse: ParseConfig | None = None) -> Storyboard:
        """Parse a video with this model's visual encoder (the built-in one unless an image encoder is loaded)."""
        return parse_video(video, self.parse_config(parse), encoder=self.image_encoder)

    def conditions(self, sb: Storyboard, *, caption: str | None = None, tags: Sequence[str] | None = None,
                   shot_texts: Sequence[str] | None = None, bpm: float | None = None) -> VideoConditions:
        try:
            vc = video_conditions(sb, text_encoder=self.text_encoder, caption=caption, tags=tags, shot_texts=shot_texts,
                                  bpm=bpm)
        except ValueError as e:
            raise ModelError(str(e)) from e
        if vc.global_visual.shape[0] != self.config.visual_dim:
            raise ModelError(f"the storyboard's visual embedding has {vc.global_visual.shape[0]} dimensions; this model "
                             f"was built for {self.config.visual_dim} (parse the video with the model's encoder)")
        return vc

    def window_inputs(self, c: ConditionBatch, n_frames: int, mask_mode: str | None = None,
                      drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and the SG-CAtt bias for windows of ``n_frames`` latent frames."""
        cfg = self.config
        tokens, valid = self.conditioner(c, drop)
        times = ((torch.arange(n_frames, device=tokens.device) + 0.5) / cfg.latent_rate).expand(tokens.shape[0], -1)
        mask = storyboard_mask(times, c.shot_starts, c.shot_durations, c.shot_valid, self.conditioner.n_global)
        return tokens, attention_bias(mask, valid, mask_mode or cfg.mask_mode, cfg.mask_strength)

    def aligner_features(self, frame_features: np.ndarray | torch.Tensor, n_latent: int,
                         beats: np.ndarray | None = None) -> torch.Tensor:
        """TB-As input of a whole video at the latent rate: ``(1, hidden [+ BEAT_CHANNELS], n_latent)``.

        With ``config.beat_plan`` the beat channels of ``beats`` (seconds) follow the aligner's features.
        """
        x = torch.as_tensor(np.asarray(frame_features, np.float32))[None].to(self.device)
        if x.shape[1] == 0:
            features = torch.zeros(1, self.config.aligner_hidden, n_latent, device=self.device)
        else:
            features = resample(self.aligner(x)[0], n_latent)
        if not self.config.beat_plan:
            return features
        times = (np.arange(n_latent) + 0.5) / self.config.latent_rate
        channels = torch.from_numpy(beat_channels(np.asarray(beats if beats is not None else []), times))
        return torch.cat([features, channels[None].to(features)], dim=1)

    def beat_plan(self, sb: Storyboard, bpm: float | None = None) -> BeatPlan:
        """Where the music's beats should fall: the grid that best carries the video's transitions."""
        return plan_beats(np.asarray(sb.transitions), sb.duration_s, bpm=bpm)

    # ---- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, video: Storyboard | str | bytes, **kwargs: Any) -> np.ndarray:
        """A soundtrack: float32 mono at ``config.mel.sample_rate``, exactly the video's duration.

        The log-mel of :meth:`generate_mel` (which takes the same arguments) through the vocoder.
        """
        return self.decode(*self.generate_mel(video, **kwargs))

    def decode(self, mel: torch.Tensor, n_samples: int, vocoder: Vocoder | None = None) -> np.ndarray:
        """A generated log-mel as audio of ``n_samples``, through ``vocoder`` (default: the pipeline's)."""
        wav = (vocoder or self.vocoder)(mel)[0].cpu()
        wav = nn.functional.pad(wav, (0, max(0, n_samples - wav.shape[0])))[:n_samples].float()
        peak = float(wav.abs().max())
        return (wav * (PEAK / peak) if peak > PEAK else wav).numpy()  # never clips when written as PCM

    def generate_mel(self, video: Storyboard | str | bytes, *, seed: int = 0, steps: int = 25,
                     guidance_scale: float = 3.0, mask_mode: str | None = None, adapter_strength: float = 1.0,
                     bpm: float | None = None, caption: str | None = None, tags: Sequence[str] | None = None,
                     shot_texts: Sequence[str] | None = None, max_batch: int = 8, bf16: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     adapter_inputs: str = "both") -> tuple[torch.Tensor, int]:
        """A soundtrack's log-mel (batch of one) and its length in samples (the video's duration).

        ``video``: a :class:`~vem.storyboard.Storyboard` or a video (path or bytes), parsed here.
        ``guidance_scale`` 1 turns classifier-free guidance off; ``mask_mode`` overrides the
        configured storyboard mask; ``adapter_strength`` 0 switches TB-As off; ``bpm`` asks for a
        tempo (the beat plan then takes its phase from the cuts); ``caption``, ``tags`` and
        ``shot_texts`` need a model with a text encoder. ``adapter_inputs`` (ablations) chooses what
        TB-As reads: ``both`` (the aligner's features and the beat plan), ``plan`` (the plan, the
        aligner's features zeroed), ``aligner`` (no plan: its beat channels empty and no BPM from
        it, the paper's TB-As) or ``empty-plan`` (the plan's BPM, its beat channels empty). Runs on
        the device the pipeline was moved to (``pipe.to("cuda")``); ``bf16`` autocasts the
        denoiser and the VAE decoder there. The noise is drawn on the CPU, so a seed gives the same
        music on any device (up to floating point).
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        sb = video if isinstance(video, Storyboard) else self.storyboard(video)
        if not sb.duration_s > 0:
            raise ModelError(f"the video has no duration ({sb.duration_s} s)")
        cfg = self.config
        if adapter_inputs not in ADAPTER_INPUTS:
            raise ValueError(f"adapter_inputs must be one of {ADAPTER_INPUTS}, got {adapter_inputs!r}")
        if adapter_inputs != "both" and not cfg.beat_plan:
            raise ValueError(f"adapter_inputs={adapter_inputs!r} needs a model with a beat plan (config.beat_plan)")
        plan = self.beat_plan(sb, bpm) if cfg.beat_plan and adapter_strength and adapter_inputs != "aligner" else None
        vc = self.conditions(sb, caption=caption, tags=tags, shot_texts=shot_texts,
                             bpm=plan.bpm if plan is not None else bpm)  # the tempo of the plan the beats follow
        n_samples = round(sb.duration_s * cfg.mel.sample_rate)
        total = max(1, math.ceil(n_samples / cfg.mel.hop / cfg.vae_factor))
        window = max(1, round(cfg.window_s * cfg.latent_rate))
        overlap = min(round(cfg.overlap_s * cfg.latent_rate), window - 1)
        starts = window_starts(total, window, overlap)
        width = min(window, total)
        device = self.device
        c = window_batch([vc] * len(starts), [s / cfg.latent_rate for s in starts], width / cfg.latent_rate,
                         cfg.text_dim).to(device)
        guided = guidance_scale != 1.0
        tokens, bias = self.window_inputs(c, width, mask_mode)
        if guided:
            null_tokens, null_bias = self.window_inputs(c, width, mask_mode,
                                                        drop=torch.ones(len(starts), dtype=torch.bool, device=device))
        plan_beats_s = plan.beats if plan is not None and adapter_inputs != "empty-plan" else None
        align = self.aligner_features(vc.frame_features, total, plan_beats_s)[0]
        if adapter_inputs == "plan":  # the aligner's features zeroed, the plan's channels kept
            align[: cfg.aligner_hidden] = 0.0
        align_w = torch.stack([align[:, s : s + width] for s in starts])
        gen = torch.Generator().manual_seed(seed)
        sched = noise_scheduler(cfg, "dpm")
        sched.set_timesteps(steps, device=device)
        z = (torch.randn((1, total, cfg.latent_features), generator=gen) * sched.init_noise_sigma).to(device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        for i, t in enumerate(sched.timesteps):
            outs = []
            for lo in range(0, len(starts), max_batch):
                idx = slice(lo, lo + max_batch)
                zin = torch.stack([z[0, s : s + width] for s in starts[idx]])
                zin = sched.scale_model_input(zin, t)
                with autocast:  # with guidance, the conditioned and the null pass run as one batch
                    if guided:
                        both = self.denoiser(torch.cat([zin, zin]), t, torch.cat([tokens[idx], null_tokens[idx]]),
                                             torch.cat([bias[idx], null_bias[idx]]), torch.cat([align_w[idx], align_w[idx]]),
                                             adapter_strength).float()
                        pred, uncond = both.chunk(2)
                        pred = uncond + guidance_scale * (pred - uncond)
                    else:
                        pred = self.denoiser(zin, t, tokens[idx], bias[idx], align_w[idx], adapter_strength).float()
                outs.extend(pred)
            full = overlap_add(outs, starts, total, dim=0)
            z = sched.step(full[None], t, z).prev_sample
            if progress is not None:
                progress(i + 1, steps)
        with autocast:
            mel = self.latents_to_mel(z).float()
        return mel, n_samples

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def num_parameters(self) -> dict[str, int]:
        parts = {"vae": self.vae, "conditioner": self.conditioner, "aligner": self.aligner, "denoiser": self.denoiser}
        if isinstance(self.vocoder, HifiGan | LearnedVocoder):
            parts["vocoder"] = self.vocoder
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}


def _load_vae(folder: Path) -> Any:
    from diffusers import AutoencoderKL  # noqa: PLC0415

    if not folder.is_dir() or not list(folder.glob("*.safetensors")):
        raise ModelError(f"{folder}: no VAE with safetensors weights")
    try:
        return AutoencoderKL.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False).eval()
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{folder}: cannot load the VAE: {e}") from e


def audio_dir_mel(audio_dir: str | Path) -> MelConfig:
    """The log-mel settings of a pretrained AudioLDM-style folder (its vocoder's config), without loading weights."""
    from transformers import SpeechT5HifiGanConfig  # noqa: PLC0415

    return MelConfig.from_vocoder(SpeechT5HifiGanConfig.from_pretrained(local_dir(audio_dir) / "vocoder"))


def _load_audio_parts(folder: Path) -> tuple[Any, HifiGan]:
    """An AudioLDM-style folder: ``vae/`` and ``vocoder/`` (SpeechT5HifiGan)."""
    from transformers import SpeechT5HifiGan  # noqa: PLC0415

    vae = _load_vae(folder / "vae")
    voc = folder / "vocoder"
    if not voc.is_dir() or not list(voc.glob("*.safetensors")):
        raise ModelError(f"{voc}: no vocoder with safetensors weights")
    try:
        vocoder = HifiGan(SpeechT5HifiGan.from_pretrained(voc, use_safetensors=True).eval())
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{voc}: cannot load the HiFi-GAN vocoder: {e}") from e
    if int(vae.config.in_channels) != 1:
        raise ModelError(f"{folder / 'vae'}: a mel VAE has one input channel, this one has {vae.config.in_channels}")
    return vae, vocoder


