"""Tiny random stand-ins for the pretrained parts a user would pass (built and saved by the tests).

Each is saved with ``save_pretrained`` in the layout of the real checkpoint, so the code under test
loads it through the same path a user's folder takes. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_clip_vision(folder: Path) -> Path:
    """A CLIP vision model with projection (16-d embeddings) and its image processor."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def save_tiny_clap_text(folder: Path) -> Path:
    """A CLAP text tower with projection (12-d embeddings) and a word-level tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import ClapTextConfig, ClapTextModelWithProjection, PreTrainedTokenizerFast

    words = "<pad> <s> </s> <unk> a an the happy sad bright dark music video ad calm fast slow piano drums city sea".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>", model_max_length=32).save_pretrained(folder)
    torch.manual_seed(0)
    config = ClapTextConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=40, projection_dim=12, pad_token_id=0)
    ClapTextModelWithProjection(config).save_pretrained(folder)
    return folder


def save_tiny_audioldm(folder: Path, n_mels: int = 32) -> Path:
    """AudioLDM's layout: ``vae/`` (a 1-channel mel AutoencoderKL, 8 latent channels, 4x) and
    ``vocoder/`` (SpeechT5HifiGan for ``n_mels`` bands, hop 160 at 16 kHz)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    AutoencoderKL(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(8, 16, 16),
                  down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                  norm_num_groups=8, scaling_factor=0.5).save_pretrained(folder / "vae")
    config = SpeechT5HifiGanConfig(model_in_dim=n_mels, sampling_rate=16000, upsample_initial_channel=16,
                                   upsample_rates=[5, 4, 4, 2], upsample_kernel_sizes=[10, 8, 8, 4],
                                   resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], normalize_before=False)
    SpeechT5HifiGan(config).save_pretrained(folder / "vocoder")
    return folder
