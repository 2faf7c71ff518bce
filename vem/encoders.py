"""Pluggable visual encoders for the storyboard's frame embeddings.

:func:`vem.storyboard.light_embedding` is the built-in default (no weights). A ``transformers``
CLIP or SigLIP vision model is loaded from a *local* directory with :func:`load_image_encoder`
(jobs download s3:// directories first); weights are read only from safetensors files, never
from pickles. Nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BRIDGE_CONCEPTS", "EncoderError", "PromptBridge", "load_audio_encoder", "load_image_encoder",
           "load_prompt_bridge", "load_text_encoder", "local_dir"]

#: What the prompt bridge asks of both sides: moods and energies that a picture and a piece of
#: music can both have. Words only: the templates below make them a caption of each medium.
BRIDGE_CONCEPTS = ("happy", "sad", "calm", "energetic", "romantic", "tense", "playful", "epic", "dreamy", "dark",
                   "bright", "elegant", "nostalgic", "aggressive", "peaceful", "mysterious")
IMAGE_TEMPLATE = "a {} scene"
MUSIC_TEMPLATE = "{} music"
AUDIO_RATE = 16000  # Hz of the signals the audio encoder is given (vem.audio.load_audio's)


_TEXT_ARCHITECTURES = ("ClapModel", "ClapTextModelWithProjection", "CLIPModel", "CLIPTextModelWithProjection", "SiglipModel")
_AUDIO_ARCHITECTURES = ("ClapModel", "ClapAudioModelWithProjection")
_ARCHITECTURES = ("CLIPModel", "CLIPVisionModel", "CLIPVisionModelWithProjection", "SiglipModel", "SiglipVisionModel")


class EncoderError(ValueError):
    """The encoder directory is missing, unsafe or not a supported vision model."""


def load_image_encoder(path: str | Path, *, batch_size: int = 32, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """A function ``frames (n, h, w, 3) uint8 -> (n, dim) float32`` (unit-norm rows).

    Parameters
    ----------
    path : str or Path
        A directory written by ``save_pretrained`` of a CLIP / SigLIP model (full or vision-only)
        and its image processor.
    """
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415

    model, processor = _model_and_processor(path, _ARCHITECTURES, "a CLIP or SigLIP vision model", device,
                                            transformers.AutoImageProcessor, "image processor")

    @torch.no_grad()
    def encode(frames: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(frames), batch_size):
            pixels = processor(images=list(frames[start : start + batch_size]), return_tensors="pt")["pixel_values"].to(device)
            result = model.get_image_features(pixel_values=pixels) if hasattr(model, "get_image_features") \
                else model(pixel_values=pixels)
            emb = result if isinstance(result, torch.Tensor) else _first(result, ("image_embeds", "pooler_output"))
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    return encode


def load_text_encoder(path: str | Path, *, batch_size: int = 64, device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """A function ``texts -> (n, dim) float32`` (unit-norm rows) from a CLAP or CLIP text model.

    Parameters
    ----------
    path : str or Path
        A local directory written by ``save_pretrained`` of a ``ClapModel``,
        ``ClapTextModelWithProjection``, ``CLIPModel`` or ``CLIPTextModelWithProjection`` and its
        tokenizer.
    """
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415

    folder = _checked(path)
    model = _load_model(folder, _TEXT_ARCHITECTURES, "a CLAP or CLIP text model", device)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{folder}: cannot load the tokenizer: {e}") from e

    @torch.no_grad()
    def encode(texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            result = model.get_text_features(**batch) if hasattr(model, "get_text_features") else model(**batch)
            emb = result if isinstance(result, torch.Tensor) else _first(result, ("text_embeds", "pooler_output"))
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    return encode


def load_audio_encoder(path: str | Path, *, batch_size: int = 8,
                       device: str = "cpu") -> Callable[[Sequence[np.ndarray]], np.ndarray]:
    """A function ``segments (16 kHz mono float32 signals) -> (n, dim) float32`` (unit-norm rows)
    from a CLAP audio model.

    Each segment is resampled to the model's rate and cut into windows of the feature
    extractor's length (no random crop: a segment longer than one window is the mean of its
    windows' embeddings; a tail under a quarter window is dropped unless it is all there is).

    Parameters
    ----------
    path : str or Path
        A local directory written by ``save_pretrained`` of a ``ClapModel`` or
        ``ClapAudioModelWithProjection`` and its feature extractor.
    """
    from math import gcd  # noqa: PLC0415

    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415
    from scipy.signal import resample_poly  # noqa: PLC0415

    model, extractor = _model_and_processor(path, _AUDIO_ARCHITECTURES, "a CLAP audio model", device,
                                            transformers.AutoFeatureExtractor, "feature extractor")
    rate = int(extractor.sampling_rate)
    window = int(extractor.nb_max_samples)
    g = gcd(rate, AUDIO_RATE)

    def windows(signal: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(signal, dtype=np.float32).reshape(-1)
        x = resample_poly(x, rate // g, AUDIO_RATE // g).astype(np.float32) if rate != AUDIO_RATE else x
        if len(x) == 0:
            x = np.zeros(window // 10, dtype=np.float32)  # silence stands for nothing
        parts = [x[i : i + window] for i in range(0, len(x), window)]
        return [p for p in parts if len(p) >= window // 4] or parts[:1]

    @torch.no_grad()
    def encode(segments: Sequence[np.ndarray]) -> np.ndarray:
        pieces = [windows(s) for s in segments]
        flat = [w for p in pieces for w in p]
        embs = []
        for start in range(0, len(flat), batch_size):
            inputs = extractor(flat[start : start + batch_size], sampling_rate=rate, return_tensors="pt")
            inputs = {k: v.to(device) for k, v in inputs.items() if k in ("input_features", "is_longer")}
            result = model.get_audio_features(**inputs) if hasattr(model, "get_audio_features") else model(**inputs)
            emb = result if isinstance(result, torch.Tensor) else _first(result, ("audio_embeds", "pooler_output"))
            embs.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        per_window = np.concatenate(embs)
        bounds = np.cumsum([0] + [len(p) for p in pieces])
        out = np.stack([per_window[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    return encode


def _model_and_processor(path: str | Path, architectures: tuple[str, ...], what: str, device: str,
                         auto: Any, name: str) -> tuple[Any, Any]:
    """A checked model folder's model and its input processor (``auto``: a transformers Auto class)."""
    folder = _checked(path)
    model = _load_model(folder, architectures, what, device)
    try:
        return model, auto.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{folder}: cannot load the {name}: {e}") from e


