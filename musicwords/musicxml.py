"""A fast, direct reader for MusicXML (``.xml``, ``.musicxml``, compressed ``.mxl``) into Notes.

music21 builds a full object tree; this reader walks the XML once (over the corpus's 621 files it
reads, 25 ms a file against music21's 665 ms for .mxl, 35 ms against 724 ms for .xml, the same
process: ``benchmarks/compare_readers.py``, load 2-9) and gives what :func:`musicwords.io.read_score` gets from music21
(``benchmarks/compare_readers.py`` checks it over the whole music21 corpus,
``tests/test_fast_readers.py`` on a few files): one voice per ``<part>`` in document order;
onsets in quarter-note beats from ``<duration>``/``<divisions>`` with ``<backup>``, ``<forward>``
and ``<chord/>``, and music21's rule for where the next measure starts (the furthest point
reached, a time signature's length for an empty measure or a slightly overfull one; in a file
written by Finale a ``<forward>`` counts as a hidden rest, as in music21); ties merged
(``<tie>``; a chord note without one takes its chord's); grace notes dropped (no length); rests
skipped; cue notes kept, as music21 keeps them; written pitch (``<transpose>`` ignored, as
music21 does); key signatures from ``<key><fifths>`` (a part's written ones; the score's, the
commonest of its parts' where each is written: :func:`musicwords.notes.score_keys`); no repeat
expansion (music21 does none on import either). Arithmetic goes
through music21's ``opFrac``, so onsets are the same floats.

Safety: an ``.mxl`` is opened only after :func:`musicwords.io` has checked what it unpacks to;
a document that declares entities (``<!ENTITY``) is refused (no expansion, so no "billion
laughs"); no DTD or external entity is ever fetched (expat without external entity handling).

It raises :class:`Unsupported` (and :func:`~musicwords.io.read_score` then uses music21) for
what it does not handle exactly: ``score-timewise``; parts of several staves (music21 splits
them into staves); unpitched notes; microtonal ``<alter>``; an ``<accidental>`` without ``<alter>`` other than
the plain ones (sharp, flat, natural, double, triple); a note without ``<type>`` (music21
then derives a length of its own); composite or free time signatures; chords
whose notes differ in length or mix rests or grace notes; documents in encodings other than
UTF-8, UTF-16 (with a byte-order mark), ASCII and Latin-1.
"""

from __future__ import annotations

import gc
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

from musicwords.notes import Notes, NotesError, score_keys
from musicwords.spelling import morphetic

__all__ = ["Unsupported", "read_musicxml"]

MAX_XML_BYTES = 64 << 20


class Unsupported(Exception):
    """The fast reader does not handle this file exactly; music21 reads it instead."""


_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"sharp": 1.0, "flat": -1.0, "natural": 0.0, "double-sharp": 2.0, "sharp-sharp": 2.0, "flat-flat": -2.0,
               "double-flat": -2.0, "natural-sharp": 1.0, "natural-flat": -1.0, "triple-sharp": 3.0, "triple-flat": -3.0}
_SPANNER_DIRECTIONS = frozenset({"wedge", "bracket", "dashes", "octave-shift", "pedal"})
_UNIT = {"whole": 4.0, "half": 2.0, "quarter": 1.0, "eighth": 0.5, "16th": 0.25, "32nd": 0.125, "breve": 8.0}


def _document(raw: bytes, source: str) -> bytes:
    """The score document of an ``.mxl`` (the container's rootfile), or ``raw`` itself."""
    if not raw.startswith(b"PK"):
        return raw
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            root = None
            if "META-INF/container.xml" in names:
                container = z.read("META-INF/container.xml")
                m = re.search(rb'full-path\s*=\s*"([^"]+)"', container)
                if m and m.group(1).decode("utf-8", "replace") in names:
                    root = m.group(1).decode("utf-8", "replace")
            if root is None:
                root = next((n for n in names if not n.startswith("META-INF") and n.lower().endswith((".xml", ".musicxml"))),
                            None)
            if root is None:
                raise NotesError(f"{source}: the compressed score holds no MusicXML document")
            with z.open(root) as f:
                data = f.read(MAX_XML_BYTES + 1)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, NotImplementedError) as e:
        raise NotesError(f"{source}: corrupt compressed score: {e}") from e
    if len(data) > MAX_XML_BYTES:
        raise NotesError(f"{source}: the score document is over {MAX_XML_BYTES} bytes")
    return data


