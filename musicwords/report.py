"""What discovery produces, as tables, MIDI and pictures.

- :func:`dictionary_table`: one row per reported word: ``word_id``, its ``pattern`` (relative
  onset in beats, pitch interval from the first note, duration per note, from its first
  occurrence; with its MIDI pitches, their written names, and the key signature, measure length
  and beat it stands in), its spelling in tokens, ``count`` (occurrences, varied statements included),
  ``variants`` (how many of them are varied statements), ``prob``, ``bits`` (−log2 prob),
  ``bits_saved``, its ``level`` (motif, phrase, section) and ``parts`` (the words it is spelled in);
- :func:`word_tree`: the reported words as a grammar, one line a word, e.g.
  ``section w41 = phrase w17 + phrase w22`` and ``phrase w17 = motif w3 + 2 notes + motif w5``;
- :func:`occurrences_table`: one row per occurrence: ``piece_id``, ``word_id``, note indices,
  ``start``/``end`` (beats), ``pitch_lo``/``pitch_hi``, ``variant`` (``exact``, or the kind of
  a varied statement: ``rhythm``, ``pitch``, ``insertion``, ``deletion``), and where the score has measures
  (MIDI, MusicXML, kern, music21's formats; not note CSVs) the ``bar`` and
  ``beat`` (crotchets from 1) its first note falls on;
- :func:`statements`: a word's statements side by side, each from its first note (the first
  exact one, then one of each kind of varied statement, then more): what the page draws aligned;
- :func:`piece_table`: per piece, its code length under the base token model and with the
  dictionary (its words' bits plus its share of the dictionary, by token count), and their
  ratio, the compression ratio;
- :func:`words_midi`: a piece written back to MIDI with each reported word on its own track (a
  note in several words goes to the word that saves most), the rest on a last track;
- :func:`plot_piano_roll` and :func:`plot_words`: PNGs (matplotlib, no display needed);
- for corpus reports: :func:`words_table` (every multi-token word of the dictionary, with the
  notes of its first occurrence), :func:`usage_table` (occurrences per piece and word),
  :func:`note_coverage` (share of each piece's notes inside occurrences of given words),
  :func:`pattern_midi` (one word as a MIDI file), :func:`pattern_musicxml` (one word as a
  MusicXML score; :func:`word_midi` and :func:`word_musicxml` write a table row's word at its
  pitch and, in MusicXML, as the score spells it), :func:`plot_history` (code length per round)
  and :func:`plot_piece` (the picture of :func:`plot_piano_roll` drawn with collections: seconds,
  not minutes, for a movement of 15,000 notes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from musicwords.discover import DiscoverResult
from musicwords.lattice import build_lattice, viterbi
from musicwords.midi import notes_to_midi_bytes, playable_notes
from musicwords.notes import Notes
from musicwords.reconstruct import Occurrence, Pattern
from musicwords.spelling import diatonic_pitch, key_fifths, pitch_names

__all__ = [
    "dictionary_table", "note_coverage", "occurrences_table", "pattern_midi", "pattern_musicxml", "piece_table", "plot_history",
    "plot_piano_roll", "plot_piece", "plot_words", "statements", "usage_table", "word_midi", "word_musicxml", "word_tree",
    "words_midi", "words_table",
]

LN2 = float(np.log(2.0))


def dictionary_table(result: DiscoverResult, *, motifs: bool = False) -> Any:
    """The reported words as a pyarrow Table (see the module docstring); those of the motif layer with ``motifs``."""
    import pyarrow as pa  # noqa: PLC0415

    d = result.motif_words if motifs else result.dictionary
    spelled = _spelled(result)
    rows = []
    for p in result.motifs if motifs else result.patterns:
        piece, idx = p.occurrences[0]
        rows.append({
            "word_id": int(p.word),
            "tokens": d.describe(p.word),
            "n_notes": int(len(idx)),
            **_shape(result.pieces[piece], idx, spelled(piece)),
            "count": len(p.occurrences),
            "variants": len(p.variants),
            "prob": float(np.exp(d.logp[p.word])),
            "bits": float(-d.logp[p.word] / LN2),
            "bits_saved": float(p.bits_saved),
            "level": p.level,
            "parts": list(p.parts),
        })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("word_id", pa.int64()), ("tokens", pa.string()), ("n_notes", pa.int64()), *_shape_fields(), ("count", pa.int64()),
        ("variants", pa.int64()), ("prob", pa.float64()), ("bits", pa.float64()), ("bits_saved", pa.float64()),
        ("level", pa.string()), ("parts", pa.list_(pa.int64())),
    ]))


# a word's first statement: onsets from its first note (beats), pitch intervals from it
# (semitones), durations (beats), its MIDI pitches and their written names (``Eb4``)
_SHAPE = (("onset", "float64"), ("interval", "int64"), ("duration", "float64"), ("pitch", "int64"),
          ("spelling", "string"))
# where the first statement stands in its score: the key signature (sharps > 0, flats < 0; the
# score's at that place, else the one that writes the piece with the fewest accidentals), the
# length of a measure (crotchets) and the beat (from 1) of the first note, where it has measures
_PLACE = (("fifths", "int64"), ("bar_length", "float64"), ("beat", "float64"))


def _shape(n: Notes, idx: np.ndarray, spelled: tuple[np.ndarray, int | None]) -> dict[str, Any]:
    """The ``_SHAPE`` and ``_PLACE`` columns of the statement of ``n`` at note indices ``idx``;
    ``spelled``: the morphetic pitch of every note of ``n`` and its key signature (:func:`_spelled`)."""
    morph, fifths = spelled
    t0 = float(n.onset[idx[0]])
    where = n.bar_beat(t0)
    return {"onset": (n.onset[idx] - t0).round(4).tolist(),
            "interval": (n.pitch[idx].astype(int) - int(n.pitch[idx[0]])).tolist(),
            "duration": n.duration[idx].round(4).tolist(), "pitch": n.pitch[idx].astype(int).tolist(),
            "spelling": pitch_names(n, idx, morph=morph), "fifths": fifths if n.keys is None else n.fifths_at(t0),
            "bar_length": n.bar_length(t0), "beat": where[1] if where else None}


def _spelled(result: DiscoverResult) -> Callable[[int], tuple[np.ndarray, int | None]]:
    """Piece index → the morphetic pitch of its notes (by its key where the input does not spell
    them) and, where the score writes no key signature, the one that writes them with the fewest
    accidentals; each piece spelled once."""
    def spell(piece: int) -> tuple[np.ndarray, int | None]:
        n = result.pieces[piece]
        morph = diatonic_pitch(n)
        return morph, key_fifths(n, morph=morph) if n.keys is None else None

    return functools.cache(spell)


def _shape_fields() -> list[tuple[str, Any]]:
    import pyarrow as pa  # noqa: PLC0415

    return ([(name, pa.list_(pa.type_for_alias(kind))) for name, kind in _SHAPE]
            + [(name, pa.type_for_alias(kind)) for name, kind in _PLACE])


def word_tree(result: DiscoverResult) -> list[str]:
    """The reported words spelled in words, top level first: ``"section w41 = phrase w17 + phrase w22"``.

    A part that is not itself reported is shown with its own level; the notes a word spells in
    literals between its parts are shown as ``k notes``.
    """
    from musicwords.reconstruct import LEVELS, level_of  # noqa: PLC0415

    d = result.dictionary
    heights: dict[int, int] = {}
    lines = []
    for p in sorted(result.patterns, key=lambda p: (-LEVELS.index(p.level), -p.bits_saved)):
        spelled, loose = [], 0
        for _, part in d.spelling(p.word):
            if part < d.n_literals:
                loose += 1
                continue
            if loose:
                spelled.append(f"{loose} note{'s' if loose > 1 else ''}")
                loose = 0
            spelled.append(f"{level_of(d, part, heights)} w{part}")
        if loose:
            spelled.append(f"{loose} note{'s' if loose > 1 else ''}")
        lines.append(f"{p.level} w{p.word} = " + " + ".join(spelled))
    return lines


def occurrences_table(result: DiscoverResult) -> Any:
    """Every occurrence of every reported word (with the notes its extension added)."""
    import pyarrow as pa  # noqa: PLC0415

    rows = []
    for p in result.patterns:
        kinds = ["exact"] * (len(p.occurrences) - len(p.variants)) + list(p.variants)
        for (piece, idx), kind in zip(p.occurrences, kinds, strict=True):
            n = result.pieces[piece]
            where = n.bar_beat(float(n.onset[idx].min()))
            rows.append({
                "piece_id": n.piece_id, "word_id": int(p.word), "notes": idx.tolist(),
                "start": float(n.onset[idx].min()), "end": float((n.onset[idx] + n.duration[idx]).max()),
                "pitch_lo": int(n.pitch[idx].min()), "pitch_hi": int(n.pitch[idx].max()),
                "bar": where[0] if where else None, "beat": where[1] if where else None, "variant": kind,
            })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("piece_id", pa.string()), ("word_id", pa.int64()), ("notes", pa.list_(pa.int64())), ("start", pa.float64()),
        ("end", pa.float64()), ("pitch_lo", pa.int64()), ("pitch_hi", pa.int64()), ("bar", pa.int64()),
        ("beat", pa.float64()), ("variant", pa.string()),
    ]))


def statements(result: DiscoverResult, pattern: Pattern, *, limit: int = 8) -> list[dict[str, Any]]:
    """Up to ``limit`` statements of ``pattern`` (one of ``result.patterns`` or ``result.motifs``),
    each from its own first note: ``kind`` (``exact`` or the kind of varied statement), ``piece_id``,
    ``bar`` and ``beat`` where the score has measures, and ``onset``, ``interval`` (semitones
    from its first note: a transposed statement lines up with the others), ``duration`` and
    ``spelling`` (each note's written name, as in :func:`dictionary_table`). The
    first exact statement comes first, then the first of each kind of varied statement, then the
    others in order, so that a few rows show how the word is varied."""
    kinds = ["exact"] * (len(pattern.occurrences) - len(pattern.variants)) + list(pattern.variants)
    first_of_kind = {kind: i for i, kind in reversed(list(enumerate(kinds)))}
    chosen = sorted(first_of_kind.values(), key=lambda i: (kinds[i] != "exact", i))
    chosen += [i for i in range(len(kinds)) if i not in first_of_kind.values()]
    spelled = _spelled(result)
    rows = []
    for i in chosen[:limit]:
        piece, idx = pattern.occurrences[i]
        n = result.pieces[piece]
        idx = idx[np.argsort(n.onset[idx], kind="stable")]
        where = n.bar_beat(float(n.onset[idx[0]]))
        shape = _shape(n, idx, spelled(piece))
        rows.append({"kind": kinds[i], "piece_id": n.piece_id, "bar": where[0] if where else None,
                     "beat": where[1] if where else None,
                     **{k: shape[k] for k in ("onset", "interval", "duration", "spelling")}})
    return rows


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


def words_table(result: DiscoverResult) -> Any:
    """Every multi-token word of the dictionary: ``word_id``, ``tokens``, ``n_notes``, the ``onset``
    (beats), ``interval`` (semitones) and ``duration`` (beats) of its first occurrence in the
    best segmentation (empty when it is not used there), ``count`` (occurrences there, parts of
    longer words included), ``expected_count`` (EM), ``prob`` and ``bits``."""
    import pyarrow as pa  # noqa: PLC0415

    d = result.dictionary
    first: dict[int, Occurrence] = {}
    count: dict[int, int] = {}
    for o in result.occurrences:
        count[o.word] = count.get(o.word, 0) + 1
        first.setdefault(o.word, o)
    spelled = _spelled(result)
    rows = []
    for w in range(d.n_literals, len(d.words)):
        occ = first.get(w)
        shape = ({name: [] for name, _ in _SHAPE} | {name: None for name, _ in _PLACE} if occ is None
                 else _shape(result.pieces[occ.piece], occ.notes, spelled(occ.piece)))
        rows.append({
            "word_id": w, "tokens": d.describe(w), "n_notes": len(d.words[w]) + 1, **shape,
            "count": count.get(w, 0), "expected_count": float(d.counts[w]),
            "prob": float(np.exp(d.logp[w])), "bits": float(-d.logp[w] / LN2),
        })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("word_id", pa.int64()), ("tokens", pa.string()), ("n_notes", pa.int64()), *_shape_fields(), ("count", pa.int64()),
        ("expected_count", pa.float64()), ("prob", pa.float64()), ("bits", pa.float64()),
    ]))


def usage_table(result: DiscoverResult) -> Any:
    """Occurrences of every multi-token word per piece (best segmentation, parts of longer words
    included): ``piece_id``, ``word_id``, ``count``."""
    import pyarrow as pa  # noqa: PLC0415

    counts: dict[tuple[int, int], int] = {}
    for occ in result.occurrences:
        counts[(occ.piece, occ.word)] = counts.get((occ.piece, occ.word), 0) + 1
    rows = [{"piece_id": result.pieces[p].piece_id, "word_id": w, "count": c} for (p, w), c in sorted(counts.items())]
    schema = pa.schema([("piece_id", pa.string()), ("word_id", pa.int64()), ("count", pa.int64())])
    return pa.Table.from_pylist(rows, schema=schema)


def note_coverage(result: DiscoverResult, words: list[int] | None = None) -> np.ndarray:
    """(n_pieces,) share of each piece's notes inside an occurrence of a reported pattern (of
    ``words`` only, when given)."""
    keep = None if words is None else set(words)
    covered = [np.zeros(len(n), dtype=bool) for n in result.pieces]
    for p in result.patterns:
        if keep is not None and p.word not in keep:
            continue
        for piece, idx in p.occurrences:
            covered[piece][idx] = True
    return np.array([c.mean() if len(c) else 0.0 for c in covered])


def pattern_midi(onset: Any, interval: Any, duration: Any, *, base_pitch: int = 60, tempo_bpm: float = 100.0,
                 name: str = "word") -> bytes:
    """One word as a Standard MIDI File: its notes (onsets and durations in beats, pitches in
    semitones from the first note) on one track, the first note at ``base_pitch``."""
    pitch = base_pitch + np.asarray(interval, dtype=int)
    notes = Notes.from_arrays(name, onset=np.asarray(onset, dtype=float), pitch=np.clip(pitch, 0, 127),
                              duration=np.maximum(np.asarray(duration, dtype=float), 1e-3), tempo_bpm=tempo_bpm,
                              voice_names=(name,), title=name)
    return notes_to_midi_bytes(playable_notes(notes))


def pattern_musicxml(onset: Any, interval: Any, duration: Any, *, base_pitch: int = 60, name: str = "word",
                     spelling: Sequence[str] | None = None, fifths: int | None = None, bar_length: float | None = None,
                     beat: float | None = None) -> bytes:
    """One word as a MusicXML score that notation software opens (MuseScore, Finale, Sibelius,
    music21): its notes as in :func:`pattern_midi`, times rounded to 1/24 beat (demisemiquavers
    and triplets: the nearest fraction with a denominator up to 12 made quintuplets, which the
    MusicXML export refuses), notes that start and end together written as one chord, on the
    clef that suits them. ``spelling``, a name per note (``Eb4``, as in the ``spelling`` column
    of :func:`dictionary_table`), writes each note as the score does (an E flat, not a D sharp);
    a name that does not sound the note's pitch is an error. Without it, music21 names each pitch
    class one way whatever the key (C#, E-flat, F#, G#, B-flat).

    Where the word stands in its score, as the table's ``fifths``, ``bar_length`` and ``beat``
    give it: ``fifths`` writes the key signature (sharps > 0, flats < 0); ``bar_length`` (a
    measure, in crotchets) the time signature, as crotchets (3 -> 3/4), else quavers (1.5 ->
    3/8) or semiquavers: a compound metre comes out as its length (6/8 as 3/4); and ``beat``
    (from 1) puts the first note there in its measure, after a hidden rest, so an upbeat is
    written as one. Without a measure length, 4/4 from the first beat.

    Examples
    --------
    >>> xml = pattern_musicxml([0, 0.5, 1, 1], [0, 3, 7, 12], [0.5, 0.5, 1, 1], name="w7",
    ...                        spelling=["C4", "Eb4", "G4", "C5"], fifths=-3, bar_length=3, beat=3)
    >>> xml.startswith(b"<?xml") and b"<score-partwise" in xml and b"<alter>-1</alter>" in xml
    True
    >>> b"<fifths>-3</fifths>" in xml and b"<beats>3</beats>" in xml and b"<rest" in xml  # C minor, 3/4, an upbeat
    True
    >>> b"<accidental" in xml  # E flat is in the key signature: no accidental written
    False
    """
    from fractions import Fraction  # noqa: PLC0415

    import music21 as m21  # noqa: PLC0415
    from music21.musicxml.m21ToXml import GeneralObjectExporter  # noqa: PLC0415

    onsets = np.asarray(onset, dtype=float)
    pitches = np.clip(base_pitch + np.asarray(interval, dtype=int), 0, 127)
    durations = np.maximum(np.asarray(duration, dtype=float), 1 / 12)
    if not len(onsets) == len(pitches) == len(durations):
        raise ValueError("onset, interval and duration must have one length")
    if spelling is None:
        written = [m21.pitch.Pitch(midi=int(p)) for p in pitches]
    elif len(spelling) != len(pitches):
        raise ValueError(f"spelling: {len(spelling)} names for {len(pitches)} notes")
    else:
        written = [m21.pitch.Pitch(n[:1] + n[1:].replace("b", "-")) for n in spelling]  # music21 writes a flat "-"
    grid = lambda x: Fraction(round(float(x) * 24), 24)  # noqa: E731
    meter = _time_signature(bar_length)
    start = grid(beat - 1) if meter and beat is not None and 0 <= beat - 1 < bar_length else Fraction(0)  # type: ignore[operator]
    chords: dict[tuple[Fraction, Fraction], list[Any]] = {}
    for t, p, d, w in zip(onsets - (onsets.min() if len(onsets) else 0.0), pitches.tolist(), durations, written, strict=True):
        if w.midi != p:
            raise ValueError(f"spelling: {w.nameWithOctave} does not sound MIDI pitch {p}")
        chords.setdefault((start + grid(t), max(grid(d), Fraction(1, 12))), []).append(w)
    part = m21.stream.Part()
    part.partName = name
    for (t, d), ps in sorted(chords.items()):
        element = m21.note.Note(ps[0]) if len(ps) == 1 else m21.chord.Chord(sorted(ps, key=lambda w: w.midi))
        element.quarterLength = d
        part.insert(t, element)
    part.insert(0, m21.clef.bestClef(part))
    if fifths is not None:
        part.insert(0, m21.key.KeySignature(int(fifths)))
    part.insert(0, m21.meter.TimeSignature(meter or "4/4"))
    score = m21.stream.Score([part])
    score.metadata = m21.metadata.Metadata(title=name)
    return bytes(GeneralObjectExporter(score).parse())


def _time_signature(bar_length: float | None) -> str | None:
    """A measure of ``bar_length`` crotchets as a time signature (3 -> ``3/4``, 1.5 -> ``3/8``);
    ``None`` for none, or a length no signature up to semiquavers writes."""
    if bar_length is None or not np.isfinite(bar_length) or bar_length <= 0:
        return None
    for unit in (4, 8, 16):
        beats = bar_length * unit / 4
        if abs(beats - round(beats)) < 1e-6:
            return f"{round(beats)}/{unit}"
    return None


def word_midi(row: dict[str, Any], name: str) -> bytes:
    """A row of :func:`dictionary_table` or :func:`words_table` as :func:`pattern_midi`, at the
    pitch of the word's first statement (rows written before the ``pitch`` column: from middle C)."""
    return pattern_midi(row["onset"], row["interval"], row["duration"], base_pitch=_first_pitch(row), name=name)


def word_musicxml(row: dict[str, Any], name: str) -> bytes:
    """A row of :func:`dictionary_table` or :func:`words_table` as :func:`pattern_musicxml`: the
    word's first statement at its pitch, as the score spells it, in its key signature and metre
    (rows written before those columns: from middle C, spelled by music21, in 4/4)."""
    return pattern_musicxml(row["onset"], row["interval"], row["duration"], base_pitch=_first_pitch(row), name=name,
                            spelling=row.get("spelling") or None, fifths=row.get("fifths"),
                            bar_length=row.get("bar_length"), beat=row.get("beat"))


def _first_pitch(row: dict[str, Any]) -> int:
    return int(row["pitch"][0]) if row.get("pitch") else 60


def plot_history(rounds: list[dict[str, float]], path: str, *, title: str = "") -> None:
    """Code length (bits) of every EM round tried, accepted rounds joined by a line."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    acc = [(r["round"], r["bits"]) for r in rounds if r.get("accepted", 1.0) > 0]
    rej = [(r["round"], r["bits"]) for r in rounds if r.get("accepted", 1.0) == 0]
    if acc:
        ax.plot(*zip(*acc, strict=True), "o-", color="#4477aa", label="accepted")
    if rej:
        ax.plot(*zip(*rej, strict=True), "x", color="#cc6677", label="rejected")
    ax.set_xlabel("round")
    ax.set_ylabel("code length (bits)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_piece(result: DiscoverResult, path: str, piece: int = 0, *, top: int = 12) -> None:
    """Piano roll of one piece: every note in grey, the occurrences of the top words in colour,
    each occurrence boxed (as :func:`plot_piano_roll`, drawn as a few collections)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.collections import PolyCollection  # noqa: PLC0415

    def boxes(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
        return np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)

    n = result.pieces[piece]
    fig, ax = plt.subplots(figsize=(min(40, 4 + float(n.onset.max()) / 8), 5), dpi=100)
    notes = boxes(n.onset, n.onset + n.duration, n.pitch - 0.4, n.pitch + 0.4)
    ax.add_collection(PolyCollection(list(notes), facecolors="#cccccc", edgecolors="none"))
    colours = _colours(top)
    for rank, p in enumerate(result.patterns[:top]):
        idx_list = [idx for p_index, idx in p.occurrences if p_index == piece]
        if idx_list:
            idx = np.concatenate(idx_list)
            ax.add_collection(PolyCollection(list(notes[idx]), facecolors=[colours[rank]], edgecolors="none"))
            lo = np.array([n.onset[i].min() for i in idx_list])
            hi = np.array([(n.onset[i] + n.duration[i]).max() for i in idx_list])
            p_lo = np.array([n.pitch[i].min() - 0.5 for i in idx_list])
            p_hi = np.array([n.pitch[i].max() + 0.5 for i in idx_list])
            ax.add_collection(PolyCollection(list(boxes(lo, hi, p_lo, p_hi)), facecolors="none", edgecolors=[colours[rank]],
                                             linewidths=1))
        ax.plot([], [], color=colours[rank], linewidth=6, label=f"word {p.word}: {len(p.occurrences)}x, {p.bits_saved:.0f} bits")
    ax.set_xlim(float(n.onset.min()) - 0.5, float((n.onset + n.duration).max()) + 0.5)
    ax.set_ylim(float(n.pitch.min()) - 1.5, float(n.pitch.max()) + 1.5)
    ax.set_xlabel("time (beats)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"{n.title or n.piece_id}: occurrences of the top {min(top, len(result.patterns))} words")
    if result.patterns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
