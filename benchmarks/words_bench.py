"""Music-words speed: the E-step against SentencePiece's unigram trainer, MIDI parsers, and a
whole-collection dictionary build.

Run: ``.venv/bin/python benchmarks/words_bench.py [--pieces N]`` (one process, one core:
``taskset -c 0`` to be strict). Prints, on the Bach chorales + Palestrina parts of the music21
corpus tokenised as the library does:

1. throughput in tokens/s of the SentencePiece unigram trainer (``sentencepiece``, C++, one
   thread) on the token streams mapped to characters, beside ours on the same streams: our whole
   dictionary learning (all EM + MDL rounds: the like-for-like figure, and the ratio), and one
   E-step (forward-backward over every segmentation) of our numba lattice;
2. MIDI parsing: symusic vs mido vs pretty_midi on the same files (ms per file);
3. the wall time of ``learn_dictionary`` on the Bach chorales.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from musicwords.corpus import list_pieces, load_notes  # noqa: E402
from musicwords.em import EMConfig, learn_dictionary  # noqa: E402
from musicwords.lattice import build_lattice, forward_backward  # noqa: E402
from musicwords.midi import notes_to_midi_bytes, playable_notes  # noqa: E402
from musicwords.tokens import SEPARATOR, Alphabet, tokenize  # noqa: E402
from musicwords.voices import separate_voices  # noqa: E402


def load(composers: list[str], limit: int | None) -> list:
    pieces = []
    for ref in list_pieces(composers, limit=limit):
        try:
            pieces.append(load_notes(ref))
        except Exception as e:  # a corpus file music21 cannot read is skipped, and said
            print(f"  skipped {ref.id}: {e}", file=sys.stderr)
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=None, help="at most this many pieces per composer (default: all)")
    args = parser.parse_args()

    t0 = time.time()
    bach = load(["bach"], args.pieces)
    palestrina = load(["palestrina"], args.pieces)
    print(f"parsed {len(bach)} Bach and {len(palestrina)} Palestrina pieces with music21 in {time.time() - t0:.0f} s")

    # 3. dictionary build on the Bach chorales (also gives the dictionary for the E-step)
    alphabet = Alphabet()
    streams = tokenize([(n, separate_voices(n)) for n in bach], alphabet)
    t0 = time.time()
    d = learn_dictionary(streams, alphabet, EMConfig())
    build = time.time() - t0
    print(f"Bach chorales: {streams.n_tokens:,} tokens, {len(d.words) - d.n_literals} words, "
          f"{d.history[0]:,.0f} -> {d.code_length:,.0f} bits, dictionary built in {build:.1f} s")

    # 1. Throughput on Bach + Palestrina: one E-step, our whole dictionary learning, SentencePiece's
    both = tokenize([(n, separate_voices(n)) for n in bach + palestrina], alphabet)
    t0 = time.time()
    d_both = learn_dictionary(both, alphabet, EMConfig())
    ours_train = both.n_tokens / (time.time() - t0)
    lattice = build_lattice(both.tokens, d_both.words, d_both.n_literals)
    reps = 5
    t0 = time.time()
    for _ in range(reps):
        forward_backward(lattice, d_both.logp)
    ours_estep = reps * both.n_tokens / (time.time() - t0)

    import sentencepiece as spm

    chars = [chr(0x4E00 + t) for t in range(len(alphabet))]  # one CJK character per token
    lines = []
    seq: list[str] = []
    for t in both.tokens.tolist():
        if t == SEPARATOR:
            if seq:
                lines.append("".join(seq))
            seq = []
        else:
            seq.append(chars[t])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "streams.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        t0 = time.time()
        spm.SentencePieceTrainer.train(
            input=path, model_prefix=os.path.join(tmp, "m"), model_type="unigram",
            vocab_size=len(alphabet) + len(d_both.words), character_coverage=1.0, num_threads=1,
            max_sentence_length=1 << 20, split_by_whitespace=False, minloglevel=2, hard_vocab_limit=False,
        )
        spm_seconds = time.time() - t0
    theirs = both.n_tokens / spm_seconds
    print(f"Bach + Palestrina, {both.n_tokens:,} tokens, one thread:")
    print(f"  sentencepiece unigram training: {theirs:,.0f} tokens/s ({spm_seconds:.1f} s)")
    print(f"  ours, whole dictionary learning (EM + MDL rounds): {ours_train:,.0f} tokens/s "
          f"-> ratio ours/sentencepiece = {ours_train / theirs:.2f}")
    print(f"  ours, one E-step (forward-backward, {len(lattice.start):,} lattice edges): {ours_estep:,.0f} tokens/s")

    # 2. MIDI parsers on the same pieces
    import mido
    import pretty_midi
    import symusic

    files = [notes_to_midi_bytes(playable_notes(n)) for n in bach[:50]]
    timings = {}
    for name, parse in (
        ("symusic", lambda b: symusic.Score.from_midi(b)),
        ("mido", lambda b: mido.MidiFile(file=io.BytesIO(b))),
        ("pretty_midi", lambda b: pretty_midi.PrettyMIDI(io.BytesIO(b))),
    ):
        t0 = time.time()
        for b in files:
            parse(b)
        timings[name] = (time.time() - t0) / len(files) * 1000
    print("MIDI parse, ms per chorale: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
          + f"; symusic is {timings['pretty_midi'] / timings['symusic']:.0f}x faster than pretty_midi")


if __name__ == "__main__":
    main()
