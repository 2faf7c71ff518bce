"""Reading symbolic music into :class:`~musicwords.notes.Notes`.

================ ================================================== ===================================
input            reader                                             voices
================ ================================================== ===================================
``.mid .midi``   :func:`read_midi` (``symusic``, C++)               one per track (drum tracks dropped)
``.xml .mxl``    :func:`read_score`: :mod:`musicwords.musicxml`,    one per part
``.musicxml``    else ``music21``
``.krn``         :func:`read_score`: :mod:`musicwords.kern`,        one per ``**kern`` spine
                 else ``music21``
``.abc``         :func:`read_score` (``music21``)                   one per part
``.csv``         :func:`read_note_csv` (JKUPDD layout)              one per staff
================ ================================================== ===================================

Why ``symusic`` for MIDI: it parses a Bach chorale in 0.06 ms against 5.6 ms for ``mido`` and
5.6 ms for ``pretty_midi`` (``benchmarks/words_bench.py``, one core), and it is maintained. Onsets are in beats (MIDI quarter
notes); the first tempo gives the times in seconds.

The direct MusicXML and kern readers give music21's notes, far faster (figures in their
modules' docstrings and from ``benchmarks/compare_readers.py``); each
raises its ``Unsupported`` for what it does not handle exactly (listed in its docstring), and
:func:`read_score` then asks music21. ``benchmarks/compare_readers.py`` compares both paths
over the whole music21 corpus; ``tests/test_fast_readers.py`` on a few files.

Every reader raises :class:`~musicwords.notes.NotesError` naming the file for empty, unreadable
or oversized input; limits are keyword arguments.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from musicwords.notes import Notes, NotesError, score_keys

__all__ = ["SCORE_SUFFIXES", "barlines", "read_midi", "read_note_csv", "read_notes", "read_score"]

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".xml", ".mxl", ".musicxml", ".krn", ".abc")
CSV_SUFFIXES = (".csv",)
_MUSIC21_FORMATS = {".mxl": "musicxml", ".xml": "musicxml", ".musicxml": "musicxml", ".krn": "humdrum", ".abc": "abc"}
MAX_NOTES = 1_000_000  # a symphony has ~50,000; more is a broken or hostile file
MAX_BYTES = 64 << 20
# A note is a note-on and a note-off, each at least 3 bytes (delta time and two data bytes under
# running status), so a MIDI file holds at most len/6 notes; real files spend 8-12 bytes a note.
# Files over 16 bytes per allowed note are refused before parsing: a 30 MB file of 10^7 events
# never reaches the parser's memory.
MIDI_BYTES_PER_NOTE = 16


def read_notes(
    path: str | Path, *, data: bytes | None = None, piece_id: str | None = None, max_notes: int = MAX_NOTES,
    reader: str = "auto",
) -> Notes:
    """Read any supported file by its suffix (``data`` instead of reading ``path`` when given;
    ``reader``: see :func:`read_score`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    pid = piece_id or path.stem
    if suffix in MIDI_SUFFIXES:
        return read_midi(path, data=data, piece_id=pid, max_notes=max_notes)
    if suffix in CSV_SUFFIXES:
        return read_note_csv(path, data=data, piece_id=pid, max_notes=max_notes)
    if suffix in SCORE_SUFFIXES:
        return read_score(path, data=data, piece_id=pid, max_notes=max_notes, reader=reader)
    raise NotesError(f"{path}: unknown file type {suffix!r}; expected one of {MIDI_SUFFIXES + SCORE_SUFFIXES + CSV_SUFFIXES}")


def _load(path: Path, data: bytes | None) -> bytes:
    if data is None:
        try:
            if path.stat().st_size > MAX_BYTES:
                raise NotesError(f"{path}: file of {path.stat().st_size} bytes is over the {MAX_BYTES}-byte limit")
            data = path.read_bytes()
        except OSError as e:
            raise NotesError(f"{path}: cannot read: {e}") from e
    if len(data) == 0:
        raise NotesError(f"{path}: empty file")
    if len(data) > MAX_BYTES:
        raise NotesError(f"{path}: {len(data)} bytes is over the {MAX_BYTES}-byte limit")
    return data


def _check_zip(path: Path, raw: bytes) -> None:
    """A compressed score (.mxl) must unpack to at most MAX_BYTES: a zip bomb is refused unopened.
    The sizes a zip declares are binding: Python's zipfile stops reading a member at its declared size."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            total = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise NotesError(f"{path}: corrupt compressed score: {e}") from e
    if total > MAX_BYTES:
        raise NotesError(f"{path}: unpacks to {total} bytes, over the {MAX_BYTES}-byte limit")


def read_midi(
    path: str | Path, *, data: bytes | None = None, piece_id: str | None = None, max_notes: int = MAX_NOTES
) -> Notes:
    """Notes of a Standard MIDI File, one voice per non-drum track, onsets in beats.

    Raises
    ------
    NotesError
        Corrupt bytes, no pitched notes (e.g. drums only), more than ``max_notes`` notes, or an
        absurd tempo (outside 1..2000 BPM).
    """
    import symusic  # noqa: PLC0415

    path = Path(path)
    raw = _load(path, data)
    if not raw.startswith(b"MThd"):
        raise NotesError(f"{path}: not a MIDI file (no MThd header)")
    if len(raw) > MIDI_BYTES_PER_NOTE * max_notes:
        raise NotesError(f"{path}: {len(raw)} bytes of MIDI is more than the limit of {max_notes} notes allows "
                         f"({MIDI_BYTES_PER_NOTE} bytes a note); refused before parsing")
    try:
        score: Any = symusic.Score.from_midi(raw)
    except Exception as e:  # symusic raises RuntimeError/ValueError variants on corrupt data
        raise NotesError(f"{path}: corrupt MIDI: {e}") from e
    tpq = score.ticks_per_quarter
    if tpq <= 0:
        raise NotesError(f"{path}: invalid MIDI resolution {tpq} ticks per beat")
    tracks = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    total = sum(len(t.notes) for t in tracks)
    if total == 0:
        raise NotesError(f"{path}: no pitched notes (empty, or drums only)")
    if total > max_notes:
        raise NotesError(f"{path}: {total} notes is over the limit of {max_notes}")
    onsets, durations, pitches, velocities, voices, names = [], [], [], [], [], []
    for v, track in enumerate(tracks):
        arr = track.notes.numpy()
        onsets.append(arr["time"] / tpq)
        durations.append(arr["duration"] / tpq)
        pitches.append(arr["pitch"])
        velocities.append(arr["velocity"])
        voices.append(np.full(len(arr["time"]), v))
        names.append(track.name or f"track{v}")
    bpm = 120.0
    if len(score.tempos):
        bpm = float(score.tempos[0].qpm)
    if not (1.0 <= bpm <= 2000.0) or not math.isfinite(bpm):
        raise NotesError(f"{path}: absurd tempo {bpm:g} BPM")
    onset_all, duration_all = np.concatenate(onsets), np.concatenate(durations)
    signatures = [(ts.time / tpq, ts.numerator * 4.0 / ts.denominator) for ts in score.time_signatures
                  if ts.numerator > 0 and ts.denominator > 0]
    return Notes.from_arrays(
        piece_id or path.stem, onset=onset_all, duration=duration_all,
        pitch=np.concatenate(pitches), velocity=np.concatenate(velocities), voice=np.concatenate(voices),
        tempo_bpm=bpm, voice_names=tuple(names), title=path.stem,
        bars=barlines(signatures, float((onset_all + duration_all).max())),
        keys=score_keys([[(k.time / tpq, int(k.key)) for k in score.key_signatures if abs(int(k.key)) <= 7]]),
    )


def barlines(signatures: list[tuple[float, float]], end: float, *, limit: int = 100_000) -> np.ndarray:
    """Onsets (beats) of the measures from 0 to ``end`` under ``(onset, measure length in beats)``
    time signatures (4/4 until the first one, as MIDI defines); at most ``limit`` measures.

    Examples
    --------
    >>> barlines([(0.0, 3.0), (6.0, 2.0)], 10.0).tolist()
    [0.0, 3.0, 6.0, 8.0, 10.0]
    """
    changes = sorted((t, length) for t, length in signatures if length > 0 and t >= 0)
    out: list[float] = []
    t, length = 0.0, 4.0
    k = 0
    while t <= end + 1e-9 and len(out) < limit:
        while k < len(changes) and changes[k][0] <= t + 1e-9:
            length = changes[k][1]
            k += 1
        out.append(t)
        nxt = t + length
        if k < len(changes) and changes[k][0] < nxt - 1e-9:
            nxt = changes[k][0]  # a time signature in mid-measure starts a new one
        t = nxt
    return np.array(out)


def read_note_csv(
    path: str | Path, *, data: bytes | None = None, piece_id: str | None = None, max_notes: int = MAX_NOTES
) -> Notes:
    """A JKUPDD-style headerless note CSV: onset (beats), MIDI pitch, morphetic pitch, duration (beats), staff.

    Onsets and durations are rounded to 1/1000 beat (the files carry 10 decimals with rounding
    errors). A CSV with only two columns (onset, pitch: the JKUPDD occurrence files) is read
    with unit durations and one staff.
    """
    path = Path(path)
    raw = _load(path, data)
    try:
        table = np.loadtxt(io.StringIO(raw.decode("utf-8", errors="strict")), delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotesError(f"{path}: not a numeric note CSV: {e}") from e
    if table.size == 0:
        raise NotesError(f"{path}: no notes")
    if table.shape[1] not in (2, 5):
        raise NotesError(
            f"{path}: expected 5 columns (onset, MIDI pitch, morphetic pitch, duration, staff) or 2, got {table.shape[1]}"
        )
    if len(table) > max_notes:
        raise NotesError(f"{path}: {len(table)} notes is over the limit of {max_notes}")
    onset = np.round(table[:, 0], 3)
    pitch = np.round(table[:, 1]).astype(int)
    duration = np.round(table[:, 3], 3) if table.shape[1] == 5 else np.ones(len(table))
    morph = np.round(table[:, 2]).astype(int) if table.shape[1] == 5 else None
    staff = np.round(table[:, 4]).astype(int) if table.shape[1] == 5 else np.zeros(len(table), dtype=int)
    if staff.min() < 0:
        raise NotesError(f"{path}: negative staff number")
    staves = np.unique(staff)
    voice = np.searchsorted(staves, staff)
    return Notes.from_arrays(
        piece_id or path.stem, onset=onset, pitch=pitch, duration=duration, voice=voice,
        voice_names=tuple(f"staff{s}" for s in staves), title=path.stem, morph=morph,
    )


READERS = ("auto", "fast", "music21")


def read_score(
    path: str | Path, *, data: bytes | None = None, piece_id: str | None = None, max_notes: int = MAX_NOTES,
    reader: str = "auto",
) -> Notes:
    """MusicXML, kern or abc: one voice per part, ties merged, onsets in beats.

    ``reader``: ``auto`` tries the direct reader of the format (MusicXML, kern) and uses
    ``music21`` for what it does not handle; ``fast`` only the direct reader (raising its
    ``Unsupported``); ``music21`` only music21.

    An abc book holding many tunes gives its first tune; only that tune is parsed (music21 would
    otherwise parse the whole book, a minute for the larger Essen books, to keep one tune).
    """
    path = Path(path)
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    raw = _load(path, data)
    if raw.startswith(b"PK"):
        _check_zip(path, raw)
    suffix = path.suffix.lower()
    if reader != "music21" and suffix in _FAST_SUFFIXES:
        notes = _read_fast(path, raw, suffix, piece_id or path.stem, max_notes, strict=reader == "fast")
        if notes is not None:
            return notes
    elif reader == "fast":
        raise NotesError(f"{path}: no direct reader for {suffix!r} files")
    return _read_music21(path, raw, piece_id=piece_id, max_notes=max_notes)


_FAST_SUFFIXES = (".xml", ".mxl", ".musicxml", ".krn")


def _read_fast(path: Path, raw: bytes, suffix: str, piece_id: str, max_notes: int, *, strict: bool) -> Notes | None:
    """The direct reader's notes, or None where it does not handle the file (``Unsupported``)."""
    from musicwords import kern, musicxml  # noqa: PLC0415

    unsupported = (kern.Unsupported, musicxml.Unsupported)
    try:
        if suffix == ".krn":
            notes = kern.read_kern(raw, source=str(path), piece_id=piece_id, max_notes=max_notes)
        else:
            notes = musicxml.read_musicxml(raw, source=str(path), piece_id=piece_id, max_notes=max_notes)
    except unsupported:
        if strict:
            raise
        return None
    except NotesError:
        raise
    except (RecursionError, MemoryError) as e:
        raise NotesError(f"{path}: cannot parse it: {type(e).__name__}") from e
    except Exception as e:  # a broken file the checks above did not foresee; say what and where
        raise NotesError(f"{path}: cannot parse it: {type(e).__name__}: {e}") from e
    if len(notes) > max_notes:
        raise NotesError(f"{path}: {len(notes)} notes is over the limit of {max_notes}")
    return notes


def _read_music21(path: Path, raw: bytes, *, piece_id: str | None, max_notes: int) -> Notes:
    from music21 import converter  # noqa: PLC0415

    from musicwords.corpus import score_to_notes  # noqa: PLC0415

    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / f"score{path.suffix.lower()}"
            source.write_bytes(raw)
            options: dict[str, Any] = {}
            if path.suffix.lower() == ".abc":
                numbers = re.findall(rb"^X:\s*(\d+)", raw, flags=re.M)
                if len(numbers) > 1:
                    options["number"] = int(numbers[0])
            parsed = converter.parse(source, format=_MUSIC21_FORMATS[path.suffix.lower()], **options)
        notes = score_to_notes(parsed, piece_id=piece_id or path.stem, source=str(path))
    except NotesError:
        raise
    except Exception as e:  # music21 raises many exception types, also from the objects a broken file gives
        raise NotesError(f"{path}: music21 cannot parse it: {type(e).__name__}: {e}") from e
    if len(notes) > max_notes:
        raise NotesError(f"{path}: {len(notes)} notes is over the limit of {max_notes}")
    return notes