@dataclass(frozen=True)
class PromptBridge:
    """A joint video-music embedder built from two models trained apart: an image-text model
    (CLIP/SigLIP) and an audio-text one (CLAP), bridged by the same concepts.

    Both sides zero-shot classify against the same list of concepts (``IMAGE_TEMPLATE`` captions
    for pictures, ``MUSIC_TEMPLATE`` captions for music); a picture's or a piece's joint
    embedding is its probability distribution over the concepts (softmax of the model's own
    logit scale times the cosines), so a video and its music are compared in one space of
    ``len(concepts)`` dimensions with :func:`vem.metrics.semantic_score`.
    """

    concepts: tuple[str, ...]
    image_prompts: np.ndarray  # (K, d_image) unit text embeddings in the image model's space
    music_prompts: np.ndarray  # (K, d_audio) unit text embeddings in the audio model's space
    image_scale: float
    music_scale: float
    encode_music: Callable[[Sequence[np.ndarray]], np.ndarray]

    def video(self, image_embeddings: np.ndarray) -> np.ndarray:
        """``(n, d_image)`` embeddings of the image model (e.g. a storyboard's) -> ``(n, K)`` distributions."""
        return _softmax(self.image_scale * _unit(image_embeddings) @ self.image_prompts.T)

    def music(self, segments: Sequence[np.ndarray]) -> np.ndarray:
        """16 kHz mono signals -> ``(n, K)`` distributions."""
        return _softmax(self.music_scale * self.encode_music(segments) @ self.music_prompts.T)


