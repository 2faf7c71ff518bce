"""Tie merging shared by every score reader (:mod:`musicwords.kern`, :mod:`musicwords.musicxml` and
music21's notes in :func:`musicwords.corpus.score_to_notes`), so that the fast readers and the
music21 path give the same notes: a note whose tie continues or stops a sounding note of the
same pitch in the same voice lengthens it, instead of starting a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["merge_ties"]


def merge_ties(voice: int, onsets: Sequence[float], lengths: Sequence[float], pitches: Sequence[int],
               ties: Sequence[str | None], out_onset: list[float], out_length: list[float], out_pitch: list[int],
               out_voice: list[int], morphs: Sequence[int], out_morph: list[int]) -> None:
    """Append one voice's notes (in score order; ``ties``: ``start``/``continue``/``stop``/None;
    ``morphs``: each note's morphetic pitch, its spelling) to the ``out_*`` lists, tied notes
    merged; notes of no length (grace notes) are dropped."""
    tied: dict[int, int] = {}  # MIDI pitch -> row of the note its tie continues
    for k, (onset, length, midi, kind) in enumerate(zip(onsets, lengths, pitches, ties, strict=True)):
        if length <= 0:
            continue
        row = tied.get(midi)
        if kind in ("continue", "stop") and row is not None:
            out_length[row] = max(out_length[row], onset + length - out_onset[row])
            if kind == "stop":
                del tied[midi]
            continue
        out_onset.append(onset)
        out_length.append(length)
        out_pitch.append(midi)
        out_voice.append(voice)
        out_morph.append(morphs[k])
        if kind in ("start", "continue"):
            tied[midi] = len(out_onset) - 1
        else:
            tied.pop(midi, None)
