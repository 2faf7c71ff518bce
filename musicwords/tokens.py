"""Tokens: what a music-word is spelled with.

A monophonic stream of notes ``n_0, n_1, ..., n_m`` becomes ``m`` tokens; token ``i`` describes
the *arrival* at note ``i`` from note ``i - 1``:

- pitch (``pitch="interval"``, default): ``p_i - p_{i-1}`` in semitones, clipped to ±24, so
  a transposed motif has the same tokens; ``pitch="diatonic"``: the step in *scale steps*
  (morphetic pitch, :mod:`musicwords.spelling`: the input's spelling where it has one, else an
  estimated one), so a motif moved up or down the scale (a tonal answer, a sequence) has the
  same tokens too; ``pitch="absolute"`` uses ``p_i`` (for ablation);
- rhythm (``rhythm="ioi"``, default): the inter-onset interval ``o_i - o_{i-1}`` in beats,
  quantised to 1/12 beat (semiquavers and triplets stay exact) and capped at 8 beats. Times in
  beats carry no tempo, so a motif played faster or slower (another BPM) has the same tokens;
  ``rhythm="ratio"`` uses ``log2(IOI_i / IOI_{i-1})`` in twelfths of an octave, which also
  equates augmented and diminished statements, at the price of a first token that depends
  on the note before the motif.

A word of ``k`` tokens starting at token ``a`` covers notes ``a - 1 ... a + k - 1``: ``k + 1``
notes. Adjacent words in a segmentation share their boundary note.

The :class:`Alphabet` maps ``(pitch, rhythm)`` pairs to integer ids and is stored with every
dictionary, so tokens mean the same thing when a dictionary is applied to new music.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicwords.notes import Notes
from musicwords.spelling import diatonic_pitch
from musicwords.voices import Streams

__all__ = ["Alphabet", "TokenConfig", "TokenStreams", "tokenize"]

SEPARATOR = -1  # between streams in the concatenated token array


@dataclass(frozen=True)
class TokenConfig:
    """How notes become tokens (see the module docstring)."""

    pitch: str = "interval"  # "interval" (transposition-invariant) | "diatonic" (scale steps) | "absolute"
    rhythm: str = "ioi"  # "ioi" (in beats: tempo-invariant) | "ratio" (also augmentation-invariant)
    grid: int = 12  # rhythm quantisation steps per beat (ioi) or per octave (ratio)
    max_interval: int = 24  # semitones; larger leaps share one token value
    max_ioi_beats: float = 8.0  # longer gaps (rests) share one token value

    def __post_init__(self) -> None:
        if self.pitch not in ("interval", "diatonic", "absolute"):
            raise ValueError(f"pitch must be 'interval', 'diatonic' or 'absolute', got {self.pitch!r}")
        if self.rhythm not in ("ioi", "ratio"):
            raise ValueError(f"rhythm must be 'ioi' or 'ratio', got {self.rhythm!r}")
        if self.grid < 1:
            raise ValueError(f"grid must be >= 1, got {self.grid}")


@dataclass
class Alphabet:
    """Token ids of ``(pitch value, rhythm value)`` pairs, grown as new pairs are seen."""

    config: TokenConfig = field(default_factory=TokenConfig)
    symbols: list[tuple[int, int]] = field(default_factory=list)
    _index: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, pairs: np.ndarray, *, grow: bool = True) -> np.ndarray:
        """Ids of ``pairs`` (shape (n, 2)); unseen pairs get new ids when ``grow`` (else -2)."""
        out = np.empty(len(pairs), dtype=np.int64)
        for i, (a, b) in enumerate(pairs.tolist()):
            key = (int(a), int(b))
            ident = self._index.get(key)
            if ident is None:
                if not grow:
                    out[i] = -2
                    continue
                ident = len(self.symbols)
                self.symbols.append(key)
                self._index[key] = ident
            out[i] = ident
        return out

    def describe(self, token: int) -> str:
        """Human-readable token: ``+2@0.5`` = up a tone, half a beat after the previous note."""
        a, b = self.symbols[token]
        pitch = {"interval": f"{a:+d}", "diatonic": f"{a:+d}st"}.get(self.config.pitch, str(a))
        if self.config.rhythm == "ioi":
            return f"{pitch}@{b / self.config.grid:g}"
        return f"{pitch}x{2 ** (b / self.config.grid):.3g}"

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict  # noqa: PLC0415

        return {"config": asdict(self.config), "symbols": [list(s) for s in self.symbols]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alphabet:
        config = TokenConfig(**data["config"])
        return cls(config=config, symbols=[(int(a), int(b)) for a, b in data["symbols"]])


@dataclass(frozen=True)
class TokenStreams:
    """All streams of a corpus as one token array, streams separated by ``SEPARATOR``.

    ``note[j]`` is the index (into its piece's Notes) of the note token ``j`` arrives at, and
    ``prev_note[j]`` the note it leaves; ``piece[j]`` and ``stream[j]`` say where it belongs.
    Separator positions hold -1 everywhere.
    """

    tokens: np.ndarray  # (T,) int64
    piece: np.ndarray  # (T,) int32, index into piece_ids
    stream: np.ndarray  # (T,) int32, global stream index
    note: np.ndarray  # (T,) int64
    prev_note: np.ndarray  # (T,) int64
    piece_ids: tuple[str, ...]
    stream_names: tuple[str, ...]

    @property
    def n_tokens(self) -> int:
        return int(np.sum(self.tokens != SEPARATOR))


def tokenize(
    pieces: list[tuple[Notes, Streams]], alphabet: Alphabet, *, grow: bool = True
) -> TokenStreams:
    """Token streams of ``pieces`` (each a Notes table and its monophonic streams)."""
    cfg = alphabet.config
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in ("tokens", "piece", "stream", "note", "prev")}
    names: list[str] = []
    for p, (notes, streams) in enumerate(pieces):
        heights = diatonic_pitch(notes) if cfg.pitch == "diatonic" else notes.pitch.astype(np.int64)
        for name, idx in zip(streams.names, streams.streams, strict=True):
            if len(idx) < 2:
                continue
            pitch = heights[idx]
            onset = notes.onset[idx]
            ioi = np.diff(onset)
            if cfg.pitch in ("interval", "diatonic"):
                a = np.clip(np.diff(pitch), -cfg.max_interval - 1, cfg.max_interval + 1)
            else:
                a = pitch[1:]
            if cfg.rhythm == "ioi":
                b = np.round(np.minimum(ioi, cfg.max_ioi_beats) * cfg.grid).astype(np.int64)
            else:
                safe = np.maximum(ioi, 1e-3)
                prev = np.concatenate([[safe[0]], safe[:-1]])
                b = np.round(np.log2(safe / prev) * cfg.grid).astype(np.int64)
            ids = alphabet.encode(np.stack([a, b], axis=1), grow=grow)
            s = len(names)
            names.append(f"{notes.piece_id}:{name}")
            chunks["tokens"].append(np.concatenate([ids, [SEPARATOR]]))
            chunks["piece"].append(np.concatenate([np.full(len(ids), p), [-1]]))
            chunks["stream"].append(np.concatenate([np.full(len(ids), s), [-1]]))
            chunks["note"].append(np.concatenate([idx[1:], [-1]]))
            chunks["prev"].append(np.concatenate([idx[:-1], [-1]]))
    if not names:
        empty = np.zeros(0, dtype=np.int64)
        return TokenStreams(empty, empty.astype(np.int32), empty.astype(np.int32), empty, empty,
                            tuple(n.piece_id for n, _ in pieces), ())
    return TokenStreams(
        tokens=np.concatenate(chunks["tokens"]).astype(np.int64),
        piece=np.concatenate(chunks["piece"]).astype(np.int32),
        stream=np.concatenate(chunks["stream"]).astype(np.int32),
        note=np.concatenate(chunks["note"]).astype(np.int64),
        prev_note=np.concatenate(chunks["prev"]).astype(np.int64),
        piece_ids=tuple(n.piece_id for n, _ in pieces),
        stream_names=tuple(names),
    )
