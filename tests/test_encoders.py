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


# --- the joint video-music embedder: CLIP and CLAP bridged by shared concepts -------------------

def _word_tokenizer(words: list[str]) -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = ["<pad>", "<s>", "</s>", "<unk>", *words]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=16)


def _bridge_words() -> list[str]:
    from vem.encoders import BRIDGE_CONCEPTS, IMAGE_TEMPLATE, MUSIC_TEMPLATE

    extra = (IMAGE_TEMPLATE + " " + MUSIC_TEMPLATE).replace("{}", " ").split()
    return sorted(set(BRIDGE_CONCEPTS) | set(extra))


def save_tiny_clip_full(folder: Path) -> Path:
    """A two-tower CLIP (16-d joint space) with its image processor and a word-level tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    words = _bridge_words()
    torch.manual_seed(1)
    text = CLIPTextConfig(vocab_size=len(words) + 4, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=16, projection_dim=16, pad_token_id=0,
                          bos_token_id=1, eos_token_id=2)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    _word_tokenizer(words).save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


def save_tiny_clap_full(folder: Path) -> Path:
    """A two-tower CLAP (12-d joint space; 16 kHz, 2 s windows) with its feature extractor and tokenizer."""
    import torch
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    words = _bridge_words()
    torch.manual_seed(2)
    audio = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4), depths=[1, 1],
                            num_attention_heads=[2, 2], patch_embeds_hidden_size=8, hidden_size=16, projection_dim=12,
                            enable_fusion=False, mlp_ratio=2.0)
    text = ClapTextConfig(vocab_size=len(words) + 4, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=24, projection_dim=12, pad_token_id=0)
    ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=12)).save_pretrained(folder)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=2, fft_window_size=400,
                         truncation="rand_trunc").save_pretrained(folder)
    _word_tokenizer(words).save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_tiny_clip_full(tmp_path_factory.mktemp("clip")), save_tiny_clap_full(tmp_path_factory.mktemp("clap"))


def test_the_prompt_bridge_compares_concept_distributions() -> None:
    """The bridge's arithmetic on hand-made parts: prompts are the axes, so a picture and a piece
    of music about the same concept score higher than about different ones."""
    from vem import metrics
    from vem.encoders import PromptBridge

    eye = np.eye(3, dtype=np.float32)
    bridge = PromptBridge(concepts=("x", "y", "z"), image_prompts=eye, music_prompts=eye, image_scale=10.0, music_scale=10.0,
                          encode_music=lambda segments: np.stack([eye[int(s[0])] for s in segments]))  # "about" concept s[0]
    video = bridge.video(np.array([[2.0, 0.0, 0.0]]))  # unnormalised on purpose: the bridge normalises
    assert np.allclose(video.sum(axis=1), 1.0)
    e = np.exp(10.0)
    assert np.allclose(video[0], [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], atol=1e-6)  # softmax of 10 * cosines
    same, other = bridge.music([np.zeros(3), np.ones(3)])
    assert metrics.semantic_score(video[0], same) > 0.99 > 0.2 > metrics.semantic_score(video[0], other)


def test_tiny_clip_and_clap_give_semantic_scores(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from vem.encoders import BRIDGE_CONCEPTS, load_audio_encoder, load_prompt_bridge
    from vem.scoring import score_video

    clip, clap = tiny_pair
    bridge = load_prompt_bridge(clip, clap)
    assert bridge.image_prompts.shape == (len(BRIDGE_CONCEPTS), 16) and bridge.music_prompts.shape == (len(BRIDGE_CONCEPTS), 12)
    assert len({tuple(np.round(p, 5)) for p in bridge.image_prompts}) == len(BRIDGE_CONCEPTS)  # the concepts differ
    assert bridge.image_scale == pytest.approx(np.exp(2.6592), rel=1e-3)  # CLIP's initial logit scale, read from the weights
    # audio: 16 kHz in, resampled and windowed; a 5 s signal is the mean of 2 s windows, deterministic
    encode = load_audio_encoder(clap)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=5 * 16000).astype(np.float32) * 0.1
    first, again = encode([noise, noise[:100]]), encode([noise])
    assert first.shape == (2, 12) and np.allclose(first[0], again[0], atol=1e-6)
    plan = plan_ad(seed=3, index=0, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(tmp_path / "v.mp4"))
    data = (tmp_path / "v.mp4").read_bytes()
    row = score_video("v", "v.mp4", data, encoder_dir=str(clip), music_encoder_dir=str(clap))
    assert row["status"] == "ok" and "joint embedder" in row["semantic_note"]
    assert 0.0 < row["semantic"] <= 1.0 and 0.0 < row["tw_semantic"] <= 1.0
    assert len(row["visual_embedding"]) == 16 and np.linalg.norm(row["visual_embedding"]) == pytest.approx(1.0, abs=1e-4)
    # another soundtrack under the same pictures changes the scores
    from vem.media import mux_soundtrack

    other = mux_soundtrack(data, noise, 16000)
    moved = score_video("v", "v.mp4", other, encoder_dir=str(clip), music_encoder_dir=str(clap))
    assert moved["tw_semantic"] != pytest.approx(row["tw_semantic"], abs=1e-6)
    # a visual encoder alone: the embedding, and the row says why there are no semantic scores
    alone = score_video("v", "v.mp4", data, encoder_dir=str(clip))
    assert alone["visual_embedding"] == row["visual_embedding"]
    assert alone["semantic"] is None and "visual encoder only" in alone["semantic_note"]


@pytest.mark.slow  # the sandbox child imports torch and compiles numba: ~15 s; the scoring itself is tested above
def test_score_job_with_encoders(ray_cluster: None, workdir: str, tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from jobs.__main__ import main

    clip, clap = tiny_pair
    videos = tmp_path / "videos"
    videos.mkdir()
    plan = plan_ad(seed=5, index=0, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(videos / "good.mp4"))
    encode_mp4(plan, str(videos / "silent.mp4"), streams="video")
    out = tmp_path / "scores"
    argv = ["score", "--input", str(videos), "--output", str(out), "--workdir", workdir, "--workers", "1"]
    assert main([*argv, "--music-encoder", str(clap)]) == 2  # a music model alone bridges nothing: refused up front
    assert main([*argv, "--encoder", str(tmp_path / "missing")]) == 2
    assert main([*argv, "--encoder", str(clip), "--music-encoder", str(clap)]) == 0
    rows = {r["id"]: r for r in pq.read_table(out / "scores").to_pylist()}
    assert rows["good"]["status"] == "ok" and 0 < rows["good"]["semantic"] <= 1 and 0 < rows["good"]["tw_semantic"] <= 1
    assert len(rows["good"]["visual_embedding"]) == 16
    assert rows["silent"]["status"] == "ok" and rows["silent"]["semantic"] is None
    assert "no audio track" in rows["silent"]["semantic_note"] and len(rows["silent"]["visual_embedding"]) == 16


def test_an_encoder_folder_on_s3_is_copied_once_and_loads(tiny_clip: Path, bucket: str, tmp_path: Path) -> None:
    from jobs import storage
    from vem.encoders import local_dir

    for f in tiny_clip.iterdir():
        storage.write_bytes(f"s3://{bucket}/models/clip/{f.name}", f.read_bytes())
    folder = local_dir(f"s3://{bucket}/models/clip", cache=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_clip.iterdir())
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    assert np.allclose(load_image_encoder(folder)(frames), load_image_encoder(tiny_clip)(frames), atol=1e-6)
    assert local_dir(f"s3://{bucket}/models/clip/", cache=tmp_path / "cache") == folder  # cached: not copied again
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [folder.name]  # no temporary folder left behind
    with pytest.raises(EncoderError, match="not a directory|not found"):
        local_dir(f"s3://{bucket}/models/none", cache=tmp_path / "cache")
