"""Splitting polyphonic parts into monophonic voices, the input of tokenisation.

Three methods, chosen by name:

- ``"skyline"``: the highest note of each onset (the melody a listener usually follows);
  every other note is dropped. Simple and lossy.
- ``"lines"`` (default): line-following voice separation. Onsets are visited in time order;
  the notes of a chord are matched one-to-one to the open voices by pitch distance (Hungarian
  assignment; a line whose previous note still sounds costs more), and a note that finds only
  sounding lines starts a new one, up to ``max_voices`` per part. A monophonic part stays one
  line whatever its leaps. Every note is kept unless a part sounds more than ``max_voices``
  notes at once (then the lowest of two notes sharing a line and an onset is dropped).
- ``"outer"``: the outer voices first, as a listener follows a keyboard texture: the *top
  line* (the highest note of each onset of the part, exactly the skyline), then the *bottom
  line* (the lowest of the other notes at each onset where the part sounds two or more), then
  the inner notes left, separated by ``"lines"`` into at most ``max_voices - 2`` lines. Every
  note is in one stream, as with ``"lines"``, but a melody that leaps across the inner voices
  is never cut where line-following would hand it to a nearer line.

Both return a mapping of each kept note to a ``(part, line)`` stream, as a :class:`Streams`
of note indices into the original :class:`~musicwords.notes.Notes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from musicwords.notes import Notes

__all__ = ["METHODS", "Streams", "in_melody", "on_top", "separate_voices"]

METHODS = ("lines", "skyline", "outer")


@dataclass(frozen=True)
class Streams:
    """Monophonic note sequences of one piece: ``streams[k]`` = note indices in onset order."""

    piece_id: str
    streams: tuple[np.ndarray, ...]
    names: tuple[str, ...]


def separate_voices(notes: Notes, *, method: str = "lines", max_voices: int = 4) -> Streams:
    """Monophonic streams of ``notes``, per part.

    Parameters
    ----------
    notes : Notes
        The piece; each of its voices (track/part/staff) is split on its own.
    method : {"lines", "skyline", "outer"}
        See the module docstring.
    max_voices : int
        Most lines per part for ``"lines"`` and ``"outer"`` (which keeps the top and bottom
        line whatever it is).

    Examples
    --------
    >>> n = Notes.from_arrays("x", onset=[0, 0, 1, 1], pitch=[72, 60, 74, 59], duration=[1, 1, 1, 1])
    >>> [n.pitch[s].tolist() for s in separate_voices(n).streams]
    [[72, 74], [60, 59]]
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if max_voices < 1:
        raise ValueError(f"max_voices must be >= 1, got {max_voices}")
    streams: list[np.ndarray] = []
    names: list[str] = []
    for v, name in enumerate(notes.voice_names):
        idx = np.flatnonzero(notes.voice == v)
        if len(idx) == 0:
            continue
        if method == "skyline":
            lines = [_skyline(notes, idx)]
        elif method == "outer":
            lines = _outer(notes, idx, max_voices)
        else:
            lines = _lines(notes, idx, max_voices)
        for k, line in enumerate(lines):
            if len(line):
                streams.append(line)
                names.append(name if len(lines) == 1 else f"{name}/{k}")
    return Streams(notes.piece_id, tuple(streams), tuple(names))


def in_melody(notes: Notes) -> np.ndarray:
    """Whether each note is heard as melody: on top of the texture (:func:`on_top`), or in a part
    that is one line.

    A part is one line (a voice of a choir, an instrument of an ensemble) when at most one of
    its notes in twenty starts with a higher note of the same part (a double stop, a divisi);
    each such line is a voice of the counterpoint, heard in its own right. A part that plays
    chords (a keyboard staff, a guitar) holds melody and accompaniment at once: only what is on
    top of the whole texture is its melody.

    Examples
    --------
    >>> n = Notes.from_arrays("x", onset=[0, 0, 0, 1, 1, 1], pitch=[72, 60, 64, 74, 59, 62], duration=[1] * 6,
    ...                       voice=[0, 1, 1, 0, 1, 1])
    >>> n.pitch[in_melody(n)].tolist()  # the staff of chords under the melody: accompaniment
    [72, 74]
    >>> n = Notes.from_arrays("x", onset=[0, 0, 1, 1], pitch=[72, 60, 74, 59], duration=[1] * 4, voice=[0, 1, 0, 1])
    >>> sorted(n.pitch[in_melody(n)].tolist())  # two voices of one line each: both heard
    [59, 60, 72, 74]
    """
    melody = on_top(notes)
    for v in range(len(notes.voice_names)):
        idx = np.flatnonzero(notes.voice == v)
        if len(idx) and len(idx) - len(_skyline(notes, idx)) <= len(idx) / 20:
            melody[idx] = True
    return melody


