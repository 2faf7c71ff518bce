"""Where BPS-motif's annotated motifs lie among the streams of each voice separation.

For the motif layer's choice of streams (``DiscoverConfig.motif_voices``): per method, the share
of annotated statements that lie whole in one stream, and for ``skyline`` (the top line of each
part: the only method that drops notes) the share of all notes and of the annotated motif notes
it keeps. Reads the tuning half by default.

    python benchmarks/motif_lines.py [--split tune|test|all] [--path DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicwords.evaluate import SPLITS, default_path, load_bps, split_pieces  # noqa: E402
from musicwords.voices import METHODS, separate_voices  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="tune")
    parser.add_argument("--path", default=None, help="BPS-motif folder (default: ../shared/data/bps-motif-dev)")
    args = parser.parse_args()
    path = args.path or default_path("bps")
    if path is None:
        sys.exit("no BPS-motif folder: give --path or set BPS_MOTIF")
    pieces = split_pieces(load_bps(path), args.split)
    print(f"{len(pieces)} movements ({args.split})")
    for method in METHODS:
        notes_in = notes_all = motif_in = motif_all = whole = statements = 0
        for _, notes, ref in pieces:
            streams = separate_voices(notes, method=method).streams
            stream_of = {int(i): k for k, s in enumerate(streams) for i in s}
            index = {(round(float(t), 2), float(p)): i for i, (t, p) in enumerate(zip(notes.onset, notes.pitch, strict=True))}
            motif_notes = {index[pt] for pattern in ref for occ in pattern for pt in occ if pt in index}
            notes_all += len(notes)
            notes_in += len(stream_of)
            motif_all += len(motif_notes)
            motif_in += len(motif_notes & set(stream_of))
            for pattern in ref:
                for occ in pattern:
                    ids = [index[pt] for pt in occ if pt in index]
                    if len(ids) >= 2:
                        statements += 1
                        whole += len({stream_of.get(i, -1) for i in ids}) == 1 and all(i in stream_of for i in ids)
        print(f"{method:8s} statements whole in one stream {whole / statements:6.1%}"
              + (f"   keeps {notes_in / notes_all:6.1%} of the notes, {motif_in / motif_all:6.1%} of the motif notes"
                 if method == "skyline" else ""))


if __name__ == "__main__":
    main()
