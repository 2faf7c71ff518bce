"""The direct MusicXML and kern readers give music21's notes, note for note, and fall back to music21
for what they do not handle. (The whole corpus: ``benchmarks/compare_readers.py``.)"""

from __future__ import annotations

import io
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from musicwords.io import read_notes, read_score
from musicwords.kern import Unsupported as KernUnsupported
from musicwords.musicxml import Unsupported as XmlUnsupported
from musicwords.notes import Notes, NotesError

# one of each kind: kern with ties, MusicXML compressed, with <backup> and two voices, with chords,
# a three-part trecento piece with triplet-free ties and rests, a Palestrina movement
CORPUS_FILES = ["palestrina/Credo_67_c.krn", "palestrina/Agnus_00.krn", "bach/bwv66.6.mxl", "demos/two-voices.xml",
                "demos/voices_with_chords.xml", "trecento/PMFC_12_22-Benedicamus PMFC12.22.xml"]


def _corpus(rel: str) -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus" / rel


def _same(a: Notes, b: Notes) -> None:
    assert len(a) == len(b)
    assert a.morph is not None and b.morph is not None  # scores spell their notes
    for k in ("voice", "onset", "pitch", "duration", "morph"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert a.voice_names == b.voice_names
    assert (a.title, a.tempo_bpm) == (b.title, b.tempo_bpm)
    assert a.bars is not None and b.bars is not None  # where the measures start
    np.testing.assert_array_equal(a.bars, b.bars)
    assert (a.keys is None) == (b.keys is None)  # the key signatures the score writes
    if a.keys is not None:
        np.testing.assert_array_equal(a.keys, b.keys)


@pytest.mark.parametrize("rel", CORPUS_FILES)
def test_the_direct_reader_gives_music21s_notes(rel: str) -> None:
    path = _corpus(rel)
    fast = read_score(path, reader="fast")  # raises Unsupported if it left the file to music21
    _same(read_score(path, reader="music21"), fast)
    assert len(fast) > 20 and fast.keys is not None


SCORE = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <work><work-title>Test piece</work-title></work>
  <part-list><score-part id="P1"><part-name>Upper</part-name></score-part>
             <score-part id="P2"><part-name>Lower</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>6</divisions><time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <direction><direction-type><metronome><beat-unit>half</beat-unit><per-minute>40</per-minute></metronome>
        </direction-type></direction>
      <note><grace/><pitch><step>D</step><octave>5</octave></pitch><type>eighth</type></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>6</duration><type>quarter</type><voice>1</voice></note>
      <note><chord/><pitch><step>E</step><alter>-1</alter><octave>5</octave></pitch><duration>6</duration><type>quarter</type></note>
      <note><rest/><duration>2</duration><type>quarter</type><voice>1</voice></note>
      <note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><duration>2</duration><type>quarter</type><voice>1</voice></note>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration><type>quarter</type><tie type="start"/>
        <voice>1</voice></note>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>6</duration><type>quarter</type>
        <tie type="stop"/><tie type="start"/>
        <voice>1</voice></note>
      <backup><duration>18</duration></backup>
      <forward><duration>12</duration></forward>
      <note><pitch><step>B</step><octave>3</octave></pitch><duration>6</duration><type>quarter</type><voice>2</voice></note>
    </measure>
    <measure number="2">
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>12</duration><type>quarter</type>
        <tie type="stop"/><voice>1</voice></note>
    </measure>
  </part>
  <part id="P2">
    <measure number="1">
      <attributes><divisions>1</divisions><time><beats>3</beats><beat-type>4</beat-type></time></attributes>
    </measure>
    <measure number="2"><note><pitch><step>C</step><octave>3</octave></pitch><duration>3</duration>
      <type>quarter</type></note></measure>
  </part>
</score-partwise>
"""


def test_musicxml_chords_backup_forward_ties_grace_and_an_empty_measure(tmp_path: Path) -> None:
    fast = read_score("t.xml", data=SCORE.encode(), reader="fast")
    # C5+Eb5 at 0; rest; F#4 at 1 + 1/3; G4 tied 1 2/3 -> 5 (over the bar); B3 in voice 2 after a forward of 2;
    # the grace note is dropped; part 2's empty first measure lasts a 3/4 bar, so its C3 starts at 3
    rows = sorted(zip(fast.voice.tolist(), fast.onset.tolist(), fast.pitch.tolist(), fast.duration.tolist(), strict=True))
    assert rows == [(0, 0.0, 72, 1.0), (0, 0.0, 75, 1.0), (0, 4 / 3, 66, 1 / 3), (0, 5 / 3, 67, 5.0 - 5 / 3),
                    (0, 2.0, 59, 1.0), (1, 3.0, 48, 3.0)]
    assert fast.voice_names == ("Upper", "Lower") and fast.title == "Test piece" and fast.tempo_bpm == 80.0
    spelled = sorted(zip(fast.voice.tolist(), fast.onset.tolist(), fast.morph.tolist(), strict=True))
    assert [m for _, _, m in spelled] == [67, 69, 63, 64, 59, 53]  # C5 Eb5 (not D#5), F#4 (not Gb4), G4, B3, C3
    (tmp_path / "t.xml").write_text(SCORE)
    _same(read_score(tmp_path / "t.xml", reader="music21"), fast)
    buf = io.BytesIO()  # the same score compressed
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="s/t.xml"/></rootfiles></container>')
        z.writestr("s/t.xml", SCORE)
    _same(read_score("t.mxl", data=buf.getvalue(), reader="fast"), fast)


KERN = """!!!OTL: Two lines
**kern\t**kern
*Ibass\t*Icant
*MM72\t*MM72
=1\t=1
2C\t4.e-
.\t8f#
4r\t[4g
4D\t4g]
=2\t=2
4.E 4.G\t2a_
8F\t.
2G\t4a]
.\t12b
.\t12cc
.\t12b
*-\t*-
"""


def test_kern_chords_ties_triplets_and_spines_right_to_left(tmp_path: Path) -> None:
    fast = read_score("t.krn", data=KERN.encode(), reader="fast")
    by_voice = {v: sorted(zip(fast.onset[fast.voice == v].tolist(), fast.pitch[fast.voice == v].tolist(),
                              fast.duration[fast.voice == v].tolist(), strict=True)) for v in (0, 1)}
    assert by_voice[1] == [(0.0, 48, 2.0), (3.0, 50, 1.0), (4.0, 52, 1.5), (4.0, 55, 1.5), (5.5, 53, 0.5), (6.0, 55, 2.0)]
    third = 1 / 3  # music21's offsets are exact fractions; so are the fast reader's, until the float at the end
    assert by_voice[0] == [(0.0, 63, 1.5), (1.5, 66, 0.5), (2.0, 67, 2.0), (4.0, 69, 3.0), (7.0, 71, third),
                           (float(Fraction(22, 3)), 72, third), (float(Fraction(23, 3)), 71, third)]
    assert fast.voice_names == ("Soprano", "Bass") and fast.title == "Two lines" and fast.tempo_bpm == 72.0
    # the cantus as written: Eb4 F#4 G4 A4 B4 C5 B4 (a D#4 or a Gb4 would be a step off)
    assert fast.morph[fast.voice == 0].tolist() == [62, 63, 64, 65, 66, 67, 66]
    (tmp_path / "t.krn").write_text(KERN)
    _same(read_score(tmp_path / "t.krn", reader="music21"), fast)
    assert fast.bars.tolist() == [0.0, 4.0] and fast.first_bar == 1 and fast.bar_beat(5.5) == (2, 2.5)


@pytest.mark.parametrize(("kern", "bars", "first_bar", "at"), [
    ("**kern\n4c\n=1\n2d\n2e\n=2\n1f\n==\n*-\n", [0.0, 1.0, 5.0], 0, {0.0: (0, 4.0), 3.0: (1, 3.0), 5.0: (2, 1.0)}),
    ("**kern\n=129\n1c\n=130\n1d\n*-\n", [0.0, 4.0], 129, {4.0: (130, 1.0)}),  # a movement numbered on
    ("**kern\n4c\n4d\n*-\n", None, 1, {1.0: None}),  # no barlines: no measures
])
def test_kern_measures_as_numbered(kern: str, bars: list[float] | None, first_bar: int,
                                   at: dict[float, tuple[int, float] | None]) -> None:
    """A pickup before the first barline is the measure before it; the first number is the score's
    (music21 numbers a kern file's first measure 1 whatever the barline says: read through
    music21, the number comes from the second); no measure starts at the final barline."""
    for reader in ("fast", "music21") if bars else ("fast",):  # the same through music21 (a spine split sends a file
        # there); without barlines music21 makes one measure of it all
        notes = read_score("m.krn", data=kern.encode(), reader=reader)
        assert (None if notes.bars is None else notes.bars.tolist()) == bars and notes.first_bar == first_bar, reader
        assert {t: notes.bar_beat(t) for t in at} == at


# two spines in E flat major, a change to G major at the third measure, and the same (the change
# at the second measure) as MusicXML
KEYED_KERN = "**kern\t**kern\n*Ibass\t*Icant\n*k[b-e-a-]\t*k[b-e-a-]\n=1\t=1\n2e-\t2g\n2f\t2a-\n=2\t=2\n1g\t1b-\n" \
             "*k[f#]\t*k[f#]\n=3\t=3\n1f#\t1a\n*-\t*-\n"


def _keyed_xml() -> str:
    def part(pid: str, pitches: list[tuple[str, int, int]]) -> str:
        notes = [f"<note><pitch><step>{st}</step>{f'<alter>{al}</alter>' if al else ''}<octave>{o}</octave></pitch>"
                 "<duration>2</duration><type>half</type></note>" for st, al, o in pitches]
        return (f'<part id="{pid}"><measure number="1"><attributes><divisions>1</divisions><key><fifths>-3</fifths></key>'
                f"<time><beats>4</beats><beat-type>4</beat-type></time></attributes>{''.join(notes[:2])}</measure>"
                f'<measure number="2"><attributes><key><fifths>1</fifths></key></attributes>{"".join(notes[2:])}'
                "</measure></part>")
    return ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="3.1"><part-list>'
            '<score-part id="P1"><part-name>A</part-name></score-part><score-part id="P2"><part-name>B</part-name>'
            "</score-part></part-list>" + part("P1", [("E", -1, 5), ("F", 0, 5), ("G", 0, 5), ("F", 1, 5)])
            + part("P2", [("G", 0, 4), ("A", -1, 4), ("B", 0, 4), ("A", 0, 4)]) + "</score-partwise>")


@pytest.mark.parametrize(("name", "data", "keys"), [
    ("keyed.krn", KEYED_KERN, [(0.0, -3), (8.0, 1)]),
    ("keyed.xml", _keyed_xml(), [(0.0, -3), (4.0, 1)]),
])
def test_key_signatures_as_the_score_writes_them(tmp_path: Path, name: str, data: str, keys: list[tuple[float, int]]) -> None:
    fast = read_score(name, data=data.encode(), reader="fast")
    assert fast.keys is not None and [(t, int(k)) for t, k in fast.keys.tolist()] == keys
    assert fast.fifths_at(0.0) == -3 and fast.fifths_at(keys[1][0]) == 1
    (tmp_path / name).write_text(data)
    _same(read_score(tmp_path / name, reader="music21"), fast)  # music21 reads the same signatures
    # MIDI keeps its key signature events, where a file has them (music21 writes the first)
    import music21

    midi = tmp_path / "keyed.mid"
    music21.converter.parse(tmp_path / name).write("midi", fp=str(midi))
    assert read_notes(midi).fifths_at(0.0) == -3
    # without one (a note CSV, most MIDI): none, and a word's key signature is then estimated
    assert Notes.from_arrays("x", onset=[0], pitch=[60], duration=[1]).keys is None


SPLIT = "**kern\n*M2/4\n=1\n2c\n*^\n=2\t=2\n4d\t2f\n4e\t.\n*v\t*v\n=3\n2g\n*-\n"  # a spine splits in two, and joins


@pytest.mark.parametrize(("name", "data", "unsupported"), [
    ("split.krn", SPLIT, KernUnsupported),
    ("staves.xml", SCORE.replace("<divisions>6</divisions>", "<divisions>6</divisions><staves>2</staves>"), XmlUnsupported),
    ("typeless.xml", SCORE.replace("<duration>12</duration><type>quarter</type>", "<duration>12</duration>"), XmlUnsupported),
])
def test_what_the_direct_reader_does_not_handle_goes_to_music21(tmp_path: Path, name: str, data: str,
                                                                unsupported: type[Exception]) -> None:
    with pytest.raises(unsupported):
        read_score(name, data=data.encode(), reader="fast")
    (tmp_path / name).write_text(data)
    _same(read_score(tmp_path / name, reader="music21"), read_score(name, data=data.encode()))  # auto: music21's


@pytest.mark.parametrize(("name", "data", "match"), [
    ("entities.xml", SCORE.replace("<score-partwise", '<!DOCTYPE score-partwise [<!ENTITY t "x">]>\n<score-partwise', 1),
     "entities"),
    ("broken.xml", SCORE[: len(SCORE) // 2], "not well-formed"),
    ("none.krn", "!!!OTL: nothing\n**kern\n4r\n*-\n", "no pitched notes"),
    ("high.krn", "**kern\n4cccccccccc\n*-\n", "MIDI pitches"),
])
def test_bad_files_give_a_notes_error_naming_the_file(name: str, data: str, match: str) -> None:
    with pytest.raises(NotesError, match=match) as info:
        read_score(name, data=data.encode())
    assert name in str(info.value)


def test_the_note_limit_holds_in_the_direct_readers() -> None:
    for name, data in (("t.krn", KERN), ("t.xml", SCORE)):
        with pytest.raises(NotesError, match="limit|more than"):
            read_score(name, data=data.encode(), max_notes=3)


@pytest.mark.slow
def test_the_kern_reader_survives_mutated_files() -> None:
    """Fuzzing as tests/test_untrusted_input.py does, on a seed the direct kern reader reads (its
    own kern seed has a **dynam spine, which goes to music21)."""
    from hypothesis import given

    from jobs.sandbox import Sandbox
    from musicwords.io import read_notes
    from tests.test_untrusted_input import FUZZ, LIMIT_S, MUTATIONS, _survives, mutate

    seed = _corpus("palestrina/Agnus_00.krn").read_bytes()
    with Sandbox(LIMIT_S, preload=("musicwords.io", "musicwords.kern", "music21.humdrum.instruments")) as box:
        assert len(box(read_notes, "seed.krn", data=seed, reader="fast")) > 100

        @FUZZ
        @given(ops=MUTATIONS)
        def check(ops: list[tuple[str, int, Any]]) -> None:
            _survives(box, read_notes, NotesError, "fuzz.krn", data=mutate(seed, ops))

        check()
