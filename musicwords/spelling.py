"""Diatonic (morphetic) pitch: where a note lies on the staff, so a diatonic transposition keeps its steps.

A tonal answer or a sequence moves a motif up or down the *scale*: C-E-G from C becomes D-F-A
from D, a major third and a minor third instead of a minor and a major one. In semitones the two
statements differ; in scale steps (morphetic pitch, Meredith 2006: one unit per staff position,
middle C = 60 as in JKUPDD and BPS-motif) both are +2 +2.

:func:`diatonic_pitch` gives the morphetic pitch of every note: the input's own where it spells
its notes (``Notes.morph``: note CSVs such as JKUPDD's and BPS-motif's, and the scores that
:mod:`musicwords.io` reads, MusicXML, kern and abc, as :func:`morphetic` writes them), else (MIDI)
an estimate: the piece's key by the Krumhansl-Schmuckler key-finding algorithm (duration-weighted
pitch-class profile correlated with the Krumhansl-Kessler major and minor profiles) and each
pitch class spelled as a scale degree of that tonic (``b2 2 b3 3 4 #4 5 b6 6 b7 7``: flats,
except the raised fourth). One key per piece: a modulating piece is spelled in its main key, so
a sequence through a modulation can still get one chromatic step wrong; that is the estimate's
known limit. From their MIDI pitches alone, it gives the annotated step between consecutive
notes of a staff on 93.4 % (BPS-motif, tuning half), 92.3 % (test half) and 97.6 % (JKUPDD) of
steps (``python benchmarks/spelling_accuracy.py``).

A local estimate was tried and not kept: each note written at the place on the line of fifths
nearest the centre of its 20 neighbours' on each side (Temperley 2001; Chew and Chen 2005),
then ps13's rule for neighbour and passing notes (Meredith 2006). It gave 97.0 %, 95.8 % and
98.4 % of the steps, but the motif layer on the BPS notes without their spelling did no better
(establishment F 0.520 / 0.534 on the tuning / test half, against 0.514 / 0.531), and melodies
drawn from a Markov chain of Bach chorales gave a pattern on 6 of 20 seeds instead of 1: the
spelling of a note by its context adds to the tokens a dependence the null models do not know.

Examples
--------
>>> import numpy as np
>>> from musicwords.notes import Notes
>>> c_major = Notes.from_arrays("c", onset=np.arange(8.0), pitch=[60, 62, 64, 65, 67, 69, 71, 72], duration=np.ones(8))
>>> np.diff(diatonic_pitch(c_major)).tolist()
[1, 1, 1, 1, 1, 1, 1]
>>> estimate_tonic(c_major)
0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicwords.notes import Notes

__all__ = ["diatonic_pitch", "estimate_tonic", "key_fifths", "morphetic", "pitch_names", "written"]

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_DEGREE = np.array([0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6])  # semitones above the tonic → scale step
_MIDDLE_C_MORPH = 60  # morphetic pitch of MIDI 60, as in JKUPDD and BPS-motif
_NATURAL = (0, 2, 4, 5, 7, 9, 11)  # semitones of C D E F G A B above C
_SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def morphetic(octave: int, step: str) -> int:
    """Morphetic pitch of a written note: its octave as written (middle C is C4; B#3 sounds as C4)
    and its letter (``C`` .. ``B``, either case).

    >>> morphetic(4, "C"), morphetic(4, "d"), morphetic(3, "B")
    (60, 61, 59)
    """
    return _MIDDLE_C_MORPH + 7 * (octave - 4) + "cdefgab".index(step.lower())


def written(pitch: int, morph: int) -> tuple[str, int, int]:
    """The note a MIDI pitch and a morphetic pitch write: letter, alteration (semitones, -2 .. 2)
    and octave (middle C is C4). A pair no note writes (more than a double sharp or flat between
    them) raises ``ValueError``.

    >>> written(63, 62), written(63, 61), written(60, 59)
    (('E', -1, 4), ('D', 1, 4), ('B', 1, 3))
    """
    octave, step, alter = (int(x) for x in _alteration(int(pitch), int(morph)))
    if abs(alter) > 2:
        raise ValueError(f"no note writes MIDI pitch {pitch} at morphetic pitch {morph}")
    return "CDEFGAB"[step], alter, octave + 4


def _alteration(pitch: Any, morph: Any) -> tuple[Any, Any, Any]:
    """Octave (from middle C's, 0), letter (0 = C) and alteration in semitones of the notes a MIDI
    and a morphetic pitch write; scalars or arrays alike."""
    octave, step = np.divmod(morph - _MIDDLE_C_MORPH, 7)
    return octave, step, pitch - (60 + 12 * octave + np.asarray(_NATURAL)[step])


def pitch_names(notes: Notes, idx: np.ndarray | None = None, *, morph: np.ndarray | None = None) -> list[str]:
    """The written names of ``notes`` (those at ``idx``), such as ``Eb4`` or ``F#3``: as the input
    spells them (``notes.morph``), else by the key estimate of :func:`diatonic_pitch` (``morph``:
    that of every note, where the caller has it already). A note the spelling cannot write (a
    corrupt morphetic pitch) is named by its pitch class with sharps.

    >>> c_minor = Notes.from_arrays("cm", onset=np.arange(4.0), pitch=[60, 63, 67, 72], duration=np.ones(4))
    >>> pitch_names(c_minor)
    ['C4', 'Eb4', 'G4', 'C5']
    """
    chosen = np.arange(len(notes)) if idx is None else np.asarray(idx)
    morph = (diatonic_pitch(notes) if morph is None else morph)[chosen]
    pitch = notes.pitch[chosen].astype(np.int64)
    octave, step, alter = _alteration(pitch, morph.astype(np.int64))  # as written(), for all notes at once
    return [f"{'CDEFGAB'[s]}{'#' * a if a > 0 else 'b' * -a}{o + 4}" if abs(a) <= 2 else f"{_SHARPS[p % 12]}{p // 12 - 1}"
            for p, o, s, a in zip(pitch.tolist(), octave.tolist(), step.tolist(), alter.tolist(), strict=True)]


def key_fifths(notes: Notes, *, morph: np.ndarray | None = None) -> int:
    """The key signature that writes ``notes`` with the fewest accidentals (each note weighted by
    its duration), as sharps (> 0) or flats (< 0), -7 .. 7; a tie goes to the fewer sharps or
    flats. Spelled as the input spells them (``notes.morph``), else by the key estimate of
    :func:`diatonic_pitch` (``morph``: that of every note, where the caller has it already), so
    a MIDI file gets its estimated key's signature (a minor key its relative major's).

    >>> c_minor = Notes.from_arrays("cm", onset=np.arange(5.0), pitch=[60, 62, 63, 67, 68], duration=np.ones(5))
    >>> key_fifths(c_minor)
    -3
    >>> a_major = Notes.from_arrays("a", onset=np.arange(8.0), pitch=[69, 71, 73, 74, 76, 78, 80, 81], duration=np.ones(8))
    >>> key_fifths(a_major)
    3
    """
    if len(notes) == 0:
        return 0
    morph = diatonic_pitch(notes) if morph is None else np.asarray(morph, dtype=np.int64)
    _, step, alter = _alteration(notes.pitch.astype(np.int64), morph)
    weight = np.maximum(notes.duration, 1e-3)
    best, best_cost = 0, np.inf
    for fifths in sorted(range(-7, 8), key=abs):  # the fewer sharps or flats first: they win a tie
        signature = np.zeros(7, dtype=np.int64)  # alteration per letter C .. B
        for letter in ("FCGDAEB" if fifths > 0 else "BEADGCF")[:abs(fifths)]:
            signature["CDEFGAB".index(letter)] = 1 if fifths > 0 else -1
        cost = float(weight[alter != signature[step]].sum())
        if cost < best_cost:
            best, best_cost = fifths, cost
    return best


def estimate_tonic(notes: Notes) -> int:
    """Pitch class (0 = C) of the tonic of the best-correlated major or minor key."""
    if len(notes) == 0:
        return 0
    weight = np.maximum(notes.duration, 1e-3)
    profile = np.bincount(notes.pitch.astype(np.int64) % 12, weights=weight, minlength=12)
    if np.ptp(profile) == 0:
        return 0
    best, tonic = -np.inf, 0
    for t in range(12):
        for key in (_MAJOR, _MINOR):
            r = float(np.corrcoef(profile, np.roll(key, t))[0, 1])
            if r > best:
                best, tonic = r, t
    return tonic


def diatonic_pitch(notes: Notes) -> np.ndarray:
    """(n,) morphetic pitch of every note: ``notes.morph`` if the input spells its notes, else estimated."""
    if notes.morph is not None:
        return notes.morph.astype(np.int64)
    tonic = estimate_tonic(notes)
    rel = notes.pitch.astype(np.int64) - 60 - tonic
    tonic_morph = _MIDDLE_C_MORPH + _DEGREE[tonic]  # the tonic above middle C on the C-major staff
    return tonic_morph + 7 * (rel // 12) + _DEGREE[rel % 12]