def on_top(notes: Notes) -> np.ndarray:
    """Whether each note is on top of the texture: no note of any part sounds higher at its onset.

    A note sounds from its onset until its onset plus its duration; notes held from before
    count, so an accompaniment figure under a held melody note is not on top.

    Examples
    --------
    >>> n = Notes.from_arrays("x", onset=[0, 0, 1, 2], pitch=[72, 60, 64, 65], duration=[2, 1, 1, 1])
    >>> n.pitch[on_top(n)].tolist()  # 64 sounds under the held 72
    [72, 65]
    """
    import heapq  # noqa: PLC0415

    order = np.argsort(notes.onset, kind="stable")
    onset = notes.onset[order]
    end = onset + np.maximum(notes.duration[order], 1e-9)
    pitch = notes.pitch[order].astype(np.int64)
    sounding: list[tuple[int, float]] = []  # (-pitch, end), the highest first
    top = np.zeros(len(order), dtype=bool)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and onset[j] == onset[i]:
            heapq.heappush(sounding, (-int(pitch[j]), float(end[j])))
            j += 1
        while sounding[0][1] <= onset[i]:  # ended: the notes of this onset stay, so the heap never empties
            heapq.heappop(sounding)
        top[order[i:j]] = pitch[i:j] >= -sounding[0][0]
        i = j
    return top


def _skyline(notes: Notes, idx: np.ndarray, *, lowest: bool = False) -> np.ndarray:
    """The highest (or lowest) note of each onset among ``idx``, in onset order."""
    pitch = notes.pitch[idx].astype(np.int64)
    order = idx[np.lexsort((pitch if lowest else -pitch, notes.onset[idx]))]
    onset = notes.onset[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = onset[1:] != onset[:-1]
    return order[first]


def _outer(notes: Notes, idx: np.ndarray, max_voices: int) -> list[np.ndarray]:
    """Top line, bottom line (where the part sounds two or more notes), inner lines."""
    top = _skyline(notes, idx)
    rest = np.setdiff1d(idx, top)
    if len(rest) == 0:
        return [top]
    bottom = _skyline(notes, rest, lowest=True)
    inner = np.setdiff1d(rest, bottom)
    lines = [top, bottom]
    if len(inner):
        lines += _lines(notes, inner, max(max_voices - 2, 1))
    return lines


def _lines(notes: Notes, idx: np.ndarray, max_voices: int) -> list[np.ndarray]:
    onset = notes.onset[idx]
    end = onset + notes.duration[idx]
    pitch = notes.pitch[idx].astype(float)
    order = np.lexsort((-pitch, onset))
    last_pitch: list[float] = []
    last_end: list[float] = []
    members: list[list[int]] = []
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and onset[order[j]] == onset[order[i]]:
            j += 1
        chord = order[i:j]  # highest first
        t = onset[chord[0]]
        if last_pitch:
            cost = np.abs(pitch[chord][:, None] - np.array(last_pitch)[None, :])
            cost = cost + 48.0 * (np.array(last_end)[None, :] > t + 1e-9)  # prefer lines that are free
            rows, cols = linear_sum_assignment(cost)
            assigned = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        else:
            assigned = {}
        for r, note in enumerate(chord):
            col = assigned.get(r)
            busy = col is not None and last_end[col] > t + 1e-9  # that line still sounds at t
            if col is not None and (not busy or len(last_pitch) >= max_voices):
                members[col].append(int(note))
                last_pitch[col], last_end[col] = pitch[note], end[note]
            elif len(last_pitch) < max_voices:
                members.append([int(note)])
                last_pitch.append(pitch[note])
                last_end.append(end[note])
            else:  # every line is taken at this onset: join the nearest one anyway
                col = int(np.argmin(np.abs(np.array(last_pitch) - pitch[note])))
                members[col].append(int(note))
        i = j
    # Lines ordered from the highest to the lowest mean pitch; each in onset order, one note per onset.
    lines = []
    for m in sorted(members, key=lambda m: -float(np.mean(pitch[m]))):
        m_arr = np.array(m)
        m_arr = m_arr[np.lexsort((-pitch[m_arr], onset[m_arr]))]
        keep = np.ones(len(m_arr), dtype=bool)
        keep[1:] = onset[m_arr][1:] != onset[m_arr][:-1]
        lines.append(idx[m_arr[keep]])
    return lines