def load_prompt_bridge(image_model: str | Path, audio_model: str | Path, *, concepts: Sequence[str] = BRIDGE_CONCEPTS,
                       device: str = "cpu") -> PromptBridge:
    """The :class:`PromptBridge` of a full CLIP/SigLIP model (image and text towers) and a full
    CLAP model (audio and text towers), both local directories."""
    if len(concepts) < 2:
        raise EncoderError("the prompt bridge needs at least 2 concepts")
    image_text = load_text_encoder(image_model, device=device)
    audio_text = load_text_encoder(audio_model, device=device)
    return PromptBridge(
        concepts=tuple(concepts),
        image_prompts=image_text([IMAGE_TEMPLATE.format(c) for c in concepts]),
        music_prompts=audio_text([MUSIC_TEMPLATE.format(c) for c in concepts]),
        image_scale=_logit_scale(Path(image_model), ("logit_scale",)),
        music_scale=_logit_scale(Path(audio_model), ("logit_scale_a", "logit_scale")),
        encode_music=load_audio_encoder(audio_model, device=device),
    )


def _logit_scale(folder: Path, names: tuple[str, ...]) -> float:
    """exp of the model's learned logit scale (its softmax temperature), read from its safetensors."""
    from safetensors import safe_open  # noqa: PLC0415

    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="np") as f:
            for name in names:
                if name in f.keys():  # noqa: SIM118  (a safetensors handle, not a dict)
                    return float(np.exp(np.asarray(f.get_tensor(name), dtype=np.float64).reshape(-1)[0]))
    raise EncoderError(f"{folder}: no {' or '.join(names)} in the weights (not a full two-tower model)")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def local_dir(path: str | Path, cache: str | Path | None = None) -> Path:
    """``path`` as a local directory: local paths as they are; ``s3://`` (any fsspec URL) copied
    once into ``cache`` (default ``~/.cache/vem``), atomically (a temp folder, then a rename)."""
    import hashlib  # noqa: PLC0415
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    text = str(path)
    if "://" not in text or text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    import fsspec  # noqa: PLC0415

    root = Path(cache or os.environ.get("VEM_CACHE") or Path.home() / ".cache" / "vem")
    target = root / hashlib.sha256(text.rstrip("/").encode()).hexdigest()[:16]
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        fs, _, (remote,) = fsspec.get_fs_token_paths(text)
        if not fs.isdir(remote):
            raise EncoderError(f"{text}: not a directory in object storage")
        fs.get(remote.rstrip("/") + "/", str(tmp), recursive=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # another process (a job's other actors) finished the same copy first: use it
                raise
    except FileNotFoundError as e:
        raise EncoderError(f"{text}: not found ({e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _checked(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise EncoderError(f"{folder}: not a directory with a saved model")
    if not list(folder.glob("*.safetensors")):
        raise EncoderError(f"{folder}: no .safetensors weights (pickled weights are refused)")
    return folder


def _load_model(folder: Path, architectures: tuple[str, ...], what: str, device: str) -> Any:
    import transformers  # noqa: PLC0415

    try:
        config = transformers.AutoConfig.from_pretrained(folder)
        arch = (config.architectures or [""])[0]
        if arch not in architectures:
            raise EncoderError(f"{folder}: {arch or config.model_type!r} is not {what} (supported: {', '.join(architectures)})")
        return getattr(transformers, arch).from_pretrained(folder, use_safetensors=True).to(device).eval()
    except EncoderError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{folder}: cannot load {what}: {e}") from e


def _first(output: object, names: tuple[str, ...]) -> Any:
    """The first of ``names`` that a transformers output object holds."""
    for name in names:
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise EncoderError(f"the model's output has none of {names}")
