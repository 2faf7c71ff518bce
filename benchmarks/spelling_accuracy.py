"""How often the estimated pitch spelling gives the annotated diatonic step (for input without spelling: MIDI).

The BPS-motif and JKUPDD notes are spelled (morphetic pitch). Each piece is spelled again from its
MIDI pitches alone, by :func:`musicwords.spelling.diatonic_pitch` (the piece's key, each pitch
class a fixed degree of the tonic that Krumhansl-Schmuckler finds). Scored: the share of
consecutive notes of one staff whose step in morphetic pitch is the annotated one (what diatonic
tokens see; an enharmonic passage spelled consistently costs only the steps where it begins and
ends), the mean over pieces.

    python benchmarks/spelling_accuracy.py [--bps DIR] [--jkupdd DIR]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from musicwords.evaluate import default_path, load_bps, load_jkupdd, split_pieces
from musicwords.notes import Notes
from musicwords.spelling import diatonic_pitch


def step_accuracy(notes: Notes) -> float:
    """Share of a spelled piece's steps within a staff that its spelling estimated from MIDI pitch gets right."""
    assert notes.morph is not None
    true, est = notes.morph.astype(np.int64), diatonic_pitch(dataclasses.replace(notes, morph=None))
    same = [np.diff(est[s]) == np.diff(true[s]) for s in (np.flatnonzero(notes.voice == v) for v in np.unique(notes.voice))]
    return float(np.mean(np.concatenate(same)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bps", default=default_path("bps"))
    ap.add_argument("--jkupdd", default=default_path("jkupdd"))
    args = ap.parse_args()
    sets = {}
    bps = load_bps(args.bps)
    for split in ("tune", "test"):
        sets[f"BPS-motif, {split} half"] = [n for _, n, _ in split_pieces(bps, split)]
    sets["JKUPDD (polyphonic)"] = [n for _, n, _ in load_jkupdd(args.jkupdd, "polyphonic")]
    print(f"{'notes':28s} {'pieces':>6s} {'steps right':>12s}")
    for name, pieces in sets.items():
        spelled = [n for n in pieces if n.morph is not None]
        right = np.mean([step_accuracy(n) for n in spelled])
        print(f"{name:28s} {len(spelled):6d} {right:12.3f}")


if __name__ == "__main__":
    main()
