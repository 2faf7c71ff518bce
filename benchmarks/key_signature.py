"""The key signature and metre a word's MusicXML gets where the input does not write them.

A word's MusicXML (``musicwords.report.word_musicxml``) is written in the key signature the score
writes where its first statement stands (``Notes.keys``, read from kern ``*k[...]``, MusicXML
``<key>``, music21's parts and MIDI key signature events; ``benchmarks/compare_readers.py``
checks the direct readers' against music21's), and where the input writes none (most MIDI files,
note CSVs) in the one that spells its piece's notes with the fewest accidentals
(:func:`musicwords.spelling.key_fifths`); its metre is the measure's length
(:meth:`musicwords.notes.Notes.bar_length`). This checks the estimate against what the scores
write, on the scores of the music21 corpus (every ``--every``-th ``.krn .xml .mxl .musicxml``
file, in name order): notes as the words job reads them (``musicwords.io.read_notes``), the
score's first key signature and time signature as music21 reads them. Printed per format, the
share of files where

* ``key_fifths`` of the spelled notes is the score's first key signature (a score that changes
  signature is counted against its first);
* ``key_fifths`` of the notes spelled from MIDI pitch alone (the key estimate, as for MIDI
  input) is the score's signature: what a MIDI file without key signature events gets;
* the first full measure's length is the first time signature's (a compound metre such as 6/8
  counts as right: the MusicXML writes its length, 3/4).

    python benchmarks/key_signature.py [--every 6] [--jobs 2]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import multiprocessing
import warnings
from pathlib import Path
from typing import Any

SUFFIXES = (".krn", ".xml", ".mxl", ".musicxml")


def _check(path: str) -> dict[str, Any]:
    import music21

    from musicwords.io import read_notes
    from musicwords.spelling import key_fifths

    warnings.simplefilter("ignore")
    out: dict[str, Any] = {"format": Path(path).suffix.lower().lstrip(".").replace("musicxml", "xml").replace("mxl", "xml")}
    try:
        notes = read_notes(path)
        score = music21.converter.parse(path)
    except Exception as e:  # noqa: BLE001 - a file either reader refuses is counted, not checked
        out["error"] = type(e).__name__
        return out
    keys = list(score.recurse().getElementsByClass("KeySignature"))
    meters = list(score.recurse().getElementsByClass("TimeSignature"))
    if keys and notes.morph is not None:
        out["key"] = key_fifths(notes) == keys[0].sharps
        out["key_from_midi"] = key_fifths(dataclasses.replace(notes, morph=None)) == keys[0].sharps
    if meters and notes.bars is not None and len(notes.bars) > 2:
        length = notes.bar_length(float(notes.bars[1]))  # the first full measure (the first may be a pickup)
        out["meter"] = length is not None and abs(length - float(meters[0].barDuration.quarterLength)) < 1e-6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=6, help="check every n-th file of the corpus (default 6)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    import music21

    root = Path(music21.__file__).parent / "corpus"
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)[:: args.every]
    with multiprocessing.Pool(args.jobs) as pool:
        rows = pool.map(_check, files, chunksize=4)
    by_format: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_format[r["format"]].append(r)
    for fmt, rs in sorted(by_format.items()):
        parts = [f"{fmt}: {len(rs)} files ({sum('error' in r for r in rs)} unread)"]
        for key, what in (("key", "key signature from the spelling"), ("key_from_midi", "from MIDI pitch alone"),
                          ("meter", "measure length")):
            checked = [r[key] for r in rs if key in r]
            if checked:
                parts.append(f"{what} {sum(checked)}/{len(checked)} = {sum(checked) / len(checked):.1%}")
        print("; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
