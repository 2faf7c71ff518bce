"""The ``Notes`` table: every note of a piece, one row per note, grouped into voices.

Conventions
-----------
- ``onset`` and ``duration`` are in *beats* (crotchets/quarter notes), as in MIDI ticks divided
  by the resolution and in JKUPDD; ``onset_s`` / ``duration_s`` are the same in seconds.
- ``pitch`` is the MIDI note number (60 = middle C); ``voice`` is a 0-based index into
  ``voice_names`` (a track, part or staff).
- Rows are sorted by ``(voice, onset, pitch)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Notes", "NotesError", "score_keys"]


class NotesError(ValueError):
    """A piece cannot be turned into notes (empty, unreadable or over a limit)."""


@dataclass(frozen=True)
class Notes:
    """Notes of one piece as parallel arrays of length ``n``.

    Examples
    --------
    >>> n = Notes.from_arrays("demo", onset=[0, 1, 2], pitch=[60, 62, 64], duration=[1, 1, 2])
    >>> len(n), n.voice_names
    (3, ('voice0',))
    """

    piece_id: str
    onset: np.ndarray  # (n,) float64, beats
    duration: np.ndarray  # (n,) float64, beats
    pitch: np.ndarray  # (n,) int16, MIDI
    voice: np.ndarray  # (n,) int16
    velocity: np.ndarray  # (n,) int16, 1..127
    tempo_bpm: float = 120.0  # crotchets per minute, for the times in seconds
    voice_names: tuple[str, ...] = field(default=("voice0",))
    title: str = ""
    morph: np.ndarray | None = None  # (n,) int16, morphetic (diatonic) pitch where the input spells it; see musicwords.spelling
    bars: np.ndarray | None = None  # onsets (beats) where the score's measures start, in order, where it has measures
    first_bar: int = 1  # number of the measure at bars[0]: 0 when the score opens with a pickup
    # (k, 2): onset (beats) and key signature (sharps > 0, flats < 0) of each one the score
    # writes, in order (see score_keys); None where it writes none (most MIDI, note CSVs)
    keys: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        piece_id: str,
        *,
        onset: object,
        pitch: object,
        duration: object,
        voice: object | None = None,
        velocity: object | None = None,
        tempo_bpm: float = 120.0,
        voice_names: tuple[str, ...] | None = None,
        title: str = "",
        morph: object | None = None,
        bars: object | None = None,
        first_bar: int = 1,
        keys: object | None = None,
    ) -> Notes:
        """Build a sorted table, checking lengths and ranges."""
        onset_a = np.asarray(onset, dtype=np.float64).reshape(-1)
        n = len(onset_a)
        pitch_a = np.asarray(pitch, dtype=np.int64).reshape(-1)
        duration_a = np.asarray(duration, dtype=np.float64).reshape(-1)
        voice_a = np.zeros(n, dtype=np.int64) if voice is None else np.asarray(voice, dtype=np.int64).reshape(-1)
        vel_a = np.full(n, 80, dtype=np.int64) if velocity is None else np.asarray(velocity, dtype=np.int64).reshape(-1)
        morph_a = None if morph is None else np.asarray(morph, dtype=np.int64).reshape(-1)
        checked = [("pitch", pitch_a), ("duration", duration_a), ("voice", voice_a), ("velocity", vel_a)]
        for name, arr in checked + ([("morph", morph_a)] if morph_a is not None else []):
            if len(arr) != n:
                raise NotesError(f"{piece_id}: {name} has {len(arr)} values but onset has {n}")
        if n and (pitch_a.min() < 0 or pitch_a.max() > 127):
            raise NotesError(f"{piece_id}: MIDI pitches must lie in 0..127, got {pitch_a.min()}..{pitch_a.max()}")
        if n and (not np.all(np.isfinite(onset_a)) or not np.all(np.isfinite(duration_a)) or duration_a.min() < 0):
            raise NotesError(f"{piece_id}: onsets and durations must be finite and durations >= 0 (in beats)")
        if not tempo_bpm > 0:
            raise NotesError(f"{piece_id}: tempo must be > 0 BPM, got {tempo_bpm}")
        keys_a = None if keys is None else np.asarray(keys, dtype=np.float64).reshape(-1, 2)
        if keys_a is not None and (np.any(np.abs(keys_a[:, 1]) > 7) or np.any(keys_a[:, 1] != np.round(keys_a[:, 1]))
                                   or np.any(np.diff(keys_a[:, 0]) <= 0)):
            raise NotesError(f"{piece_id}: key signatures must be -7..7 sharps at increasing onsets, got {keys_a.tolist()}")
        n_voices = int(voice_a.max()) + 1 if n else 1
        names = voice_names if voice_names is not None else tuple(f"voice{i}" for i in range(n_voices))
        if len(names) < n_voices:
            raise NotesError(f"{piece_id}: {n_voices} voices but {len(names)} voice names")
        order = np.lexsort((pitch_a, onset_a, voice_a))
        return cls(
            piece_id=piece_id,
            onset=onset_a[order],
            duration=duration_a[order],
            pitch=pitch_a[order].astype(np.int16),
            voice=voice_a[order].astype(np.int16),
            velocity=np.clip(vel_a[order], 1, 127).astype(np.int16),
            tempo_bpm=float(tempo_bpm),
            voice_names=tuple(names),
            title=title,
            morph=None if morph_a is None else morph_a[order].astype(np.int16),
            bars=None if bars is None else np.unique(np.asarray(bars, dtype=np.float64)),
            first_bar=int(first_bar),
            keys=None if keys_a is None or len(keys_a) == 0 else keys_a,
        )

    def __len__(self) -> int:
        return len(self.onset)

    @property
    def onset_s(self) -> np.ndarray:
        """Onsets in seconds at ``tempo_bpm``."""
        return self.onset * 60.0 / self.tempo_bpm

    @property
    def duration_s(self) -> np.ndarray:
        """Durations in seconds at ``tempo_bpm``."""
        return self.duration * 60.0 / self.tempo_bpm

    def bar_beat(self, onset: float) -> tuple[int, float] | None:
        """``(measure number, beat)`` of an onset, the beat counted in crotchets from 1 at the
        measure's start; ``None`` where the score has no measures (a note CSV).

        Examples
        --------
        >>> n = Notes.from_arrays("m", onset=[0, 1, 3.5], pitch=[60, 62, 64], duration=[1, 1, 1], bars=[0, 3], first_bar=1)
        >>> n.bar_beat(3.5), n.bar_beat(1.0)
        ((2, 1.5), (1, 2.0))
        >>> pickup = Notes.from_arrays("p", onset=[0, 1], pitch=[60, 62], duration=[1, 1], bars=[0, 1, 5], first_bar=0)
        >>> pickup.bar_beat(0.0), pickup.bar_beat(1.0)
        ((0, 4.0), (1, 1.0))
        """
        if self.bars is None or len(self.bars) == 0:
            return None
        i = int(np.searchsorted(self.bars, onset + 1e-9, side="right")) - 1
        if i < 0:  # before the first barline: a pickup, counted back from the first full measure's length
            length = float(self.bars[1] - self.bars[0]) if len(self.bars) > 1 else 4.0
            return self.first_bar - 1, round(1.0 + onset - (float(self.bars[0]) - length), 4)
        beat = 1.0 + onset - float(self.bars[i])
        if i == 0 and self.first_bar == 0 and len(self.bars) > 2:  # a pickup measure ends on the last beats of a full one
            beat += max(float(self.bars[2] - self.bars[1]) - float(self.bars[1] - self.bars[0]), 0.0)
        return self.first_bar + i, round(beat, 4)

    def bar_length(self, onset: float) -> float | None:
        """Length in crotchets of a full measure of the metre at ``onset``: that of the measure
        holding it, or for a pickup (before the first barline, or a measure 0) and for the last
        measure (it may close short) that of its neighbour; ``None`` where the score has no
        measures, or one only.

        >>> n = Notes.from_arrays("m", onset=[0, 1, 4], pitch=[60, 62, 64], duration=[1, 1, 1], bars=[0, 1, 4, 7], first_bar=0)
        >>> n.bar_length(0.0), n.bar_length(2.0), n.bar_length(8.0)
        (3.0, 3.0, 3.0)
        """
        if self.bars is None or len(self.bars) < 2:
            return None
        i = int(np.searchsorted(self.bars, onset + 1e-9, side="right")) - 1
        pickup = i < 0 or (i == 0 and self.first_bar == 0)
        i = min(max(i, 0) + pickup, len(self.bars) - 2)  # a pickup's or the last measure's neighbour
        return float(self.bars[i + 1] - self.bars[i])

    def fifths_at(self, onset: float) -> int | None:
        """The key signature the score writes at ``onset`` (sharps > 0, flats < 0): the last one
        at or before it (the first, before any); ``None`` where the score writes none.

        >>> n = Notes.from_arrays("k", onset=[0, 8], pitch=[60, 62], duration=[1, 1], keys=[(0, -3), (8, 0)])
        >>> n.fifths_at(0.0), n.fifths_at(7.5), n.fifths_at(8.0)
        (-3, -3, 0)
        >>> Notes.from_arrays("m", onset=[0], pitch=[60], duration=[1]).fifths_at(0) is None
        True
        """
        if self.keys is None:
            return None
        i = max(int(np.searchsorted(self.keys[:, 0], onset + 1e-9, side="right")) - 1, 0)
        return int(self.keys[i, 1])

    @property
    def n_voices(self) -> int:
        return len(self.voice_names)


def score_keys(parts: list[list[tuple[float, int]]]) -> list[tuple[float, int]] | None:
    """A score's key signatures from its parts' (each part's ``(onset, fifths)`` as written): at
    each onset where a part writes one, the commonest there (a tie: the first part's), kept where
    it changes; ``None`` where no part writes one.

    >>> score_keys([[(0.0, 2), (32.0, -1)], [(0.0, 2), (32.0, -1)], [(0.0, 2)]])
    [(0.0, 2), (32.0, -1)]
    >>> score_keys([[], []]) is None
    True
    """
    at: dict[float, list[int]] = {}
    for part in parts:
        for onset, fifths in part:
            at.setdefault(float(onset), []).append(int(fifths))
    out: list[tuple[float, int]] = []
    for onset in sorted(at):
        fifths = max(at[onset], key=at[onset].count)  # max keeps the first of equal counts
        if not out or out[-1][1] != fifths:
            out.append((onset, fifths))
    return out or None