def _parse_xml(doc: bytes, source: str) -> ET.Element:
    """The document's root; entity declarations refused, in any of the encodings expat reads itself."""
    if doc.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = doc.decode("utf-16", errors="replace")  # to look for declarations; expat reads the bytes
    elif b"\x00" in doc[:200]:
        raise Unsupported("UTF-16 or UTF-32 without a byte-order mark")
    else:
        m = re.search(rb'encoding\s*=\s*["\']([A-Za-z0-9_.:-]+)', doc[:200])
        if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin-1", b"latin1"):
            raise Unsupported(f"encoding {m.group(1).decode()}")
        text = doc.decode("latin-1")  # ASCII-compatible: the markup is where it is in the bytes
    if "<!ENTITY" in text:
        raise NotesError(f"{source}: the document declares XML entities; refused (entity expansion is not allowed)")
    try:
        return ET.fromstring(doc)
    except ET.ParseError as e:
        raise NotesError(f"{source}: not well-formed XML: {e}") from e


def read_musicxml(raw: bytes, *, source: str, piece_id: str, max_notes: int) -> Notes:
    """Notes of a MusicXML document or ``.mxl`` (see the module docstring); :class:`Unsupported` otherwise."""
    was_collecting = gc.isenabled()
    gc.disable()  # a big tree of elements makes the collector walk it over and over: half the time
    try:
        return _read(raw, source=source, piece_id=piece_id, max_notes=max_notes)
    finally:
        if was_collecting:
            gc.enable()


def _read(raw: bytes, *, source: str, piece_id: str, max_notes: int) -> Notes:
    from music21.common.numberTools import opFrac  # noqa: PLC0415  (music21's offsets, to the last bit)

    from musicwords.ties import merge_ties  # noqa: PLC0415

    root = _parse_xml(_document(raw, source), source)
    tag = _local(root.tag)
    if tag == "score-timewise":
        raise Unsupported("score-timewise")
    if tag != "score-partwise":
        raise NotesError(f"{source}: not a MusicXML score (root element <{tag}>)")
    finale = any((s.text or "").strip().startswith("Finale") for s in root.iter("software"))
    parts_info = {sp.get("id"): sp for sp in root.iter("score-part")}
    out_on: list[float] = []
    out_len: list[float] = []
    out_pitch: list[int] = []
    out_voice: list[int] = []
    out_morph: list[int] = []  # the notes' spelling
    names: list[str] = []
    bpm: float | None = None
    bars: list[float] | None = None
    first_bar = 1
    keys: list[list[tuple[float, int]]] = []
    count = 0
    for part in root.findall("part"):
        pid = part.get("id")
        if pid is None and parts_info:
            pid = next(iter(parts_info))
        info = parts_info.get(pid)
        if info is None:
            continue  # music21 skips a part the part-list does not describe
        v = len(names)
        names.append(_part_name(info, pid, v))
        onsets, lengths, pitches, ties, tempo, starts, part_keys = _read_part(part, opFrac, finale=finale)
        keys.append(part_keys)
        if bars is None:
            bars = starts
            first = part.find("measure")
            number = (first.get("number") or "1") if first is not None else "1"
            first_bar = int(number) if number.isdigit() else 1
        # music21 merges ties in the order of its flattened part: by onset, then voice by voice
        # (the order they came in); the document gives each voice's whole measure in turn
        order = sorted(range(len(onsets)), key=onsets.__getitem__)
        onsets, lengths = [onsets[i] for i in order], [lengths[i] for i in order]
        pitches, ties = [pitches[i] for i in order], [ties[i] for i in order]
        if bpm is None and tempo is not None:
            bpm = tempo
        count += len(onsets)
        if count > max_notes:
            raise NotesError(f"{source}: more than {max_notes} notes")
        merge_ties(v, onsets, lengths, [p for p, _ in pitches], ties, out_on, out_len, out_pitch, out_voice,
                   [m for _, m in pitches], out_morph)
    if not out_on:
        raise NotesError(f"{piece_id}: {source} holds no pitched notes")
    title = _title(root)
    try:
        return Notes.from_arrays(
            piece_id, onset=out_on, pitch=out_pitch, duration=out_len, voice=out_voice, tempo_bpm=bpm if bpm else 100.0,
            voice_names=tuple(names), title=title or piece_id, bars=bars or None, first_bar=first_bar, morph=out_morph,
            keys=score_keys(keys),
        )
    except NotesError as e:
        raise NotesError(f"{source}: {e}") from e


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _part_name(info: ET.Element, pid: str | None, v: int) -> str:
    """The part's name as :func:`musicwords.corpus.score_to_notes` takes it from music21: music21's
    own ``<score-part>`` parser names the part (its instrument table decides), a few ms a part."""
    from music21.musicxml.xmlToM21 import PartParser  # noqa: PLC0415

    parser = PartParser(mxScorePart=info)
    parser.parseXmlScorePart()
    part: Any = parser.stream
    return str(part.partName or (part.id if isinstance(part.id, str) else "") or f"part{v}")


