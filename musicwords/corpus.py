"""The symbolic corpus that ships inside ``music21``: listing pieces and reading their notes.

Five collections, each a *composer* group of the sample catalog:

========== ================================================ ==========
group      music21 corpus files                              pieces
========== ================================================ ==========
bach       ``bach/bwv*`` (four-part chorales)                ~410
palestrina ``palestrina/*.krn`` (mass movements)             ~1300
beethoven  ``beethoven/*`` (string quartets)                 ~20
mozart     ``mozart/k*`` (string quartets; not K. 545)       ~15
essen      ``essenFolksong/*.abc`` (every tune in each book) ~8000
========== ================================================ ==========

A :class:`PieceRef` names one piece (a file, and a tune number for abc books holding many).
:func:`list_pieces` is cheap (no parsing); :func:`load_notes` parses one piece with music21.

Examples
--------
>>> refs = list_pieces(["bach"], limit=2)
>>> [r.id for r in refs]  # doctest: +SKIP
['bach/bwv1.6', 'bach/bwv264']
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicwords.notes import Notes, NotesError, score_keys
from musicwords.spelling import morphetic
from musicwords.ties import merge_ties

__all__ = ["COMPOSERS", "PieceRef", "list_pieces", "load_notes"]

COMPOSERS = ("bach", "palestrina", "beethoven", "mozart", "essen")


@dataclass(frozen=True)
class PieceRef:
    """One piece of the music21 corpus."""

    composer: str
    path: str  # relative to the music21 corpus folder
    number: int | None = None  # tune number (X:) inside an abc book

    @property
    def name(self) -> str:
        """File-name-safe piece name, unique within its composer (``opus18no1_movement1``)."""
        stem = Path(self.path).with_suffix("").as_posix().split("/", 1)[1].replace("/", "_")
        return stem if self.number is None else f"{stem}_{self.number:04d}"

    @property
    def id(self) -> str:
        return f"{self.composer}/{self.name}"


def _corpus_root() -> Path:
    from music21 import corpus  # noqa: PLC0415  (music21 imports slowly; only where it is used)

    return Path(corpus.__file__).parent


def list_pieces(composers: list[str] | tuple[str, ...] = COMPOSERS, *, limit: int | None = None) -> list[PieceRef]:
    """Pieces of the named groups, in a stable order.

    Parameters
    ----------
    composers : sequence of str
        Groups from :data:`COMPOSERS`.
    limit : int, optional
        At most this many pieces per group, spread evenly over the group's sorted list (so a
        small sample still covers several works and books).
    """
    unknown = sorted(set(composers) - set(COMPOSERS))
    if unknown:
        raise ValueError(f"unknown composer group(s) {unknown}; choose from {list(COMPOSERS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    root = _corpus_root()
    refs: list[PieceRef] = []
    for composer in composers:
        group = _group(root, composer)
        if limit is not None and len(group) > limit:
            picks = np.unique(np.linspace(0, len(group) - 1, limit).round().astype(int))
            group = [group[i] for i in picks]
        refs.extend(group)
    return refs


def _group(root: Path, composer: str) -> list[PieceRef]:
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    if composer == "bach":
        return [PieceRef("bach", rel(p)) for p in sorted((root / "bach").glob("bwv*")) if p.suffix in (".mxl", ".xml", ".krn")]
    if composer == "palestrina":
        return [PieceRef("palestrina", rel(p)) for p in sorted((root / "palestrina").glob("*.krn"))]
    if composer in ("beethoven", "mozart"):
        files = sorted(p for p in (root / composer).rglob("*") if p.suffix in (".mxl", ".krn", ".xml"))
        if composer == "mozart":
            files = [p for p in files if "k545" not in p.as_posix()]  # a piano sonata, not a quartet
        by_stem: dict[str, Path] = {}
        for p in files:  # the same movement as .krn and .mxl: keep the MusicXML
            stem = p.with_suffix("").as_posix()
            if stem not in by_stem or p.suffix == ".mxl":
                by_stem[stem] = p
        return [PieceRef(composer, rel(p)) for p in sorted(by_stem.values())]
    refs = []
    for book in sorted((root / "essenFolksong").glob("*.abc")):
        text = book.read_text(encoding="latin-1")
        for number in sorted({int(x) for x in re.findall(r"^X:\s*(\d+)", text, flags=re.M)}):
            refs.append(PieceRef("essen", rel(book), number))
    return refs


def load_notes(ref: PieceRef) -> Notes:
    """Parse one corpus piece into :class:`~musicwords.notes.Notes` (one voice per part).

    Tied notes are merged, chords give one note per pitch, grace notes (no duration) and
    unpitched notes are left out. The tempo is the first metronome mark, else 100 BPM.

    Raises
    ------
    NotesError
        If the file cannot be parsed or holds no pitched notes.
    """
    from music21 import converter  # noqa: PLC0415

    path = _corpus_root() / ref.path
    try:
        with warnings.catch_warnings():  # music21 warns about every overfull bar it repairs
            warnings.filterwarnings("ignore", module=r"music21\..*")
            parsed = converter.parse(path, number=ref.number) if ref.number is not None else converter.parse(path)
    except Exception as e:  # music21 raises many exception types for malformed files
        raise NotesError(f"{ref.id}: music21 cannot parse {ref.path}: {e}") from e
    return score_to_notes(parsed, piece_id=ref.id, source=ref.path, default_title=ref.name)


def score_to_notes(parsed: Any, *, piece_id: str, source: str, default_title: str = "") -> Notes:
    """Notes of a parsed music21 Score (or the first tune of an Opus), one voice per part."""
    from music21 import tempo  # noqa: PLC0415

    score: Any = parsed
    if hasattr(score, "scores"):  # an Opus: a book of tunes
        if not score.scores:
            raise NotesError(f"{piece_id}: {source} holds no tune")
        score = score.scores[0]
    parts = list(score.parts) or [score]
    onsets: list[float] = []
    durations: list[float] = []
    pitches: list[int] = []
    voices: list[int] = []
    morphs: list[int] = []  # the notes' spelling
    names = []
    keys = []
    for v, part in enumerate(parts):
        names.append(part.partName or (part.id if isinstance(part.id, str) else "") or f"part{v}")
        _read_part(part, v, onsets, durations, pitches, voices, morphs)
        keys.append([(float(k.offset), int(k.sharps)) for k in part.flatten().getElementsByClass("KeySignature")
                     if k.sharps is not None and abs(k.sharps) <= 7])
    if not onsets:
        raise NotesError(f"{piece_id}: {source} holds no pitched notes")
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    bpm = float(marks[0].getQuarterBPM()) if marks and marks[0].getQuarterBPM() else 100.0
    title = (score.metadata.title if score.metadata and score.metadata.title else "") or default_title or piece_id
    measures = list(parts[0].getElementsByClass("Measure"))
    # the first measure's number, or one less than the second's where that is more: music21
    # numbers a kern file's first measure 1 whatever its barline says, and the second as written
    numbers = [m.number for m in measures[:2] if isinstance(m.number, int)]
    first_bar = max(numbers[0], numbers[1] - 1) if len(numbers) == 2 else numbers[0] if numbers else 1
    return Notes.from_arrays(
        piece_id, onset=onsets, pitch=pitches, duration=durations, voice=voices,
        tempo_bpm=bpm, voice_names=tuple(str(n) for n in names), title=str(title),
        bars=[float(m.offset) for m in measures] if measures else None, first_bar=first_bar,
        morph=morphs, keys=score_keys(keys),
    )


def _read_part(
    part: Any, voice: int, onsets: list[float], durations: list[float], pitches: list[int], voices: list[int],
    morphs: list[int],
) -> None:
    """Append the part's notes (and their spelling as morphetic pitch), merging tied notes as the
    fast readers do (:func:`musicwords.ties.merge_ties`; music21's ``stripTies`` is quadratic in
    practice)."""
    on: list[float] = []
    length: list[float] = []
    midi: list[int] = []
    morph: list[int] = []
    tie: list[str | None] = []
    for element in part.flatten().notes:
        members = element.notes if hasattr(element, "notes") else (element,)
        for member in members:
            if not hasattr(member, "pitch"):
                continue  # unpitched percussion
            kind = member.tie if member.tie is not None else element.tie
            on.append(float(element.offset))
            length.append(float(element.quarterLength))
            midi.append(int(member.pitch.midi))
            morph.append(morphetic(member.pitch.implicitOctave, member.pitch.step))
            tie.append(kind.type if kind is not None else None)
    merge_ties(voice, on, length, midi, tie, onsets, durations, pitches, voices, morph, morphs)
