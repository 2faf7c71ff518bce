"""The pluggable CLIP encoder, with a tiny random model the test builds and saves itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vem.encoders import EncoderError, load_image_encoder
from vem.storyboard import ParseConfig, parse_video
from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad

from .tiny_models import save_tiny_clip_vision


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip_vision(tmp_path_factory.mktemp("tiny-clip"))


def test_clip_encoder_embeds_storyboard_frames(tiny_clip: Path, tmp_path: Path) -> None:
    encoder = load_image_encoder(tiny_clip)
    plan = plan_ad(seed=1, index=0, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(tmp_path / "v.mp4"))
    board = parse_video(str(tmp_path / "v.mp4"), ParseConfig(), encoder)
    assert board.embeddings.shape == (len(board.motion_energy), 16)
    assert np.allclose(np.linalg.norm(board.embeddings, axis=1), 1.0, atol=1e-5)
    # the same frames give the same embeddings; different shots give different ones
    again = load_image_encoder(tiny_clip)(np.zeros((2, 64, 64, 3), dtype=np.uint8))
    assert np.allclose(again[0], again[1])
    first, last = board.embeddings[0], board.embeddings[-1]
    assert not np.allclose(first, last)


def test_pickled_weights_are_refused(tiny_clip: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_clip, folder)
    for f in folder.glob("*.safetensors"):
        f.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(EncoderError, match="pickled weights are refused"):
        load_image_encoder(folder)
    with pytest.raises(EncoderError, match="not a directory"):
        load_image_encoder(tmp_path / "missing")
