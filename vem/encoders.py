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

__all__ = ["EncoderError", "load_image_encoder"]


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

    folder = Path(path)
    if not folder.is_dir():
        raise EncoderError(f"{folder}: not a directory with a saved model")
    if not list(folder.glob("*.safetensors")):
        raise EncoderError(f"{folder}: no .safetensors weights (pickled weights are refused)")
    try:
        config = transformers.AutoConfig.from_pretrained(folder)
        arch = (config.architectures or [""])[0]
        if arch not in _ARCHITECTURES:
            raise EncoderError(f"{folder}: {arch or config.model_type!r} is not a CLIP or SigLIP vision model "
                               f"(supported: {', '.join(_ARCHITECTURES)})")
        model = getattr(transformers, arch).from_pretrained(folder, use_safetensors=True).to(device).eval()
        processor = transformers.AutoImageProcessor.from_pretrained(folder)
    except EncoderError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{folder}: cannot load a vision model: {e}") from e

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


def _first(output: object, names: tuple[str, ...]) -> Any:
    """The first of ``names`` that a transformers output object holds."""
    for name in names:
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise EncoderError(f"the model's output has none of {names}")