def _title(root: ET.Element) -> str:
    """music21's title: the work title, unless it only repeats the movement title."""
    work = _text(root.find("work/work-title"))
    return "" if work == _text(root.find("movement-title")) else work


def _tie(note: ET.Element) -> str | None:
    """music21's ``xmlToTie``: one type, or ``continue`` for a start and a stop, else a bare Tie (start)."""
    found = [t.get("type") for t in note.findall("tie")]
    if not found:
        return None
    types = [t for t in found if t is not None]
    if len(types) == 1:
        return types[0]
    if "start" in types and "stop" in types:
        return "continue"
    return "start"


def _pitch(note: ET.Element) -> tuple[int, int]:
    """MIDI pitch and morphetic pitch (the note's spelling: :func:`musicwords.spelling.morphetic`)."""
    p = note.find("pitch")
    if p is None:
        if note.find("unpitched") is not None:
            raise Unsupported("unpitched notes")
        raise Unsupported("a note without a pitch")
    step = _text(p.find("step"))
    if step not in _STEP:
        raise NotesError(f"pitch step {step!r}")
    alter_text = _text(p.find("alter"))
    accidental = _text(note.find("accidental"))
    if alter_text:
        alter = float(alter_text)
    elif accidental:  # music21 takes an <accidental> without <alter> as the pitch's (editorial ficta, say)
        if accidental not in _ACCIDENTAL:
            raise Unsupported(f"accidental {accidental!r} without <alter>")
        alter = _ACCIDENTAL[accidental]
    else:
        alter = 0.0
    if alter != int(alter):
        raise Unsupported("microtonal alter")
    octave = int(_text(p.find("octave")))
    return 12 * (octave + 1) + _STEP[step] + int(alter), morphetic(octave, step)


def _read_part(part: ET.Element, opFrac: Any, *, finale: bool) -> tuple[
        list[float], list[float], list[tuple[int, int]], list[str | None], float | None, list[float], list[tuple[float, int]]]:
    """One part's notes in score order (chord notes at their chord's onset; pitches as ``(MIDI,
    morphetic)``), its first tempo, where its measures start and its key signatures (``(onset,
    fifths)``; a non-traditional key, written by its steps, is left out)."""
    onsets: list[float] = []
    lengths: list[float] = []
    pitches: list[tuple[int, int]] = []
    ties: list[str | None] = []
    tempo: float | None = None
    divisions: float | None = None
    bar = 4.0  # a time signature's length in quarters (music21's default: 4/4)
    raw_offset: Any = 0.0  # music21's PartParser.lastMeasureOffset
    starts: list[float] = []
    keys: list[tuple[float, int]] = []
    for measure in part.findall("measure"):
        m_offset = opFrac(raw_offset)
        starts.append(float(m_offset))
        pos: Any = 0.0
        highest: Any = 0.0
        notes_or_rests = False
        elements = list(measure)
        group: list[ET.Element] = []
        for k, el in enumerate(elements):
            tag = el.tag
            if tag == "note":
                nxt = elements[k + 1] if k + 1 < len(elements) else None
                group.append(el)
                if nxt is not None and nxt.tag == "note" and nxt.find("chord") is not None:
                    continue  # music21 gathers the chord's notes first
                if divisions is None:
                    raise Unsupported("a note before any <divisions>")
                length = _group(group, pos, m_offset, divisions, opFrac, onsets, lengths, pitches, ties)
                group = []
                notes_or_rests = True
                highest = max(highest, opFrac(pos + length))
                pos = opFrac(pos + length)
            elif tag == "backup":
                d = _text(el.find("duration"))
                if d:
                    if divisions is None:
                        raise Unsupported("<backup> before any <divisions>")
                    pos = max(opFrac(pos - float(d) / divisions), 0.0)
            elif tag == "forward":
                d = _text(el.find("duration"))
                if d:
                    if divisions is None:
                        raise Unsupported("<forward> before any <divisions>")
                    change = opFrac(float(d) / divisions)
                    if finale:  # music21 fills a Finale file's forward with a hidden rest
                        highest = max(highest, opFrac(pos + change))
                        notes_or_rests = True
                    pos = opFrac(pos + change)
            elif tag == "attributes":
                if el.find("staves") is not None and int(_text(el.find("staves")) or "1") > 1:
                    raise Unsupported("a part of several staves")
                d = _text(el.find("divisions"))
                if d:
                    divisions = float(d)
                    if not divisions > 0:
                        raise NotesError(f"<divisions> of {d}")
                time_el = el.find("time")
                if time_el is not None:
                    bar = _bar(time_el, opFrac)
                fifths = _text(el.find("key/fifths"))
                if fifths and fifths.lstrip("-").isdigit() and abs(int(fifths)) <= 7:
                    keys.append((float(opFrac(m_offset + pos)), int(fifths)))
                highest = max(highest, pos)
            elif tag in ("direction", "harmony", "figured-bass"):
                if tag == "direction" and tempo is None:
                    tempo = _direction_tempo(el)
                kinds = {c.tag for t in el.findall("direction-type") for c in t}
                if tag == "direction" and kinds and kinds <= _SPANNER_DIRECTIONS:
                    continue  # music21 makes spanners of these, nothing that sits in the measure
                at = pos
                shift_text = _text(el.find("offset"))
                if shift_text and divisions is not None:  # music21 places it <offset> away (xmlToOffset)
                    at = opFrac(pos + opFrac(float(shift_text) / divisions))
                highest = max(highest, at)
            elif tag == "sound" and tempo is None and el.get("tempo"):
                tempo = _float(el.get("tempo"))
        if group:
            raise Unsupported("a chord left open at the end of a measure")
        if highest == bar:
            shift = highest
        elif highest > bar:
            diff = highest - bar
            shift = highest if (diff > 0.5 or _near(diff, 0.0625) or _near(diff, 1 / 12)) else bar
        elif highest == 0.0 and not notes_or_rests:
            shift = bar  # music21 fills an empty measure with a bar's rest
        else:
            shift = highest
        raw_offset = raw_offset + shift
    return onsets, lengths, pitches, ties, tempo, starts, keys


