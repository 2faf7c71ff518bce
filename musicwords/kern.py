"""A fast, direct reader for Humdrum ``**kern`` scores: the plain kind, straight into Notes.

music21's Humdrum parser builds a full object tree; this reader reads the same notes 44 times
faster (1,318 corpus files: 40 ms a file against 1.76 s, the same process, a loaded machine:
``benchmarks/compare_readers.py``). It gives what
:func:`musicwords.io.read_score` gets from music21 (``benchmarks/compare_readers.py`` checks it
over the whole music21 corpus, ``tests/test_fast_readers.py`` on a few files): one voice per
``**kern`` spine, right to left as music21 orders them; onsets in quarter-note beats, summed per
spine (exact fractions, so triplets give music21's floats); chords; ties (``[`` ``_`` ``]``)
merged; rests skipped; no repeat expansion (music21 does none for kern either); the tempo of the
first ``*MM``, the title of ``!!!OTL``, part names from ``*I`` instrument codes (music21's table);
measures from the barlines (``=``), numbered as the score numbers them, a pickup before the
first barline included (music21 gives the same measure starts, but numbers a kern file's first
measure 1 whatever its barline says: read through music21, :func:`musicwords.corpus.score_to_notes`
takes one less than the second measure's number); key signatures from ``*k[...]``.

It raises :class:`Unsupported` (and :func:`~musicwords.io.read_score` then uses music21) for
anything it does not handle exactly: spine splits, joins, exchanges and additions (``*^ *v *x
*+``); spines other than ``**kern`` (``**dynam``, ``**text``, ...); grace notes (``q Q``);
rational rhythms (``%``); chords whose notes differ in length or mix rests; textual tempos;
any character in a note token outside the small set below; lines whose field count differs.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from musicwords.notes import Notes, NotesError, score_keys
from musicwords.spelling import morphetic

__all__ = ["Unsupported", "read_kern"]


class Unsupported(Exception):
    """The fast reader does not handle this file exactly; music21 reads it instead."""


# one note or rest: recip (digits, dots), pitch letters or r, accidentals, ties; then only
# beams, stems, slurs, phrases, fermatas and articulations that do not change a note's notes
_TOKEN = re.compile(r"^([\[(&{]*)(\d+)(\.*)([a-gA-G]+|r)(#{1,3}|-{1,3}|n)?([\[\]_]*)[LJKk/\\;'(){}\]_\[]*$")
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_SPINE_OPS = frozenset({"*^", "*v", "*x", "*+"})


def _duration(recip: str, dots: str) -> Fraction:
    if recip.strip("0") == "":  # 0 breve, 00 long, 000 maxima
        base = Fraction(8 * 2 ** (len(recip) - 1))
    else:
        if recip.startswith("0"):
            raise Unsupported(f"recip {recip!r}")
        base = Fraction(4, int(recip))
    total, add = base, base
    for _ in dots:
        add /= 2
        total += add
    return total


def _pitch(letters: str, accidental: str | None) -> tuple[int, int]:
    """MIDI pitch and morphetic pitch (the note's spelling: middle C = 60, one per staff position)."""
    if len(set(letters)) != 1:
        raise Unsupported(f"pitch {letters!r}")
    letter = letters[0]
    if letter.islower():
        octave = 4 + len(letters) - 1
    else:
        octave = 3 - (len(letters) - 1)
    alter = 0
    if accidental:
        alter = 0 if accidental == "n" else (len(accidental) if accidental[0] == "#" else -len(accidental))
    return 12 * (octave + 1) + _PITCH_CLASS[letter.lower()] + alter, morphetic(octave, letter)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_kern(raw: bytes, *, source: str, piece_id: str, max_notes: int) -> Notes:
    """Notes of a plain ``**kern`` file (see the module docstring); :class:`Unsupported` otherwise."""
    lines = _text(raw).splitlines()
    title = ""
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("!!")):
        m = re.match(r"^!!!OTL:\s*(.*)$", lines[i])
        if m and not title:
            title = m.group(1).strip()
        i += 1
    if i == len(lines):
        raise NotesError(f"{source}: no Humdrum spines (no **kern line)")
    kinds = lines[i].split("\t")
    if not all(k.startswith("**") for k in kinds):
        raise Unsupported("the first data line is not an exclusive interpretation")
    if any(k != "**kern" for k in kinds):
        raise Unsupported("spines other than **kern")
    n = len(kinds)
    offset = [Fraction(0)] * n
    instrument: list[str | None] = [None] * n
    tempo: list[float | None] = [None] * n
    onsets: list[list[Fraction]] = [[] for _ in range(n)]
    lengths: list[list[Fraction]] = [[] for _ in range(n)]
    pitches: list[list[int]] = [[] for _ in range(n)]
    morphs: list[list[int]] = [[] for _ in range(n)]  # their spelling
    ties: list[list[str | None]] = [[] for _ in range(n)]
    barlines: list[tuple[Fraction, int | None]] = []  # where each barline falls, and its number if it has one
    keys: list[list[tuple[float, int]]] = [[] for _ in range(n)]  # each spine's key signatures (*k[...])
    count = 0
    ended = False
    for line in lines[i + 1:]:
        if not line.strip():
            continue
        if line.startswith("!!"):
            m = re.match(r"^!!!OTL:\s*(.*)$", line)
            if m and not title:
                title = m.group(1).strip()
            continue
        if ended:
            raise Unsupported("data after the spines end")
        fields = line.split("\t")
        if len(fields) != n:
            raise Unsupported(f"a line with {len(fields)} fields in {n} spines")
        head = fields[0][:1]
        if head == "*":
            if any(f in _SPINE_OPS or f.startswith("**") for f in fields):
                raise Unsupported("spine operations")
            terminators = sum(f == "*-" for f in fields)
            if terminators:
                if terminators != n:
                    raise Unsupported("some spines end before others")
                ended = True
                continue
            for s, f in enumerate(fields):
                if f.startswith("*MM"):
                    try:
                        bpm = float(f[3:])
                    except ValueError:
                        raise Unsupported("a textual tempo") from None
                    if tempo[s] is None:
                        tempo[s] = bpm
                elif f.startswith("*I") and not f.startswith(("*IC", "*IG", "*ITr")) and instrument[s] is None:
                    instrument[s] = f[2:]
                elif f.startswith("*k[") and f.endswith("]") and abs(fifths := f.count("#") - f.count("-")) <= 7:
                    keys[s].append((float(offset[s]), fifths))
            continue
        if head in ("!", "="):
            if any(f[:1] != head for f in fields):
                raise Unsupported("a line mixing comments, barlines and data")
            if head == "=":
                number = re.match(r"^=+(\d+)", fields[0])
                barlines.append((max(offset), int(number.group(1)) if number else None))
            continue
        for s, f in enumerate(fields):
            if f == "." or not f:
                continue
            if f[0] in "*!=":
                raise Unsupported("a line mixing interpretations, comments or barlines and data")
            length: Fraction | None = None
            chord: list[tuple[tuple[int, int], str | None]] = []
            rest = False
            for sub in f.split(" "):
                m = _TOKEN.match(sub)
                if m is None:
                    raise Unsupported(f"note token {sub!r}")
                d = _duration(m.group(2), m.group(3))
                if length is not None and d != length:
                    raise Unsupported("a chord of notes of different lengths")
                length = d
                tie_marks = m.group(1) + m.group(6) + sub[m.end(6):]
                kind = "start" if "[" in tie_marks else "stop" if "]" in tie_marks else "continue" if "_" in tie_marks else None
                if m.group(4) == "r":
                    rest = True
                    continue
                chord.append((_pitch(m.group(4), m.group(5)), kind))
            if rest and chord:
                raise Unsupported("a chord with a rest")
            assert length is not None
            for (midi, morph), kind in chord:
                onsets[s].append(offset[s])
                lengths[s].append(length)
                pitches[s].append(midi)
                morphs[s].append(morph)
                ties[s].append(kind)
                count += 1
            if count > max_notes:
                raise NotesError(f"{source}: more than {max_notes} notes")
            offset[s] += length
    bars, first_bar = _measures(barlines, max(offset))
    return _assemble(onsets, lengths, pitches, morphs, ties, instrument, tempo, title, bars, first_bar, keys, source=source,
                     piece_id=piece_id)


