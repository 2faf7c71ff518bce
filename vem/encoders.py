"""Pluggable visual encoders for the storyboard's frame embeddings.

:func:`vem.storyboard.light_embedding` is the built-in default (no weights). A ``transformers``
CLIP or SigLIP vision model is loaded from a *local* directory with :func:`load_image_encoder`
(jobs download s3:// directories first); weights are read only from safetensors files, never
from pickles. Nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EncoderError", "load_image_encoder", "load_text_encoder", "local_dir"]


_TEXT_ARCHITECTURES = ("ClapModel", "ClapTextModelWithProjection", "CLIPModel", "CLIPTextModelWithProjection")
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

    folder = _checked(path)
    model = _load_model(folder, _ARCHITECTURES, "a CLIP or SigLIP vision model", device)
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{folder}: cannot load the image processor: {e}") from e

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
        os.replace(tmp, target)
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