def _near(x: Any, step: float) -> bool:
    """music21's ``nearestMultiple(x, step)[1] < 1e-6``."""
    n = round(float(x) / step)
    return abs(float(x) - n * step) < 1e-6


def _float(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if value == value else None


def _direction_tempo(direction: ET.Element) -> float | None:
    for m in direction.iter("metronome"):
        unit = _text(m.find("beat-unit"))
        per = _float(_text(m.find("per-minute")))
        if unit in _UNIT and per:
            return per * _UNIT[unit] * (1.5 if m.find("beat-unit-dot") is not None else 1.0)
    sound = direction.find("sound")
    if sound is not None and sound.get("tempo"):
        return _float(sound.get("tempo"))
    return None


def _bar(time_el: ET.Element, opFrac: Any) -> Any:
    if time_el.find("senza-misura") is not None:
        raise Unsupported("senza-misura")
    beats = [_text(b) for b in time_el.findall("beats")]
    types = [_text(b) for b in time_el.findall("beat-type")]
    if len(beats) != 1 or len(types) != 1 or not beats[0].isdigit() or not types[0].isdigit() or int(types[0]) == 0:
        raise Unsupported(f"time signature {beats}/{types}")
    return opFrac(int(beats[0]) * 4 / int(types[0]))


def _group(group: list[ET.Element], pos: Any, m_offset: Any, divisions: float, opFrac: Any, onsets: list[float],
           lengths: list[float], pitches: list[tuple[int, int]], ties: list[str | None]) -> Any:
    """Append a note, rest or chord at ``pos``; its length in quarters (0 for grace notes)."""
    grace = [n.find("grace") is not None for n in group]
    rest = [n.find("rest") is not None for n in group]
    if len(group) > 1 and (any(rest) or len(set(grace)) > 1):
        raise Unsupported("a chord mixing rests or grace notes")
    if grace[0]:
        return 0.0
    if any(n.find("type") is None and n.find("rest") is None for n in group):
        raise Unsupported("a note without <type>")  # music21 gives these lengths of its own
    durations = []
    for n in group:
        d = _text(n.find("duration"))
        durations.append(opFrac(float(d) / divisions) if d else 0.0)
    if len(set(durations)) > 1:
        raise Unsupported("a chord of notes of different lengths")
    length = durations[0]
    if rest[0] or not length > 0:
        return length
    onset = float(opFrac(m_offset + pos))
    member_ties = [_tie(n) for n in group]
    chord_tie = next((t for t in member_ties if t is not None), None)
    for n, t in zip(group, member_ties, strict=True):
        onsets.append(onset)
        lengths.append(float(length))
        pitches.append(_pitch(n))
        ties.append(t if t is not None else chord_tie)
    return length
