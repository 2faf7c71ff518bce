"""Writing :class:`~musicwords.notes.Notes` as Standard MIDI Files (one track per voice).

MIDI cannot hold two sounding notes of the same pitch on one channel, so
:func:`playable_notes` resolves such overlaps first (the earlier note ends where the later one
starts; exact duplicates are dropped). :func:`notes_to_midi_bytes` then writes every note it is
given: a parser reading the file back finds exactly ``len(notes)`` notes.
"""

from __future__ import annotations

import io

import mido
import numpy as np

from musicwords.notes import Notes, NotesError

__all__ = ["notes_to_midi_bytes", "playable_notes"]

TICKS_PER_BEAT = 480  # the common MIDI resolution; a semiquaver triplet is a whole 40 ticks


def playable_notes(notes: Notes, *, ticks_per_beat: int = TICKS_PER_BEAT) -> Notes:
    """``notes`` on the tick grid, with no two notes of one pitch sounding together in a voice.

    Notes shorter than one tick are lengthened to one tick; a note whose pitch sounds again in
    the same voice before it ends is cut short at the new onset; duplicates (same voice, pitch
    and onset) are dropped.
    """
    start = np.round(notes.onset * ticks_per_beat).astype(np.int64)
    end = np.maximum(np.round((notes.onset + notes.duration) * ticks_per_beat).astype(np.int64), start + 1)
    keep = np.ones(len(notes), dtype=bool)
    order = np.lexsort((start, notes.pitch, notes.voice))
    prev = -1
    for i in order:
        if prev >= 0 and notes.voice[prev] == notes.voice[i] and notes.pitch[prev] == notes.pitch[i]:
            if start[i] == start[prev]:
                keep[i] = False  # a duplicate: merged into the first, which keeps the longer end
                end[prev] = max(end[prev], end[i])
                continue
            end[prev] = min(end[prev], start[i])
        prev = i
    return Notes.from_arrays(
        notes.piece_id,
        onset=start[keep] / ticks_per_beat,
        duration=(end[keep] - start[keep]) / ticks_per_beat,
        pitch=notes.pitch[keep],
        voice=notes.voice[keep],
        velocity=notes.velocity[keep],
        tempo_bpm=notes.tempo_bpm,
        voice_names=notes.voice_names,
        title=notes.title,
    )


def notes_to_midi_bytes(notes: Notes, *, ticks_per_beat: int = TICKS_PER_BEAT) -> bytes:
    """A type-1 Standard MIDI File of ``notes``: a tempo track, then one track per voice.

    Parameters
    ----------
    notes : Notes
        Should come from :func:`playable_notes` (checked: overlapping same-pitch notes in a voice
        raise :class:`~musicwords.notes.NotesError`, since MIDI would silently merge them).
    ticks_per_beat : int
        MIDI resolution (ticks per crotchet).

    Examples
    --------
    >>> n = Notes.from_arrays("demo", onset=[0, 1], pitch=[60, 67], duration=[1, 1])
    >>> data = notes_to_midi_bytes(playable_notes(n))
    >>> data[:4]
    b'MThd'
    """
    if len(notes) == 0:
        raise NotesError(f"{notes.piece_id}: no notes to write")
    start = np.round(notes.onset * ticks_per_beat).astype(np.int64)
    end = np.round((notes.onset + notes.duration) * ticks_per_beat).astype(np.int64)
    if start.min() < 0:
        start, end = start - start.min(), end - start.min()  # upbeats before 0: shift the piece
    if np.any(end <= start):
        raise NotesError(f"{notes.piece_id}: notes shorter than one tick; pass them through playable_notes() first")

    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    if notes.title:
        meta.append(mido.MetaMessage("track_name", name=notes.title[:120], time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(notes.tempo_bpm), time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)
    for v, name in enumerate(notes.voice_names):
        idx = np.flatnonzero(notes.voice == v)
        channel = _channel(v)
        # (tick, 0 = off before 1 = on, pitch, velocity)
        events = [(int(end[i]), 0, int(notes.pitch[i]), 0) for i in idx]
        events += [(int(start[i]), 1, int(notes.pitch[i]), int(notes.velocity[i])) for i in idx]
        events.sort()
        _check_no_overlap(notes, idx, start, end)
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=str(name)[:120], time=0))
        now = 0
        for tick, is_on, pitch, velocity in events:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def _channel(voice: int) -> int:
    """MIDI channel of a voice, skipping channel 10 (index 9), which General MIDI keeps for drums."""
    channel = voice % 15
    return channel + 1 if channel >= 9 else channel


def _check_no_overlap(notes: Notes, idx: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    for pitch in np.unique(notes.pitch[idx]):
        same = idx[notes.pitch[idx] == pitch]
        order = same[np.argsort(start[same], kind="stable")]
        if np.any(start[order][1:] < end[order][:-1]):
            raise NotesError(
                f"{notes.piece_id}: pitch {int(pitch)} overlaps itself in voice {notes.voice_names[notes.voice[idx[0]]]!r}; "
                "pass the notes through playable_notes() first"
            )
