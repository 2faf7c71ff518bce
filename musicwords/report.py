"""What discovery produces, as tables, MIDI and pictures.

- :func:`dictionary_table`: one row per reported word: ``word_id``, its ``pattern`` (relative
  onset in beats, pitch interval from the first note, duration per note, from its first
  occurrence), its spelling in tokens, ``count``, ``prob``, ``bits`` (−log2 prob) and
  ``bits_saved``;
- :func:`occurrences_table`: one row per occurrence: ``piece_id``, ``word_id``, note indices,
  ``start``/``end`` (beats), ``pitch_lo``/``pitch_hi``;
- :func:`piece_table`: per piece, its code length under the base token model and with the
  dictionary (its words' bits plus its share of the dictionary, by token count), and their
  ratio, the compression ratio;
- :func:`words_midi`: a piece written back to MIDI with each reported word on its own track (a
  note in several words goes to the word that saves most), the rest on a last track;
- :func:`plot_piano_roll` and :func:`plot_words`: PNGs (matplotlib, no display needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicwords.discover import DiscoverResult
from musicwords.lattice import build_lattice, viterbi
from musicwords.midi import notes_to_midi_bytes, playable_notes
from musicwords.notes import Notes

__all__ = ["dictionary_table", "occurrences_table", "piece_table", "plot_piano_roll", "plot_words", "words_midi"]

LN2 = float(np.log(2.0))


def dictionary_table(result: DiscoverResult) -> Any:
    """The reported words as a pyarrow Table (see the module docstring)."""
    import pyarrow as pa  # noqa: PLC0415

    d = result.dictionary
    rows = []
    for p in result.patterns:
        piece, idx = p.occurrences[0]
        n = result.pieces[piece]
        rows.append({
            "word_id": int(p.word),
            "tokens": d.describe(p.word),
            "n_notes": int(len(idx)),
            "onset": (n.onset[idx] - n.onset[idx[0]]).round(4).tolist(),
            "interval": (n.pitch[idx].astype(int) - int(n.pitch[idx[0]])).tolist(),
            "duration": n.duration[idx].round(4).tolist(),
            "count": len(p.occurrences),
            "prob": float(np.exp(d.logp[p.word])),
            "bits": float(-d.logp[p.word] / LN2),
            "bits_saved": float(p.bits_saved),
        })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("word_id", pa.int64()), ("tokens", pa.string()), ("n_notes", pa.int64()), ("onset", pa.list_(pa.float64())),
        ("interval", pa.list_(pa.int64())), ("duration", pa.list_(pa.float64())), ("count", pa.int64()),
        ("prob", pa.float64()), ("bits", pa.float64()), ("bits_saved", pa.float64()),
    ]))


def occurrences_table(result: DiscoverResult) -> Any:
    """Every occurrence of every reported word (with the notes its extension added)."""
    import pyarrow as pa  # noqa: PLC0415

    rows = []
    for p in result.patterns:
        for piece, idx in p.occurrences:
            n = result.pieces[piece]
            rows.append({
                "piece_id": n.piece_id, "word_id": int(p.word), "notes": idx.tolist(),
                "start": float(n.onset[idx].min()), "end": float((n.onset[idx] + n.duration[idx]).max()),
                "pitch_lo": int(n.pitch[idx].min()), "pitch_hi": int(n.pitch[idx].max()),
            })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("piece_id", pa.string()), ("word_id", pa.int64()), ("notes", pa.list_(pa.int64())), ("start", pa.float64()),
        ("end", pa.float64()), ("pitch_lo", pa.int64()), ("pitch_hi", pa.int64()),
    ]))


def piece_table(result: DiscoverResult) -> Any:
    """Per piece: notes, bits under the base token model, bits with the dictionary, compression ratio."""
    import pyarrow as pa  # noqa: PLC0415

    d, ts = result.dictionary, result.tokens
    lattice = build_lattice(ts.tokens, d.words, d.n_literals)
    path, _ = viterbi(lattice, d.logp)
    piece_of_edge = ts.piece[lattice.start[path]]
    bits = np.bincount(piece_of_edge, weights=-d.logp[lattice.word[path]] / LN2, minlength=len(result.pieces))
    real = ts.tokens >= 0
    base = np.bincount(ts.piece[real], weights=d.base_bits[ts.tokens[real]], minlength=len(result.pieces))
    tokens_per_piece = np.bincount(ts.piece[real], minlength=len(result.pieces))
    share = d.dict_bits * tokens_per_piece / max(1, tokens_per_piece.sum())  # the shared dictionary, by size
    rows = []
    for i, n in enumerate(result.pieces):
        total = float(bits[i] + share[i])
        rows.append({
            "piece_id": n.piece_id, "n_notes": len(n), "base_bits": float(base[i]), "data_bits": float(bits[i]),
            "dictionary_bits": float(share[i]), "bits": total, "compression_ratio": float(base[i] / total) if total > 0 else None,
        })
    return pa.Table.from_pylist(rows)


def words_midi(result: DiscoverResult, piece: int = 0) -> bytes:
    """The piece as MIDI, one track per reported word (most saving first), the other notes last."""
    n = result.pieces[piece]
    owner = np.full(len(n), -1)
    for rank in range(len(result.patterns) - 1, -1, -1):  # the most saving word is written last and wins
        for p_index, idx in result.patterns[rank].occurrences:
            if p_index == piece:
                owner[idx] = rank
    names = tuple(f"word {result.patterns[r].word}" for r in range(len(result.patterns))) + ("other notes",)
    voice = np.where(owner >= 0, owner, len(result.patterns))
    used = np.unique(voice)
    remap = np.searchsorted(used, voice)
    tracks = Notes.from_arrays(
        n.piece_id, onset=n.onset, pitch=n.pitch, duration=n.duration, voice=remap, velocity=n.velocity,
        tempo_bpm=n.tempo_bpm, voice_names=tuple(names[u] for u in used), title=n.title,
    )
    return notes_to_midi_bytes(playable_notes(tracks))


def _colours(k: int) -> Any:
    import matplotlib  # noqa: PLC0415

    return matplotlib.colormaps["tab20"](np.arange(k) % 20)


def plot_piano_roll(result: DiscoverResult, path: str, piece: int = 0, *, top: int = 12) -> None:
    """Piano roll of one piece: every note in grey, the occurrences of the top words in colour."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = result.pieces[piece]
    fig, ax = plt.subplots(figsize=(min(40, 4 + n.onset.max() / 8), 5), dpi=100)
    ax.barh(n.pitch, n.duration, left=n.onset, height=0.8, color="#cccccc", edgecolor="none")
    colours = _colours(top)
    for rank, p in enumerate(result.patterns[:top]):
        for p_index, idx in p.occurrences:
            if p_index != piece:
                continue
            ax.barh(n.pitch[idx], n.duration[idx], left=n.onset[idx], height=0.8, color=colours[rank], edgecolor="none")
            ax.add_patch(matplotlib.patches.Rectangle(
                (n.onset[idx].min(), n.pitch[idx].min() - 0.5), np.ptp(n.onset[idx] + n.duration[idx]) + 1e-3,
                np.ptp(n.pitch[idx]) + 1, fill=False, edgecolor=colours[rank], linewidth=1,
            ))
        ax.plot([], [], color=colours[rank], linewidth=6, label=f"word {p.word}: {len(p.occurrences)}x, {p.bits_saved:.0f} bits")
    ax.set_xlabel("time (beats)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"{n.title or n.piece_id}: occurrences of the top {min(top, len(result.patterns))} words")
    if result.patterns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_words(result: DiscoverResult, path: str, *, top: int = 12) -> None:
    """The top words as small piano rolls (their first occurrence, relative to its first note)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    shown = result.patterns[:top]
    cols = 4
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), dpi=100, squeeze=False)
    colours = _colours(top)
    for ax in axes.flat:
        ax.axis("off")
    for rank, (ax, p) in enumerate(zip(axes.flat, shown, strict=False)):
        piece, idx = p.occurrences[0]
        n = result.pieces[piece]
        ax.axis("on")
        ax.barh(n.pitch[idx] - n.pitch[idx[0]], n.duration[idx], left=n.onset[idx] - n.onset[idx[0]], height=0.8,
                color=colours[rank])
        ax.set_title(f"word {p.word}: {len(idx)} notes, {len(p.occurrences)}x", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle("top words (pitch relative to the first note, time in beats)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
