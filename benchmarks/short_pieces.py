"""Short songs alone and together: how many get a motif when each is discovered on its own, and
when a book of them is discovered in one call (as the ``words`` job does per group).

The music21 corpus's Essen folk-song books (abc): the first ``--songs`` songs of each of the first
``--books`` books. A folk song of 15 to 100 notes states a motif two to four times; alone, such a
repeat rarely passes the motif layer's rules (a compression ratio of 2 needs four statements of a
four-note motif, three of a six-note one) and its significance bound (a short piece holds little
evidence against chance). Together, the motifs that the songs of a book share are heard often
enough.

    python benchmarks/short_pieces.py [--books 4] [--songs 40]
"""

from __future__ import annotations

import argparse
import glob
import os

from musicwords.corpus import score_to_notes
from musicwords.discover import DiscoverConfig, discover


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--books", type=int, default=4)
    ap.add_argument("--songs", type=int, default=40)
    args = ap.parse_args()
    from music21 import converter, corpus

    books = sorted(glob.glob(os.path.join(os.path.dirname(corpus.__file__), "essenFolksong", "*.abc")))[: args.books]
    cfg = DiscoverConfig()
    print(f"{'book':14s} {'songs':>5s} {'notes':>6s}  alone: songs with a motif  together: motifs, songs where heard")
    for path in books:
        scores = list(converter.parse(path).scores)[: args.songs]
        songs = [score_to_notes(s, piece_id=f"{os.path.basename(path)}:{i}", source=path) for i, s in enumerate(scores)]
        alone = sum(bool(discover([n], cfg).motifs) for n in songs)
        together = discover(songs, cfg).motifs
        heard = {piece for m in together for piece, _ in m.occurrences}
        print(f"{os.path.basename(path):14s} {len(songs):5d} {sum(len(n) for n in songs):6d}  "
              f"{alone:>24d}  {len(together):>9d}, {len(heard)}")


if __name__ == "__main__":
    main()