def _measures(barlines: list[tuple[Fraction, int | None]], end: Fraction) -> tuple[list[float] | None, int]:
    """Where the measures start (beats) and the number of the first: a measure starts at each
    barline before the end, and at the start where notes come before the first barline (a pickup,
    numbered one less than that barline). Without barlines: no measures.

    >>> _measures([(Fraction(1), 1), (Fraction(5), 2), (Fraction(9), None)], Fraction(9))
    ([0.0, 1.0, 5.0], 0)
    >>> _measures([(Fraction(0), 129), (Fraction(8), 130)], Fraction(16))
    ([0.0, 8.0], 129)
    """
    starts = [(at, number) for at, number in barlines if at < end]
    if not starts:
        return None, 1
    first = starts[0][1]
    if starts[0][0] > 0:  # notes before the first barline: a pickup measure
        return [0.0] + [float(at) for at, _ in starts], (first - 1) if first is not None else 0
    return [float(at) for at, _ in starts], first if first is not None else 1


def _assemble(onsets: list[list[Fraction]], lengths: list[list[Fraction]], pitches: list[list[int]],
              morphs: list[list[int]], ties: list[list[str | None]], instrument: list[str | None],
              tempo: list[float | None], title: str, bars: list[float] | None, first_bar: int,
              keys: list[list[tuple[float, int]]], *, source: str, piece_id: str) -> Notes:
    from musicwords.ties import merge_ties  # noqa: PLC0415

    names = _part_names(instrument)
    order = list(range(len(onsets)))[::-1]  # music21 lists the spines right to left
    out_on: list[float] = []
    out_len: list[float] = []
    out_pitch: list[int] = []
    out_voice: list[int] = []
    out_morph: list[int] = []
    for v, s in enumerate(order):
        merge_ties(v, [float(x) for x in onsets[s]], [float(x) for x in lengths[s]], pitches[s], ties[s],
                   out_on, out_len, out_pitch, out_voice, morphs[s], out_morph)
    if not out_on:
        raise NotesError(f"{piece_id}: {source} holds no pitched notes")
    bpm = next((t for t in (tempo[s] for s in order) if t is not None), None)
    try:
        return Notes.from_arrays(
            piece_id, onset=out_on, pitch=out_pitch, duration=out_len, voice=out_voice, tempo_bpm=bpm if bpm else 100.0,
            voice_names=tuple(names[s] for s in order), title=title or piece_id, morph=out_morph, bars=bars,
            first_bar=first_bar, keys=score_keys([keys[s] for s in order]),
        )
    except NotesError as e:
        raise NotesError(f"{source}: {e}") from e


def _part_names(instrument: list[str | None]) -> list[str]:
    """music21's part names: the instrument's name, else a number counted over the spines
    without a known instrument, left to right (``SpineCollection.assignIds``)."""
    from music21.humdrum import instruments  # noqa: PLC0415

    names: list[str] = []
    unnamed = 0
    for code in instrument:
        obj: Any = None
        if code is not None:
            try:
                obj = instruments.fromHumdrumInstrument(code)
            except instruments.HumdrumInstrumentException:
                obj = None
        name = (obj.partName or obj.instrumentName) if obj is not None else None
        if name is None:
            unnamed += 1
            name = str(unnamed)
        names.append(str(name))
    return names
