"""Music-words speed: the E-step against SentencePiece's unigram trainer, MIDI parsers, and a
whole-collection dictionary build.

Run: ``.venv/bin/python benchmarks/words_bench.py [--pieces N]`` (one process, one core:
``taskset -c 0`` to be strict). Prints, on the Bach chorales + Palestrina parts of the music21
corpus tokenised as the library does:

1. throughput in tokens/s of the SentencePiece unigram trainer (``sentencepiece``, C++, one
   thread, in a child process) on the token streams mapped to characters, beside ours on the same
   streams: one E-step each at the final dictionary (ours: building the lattice, then forward-backward over every
   segmentation with our numba lattice; SentencePiece's: the time between two lines its trainer
   logs after consecutive E-step + M-step), and the whole learning (all our EM + MDL rounds
   against all of SentencePiece's training), with the ratios;
2. MIDI parsing: symusic vs mido vs pretty_midi on the same files (ms per file);
3. the wall time of ``learn_dictionary`` on the Bach chorales.

Times are given as wall clock and as CPU time (``time.process_time`` of the process that does
the work; the SentencePiece trainer runs on one thread): on a shared machine the wall
clock also counts the time spent waiting for a core, the CPU time does not. ``--cache FILE``
keeps the tokenised corpus (parsing ~1700 pieces with music21 takes minutes): written on the
first run, read on the next ones (then only 50 chorales are parsed, for the MIDI timings).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from musicwords.corpus import list_pieces, load_notes  # noqa: E402
from musicwords.em import EMConfig, learn_dictionary  # noqa: E402
from musicwords.lattice import build_lattice, forward_backward  # noqa: E402
from musicwords.midi import notes_to_midi_bytes, playable_notes  # noqa: E402
from musicwords.tokens import SEPARATOR, Alphabet, TokenStreams, tokenize  # noqa: E402
from musicwords.voices import separate_voices  # noqa: E402


def load(composers: list[str], limit: int | None) -> list:
    pieces = []
    for ref in list_pieces(composers, limit=limit):
        try:
            pieces.append(load_notes(ref))
        except Exception as e:  # a corpus file music21 cannot read is skipped, and said
            print(f"  skipped {ref.id}: {e}", file=sys.stderr)
    return pieces


_FIELDS = ("tokens", "piece", "stream", "note", "prev_note")


def save_streams(path: Path, alphabet: Alphabet, **streams: TokenStreams) -> None:
    arrays = {f"{name}.{f}": getattr(ts, f) for name, ts in streams.items() for f in _FIELDS}
    meta = {"alphabet": alphabet.to_json(),
            "names": {name: [list(ts.piece_ids), list(ts.stream_names)] for name, ts in streams.items()}}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def load_streams(path: Path) -> tuple[Alphabet, dict[str, TokenStreams]]:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        out = {name: TokenStreams(**{f: z[f"{name}.{f}"] for f in _FIELDS}, piece_ids=tuple(ids), stream_names=tuple(names))
               for name, (ids, names) in meta["names"].items()}
    return Alphabet.from_json(meta["alphabet"]), out


def clocks() -> tuple[float, float]:
    return time.time(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``start``."""
    return time.time() - start[0], time.process_time() - start[1]


_SPM_CHILD = """
import json, sys, time
import sentencepiece as spm
kwargs = json.loads(sys.argv[1])
wall, cpu = time.time(), time.process_time()
spm.SentencePieceTrainer.train(minloglevel=0, **kwargs)
print(json.dumps([time.time() - wall, time.process_time() - cpu]))
"""


def train_sentencepiece(**kwargs: object) -> tuple[float, float, int, tuple[float, int] | None]:
    """Train SentencePiece in a child process and time it: wall and CPU seconds of the training
    call, the number of its EM iterations, and ``(seconds, pieces)`` of its last E-step (None if
    no two lines of one group were logged).

    The trainer logs one such line after each E-step + M-step (the pruning step runs between
    two groups of sub-iterations), so two consecutive lines of the same group are one E-step apart.
    The lines are timed by this process as they arrive (the trainer writes its log unbuffered).
    """
    proc = subprocess.Popen([sys.executable, "-c", _SPM_CHILD, json.dumps(kwargs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    n_iterations = 0
    last: tuple[float, int, int] | None = None  # (arrival time, sub_iter, size) of the previous line
    step: tuple[float, int] | None = None
    log: collections.deque[str] = collections.deque(maxlen=20)
    for line in proc.stderr:
        log.append(line)
        m = re.search(r"EM sub_iter=(\d+) size=(\d+)", line)
        if m:
            now, sub_iter, size = time.time(), int(m.group(1)), int(m.group(2))
            if last is not None and sub_iter == last[1] + 1:
                step = (now - last[0], last[2])  # the E-step ran on the model of the previous line
            last = (now, sub_iter, size)
            n_iterations += 1
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError("sentencepiece training failed:\n" + "".join(log))
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return wall, cpu, n_iterations, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=None, help="at most this many pieces per composer (default: all)")
    parser.add_argument("--cache", type=Path, default=None, help="npz file keeping the tokenised corpus between runs")
    parser.add_argument("--spm-vocab", type=int, default=None,
                        help="SentencePiece's vocabulary size (default: the alphabet plus our dictionary's words with the "
                             "literals); its training time grows as the size falls (more pruning steps)")
    args = parser.parse_args()

    if args.cache and args.cache.exists():
        alphabet, cached = load_streams(args.cache)
        streams, both = cached["bach"], cached["both"]
        bach = load(["bach"], 50)
        print(f"token streams read from {args.cache}; parsed {len(bach)} Bach chorales for the MIDI timings")
    else:
        t0 = time.time()
        bach = load(["bach"], args.pieces)
        palestrina = load(["palestrina"], args.pieces)
        print(f"parsed {len(bach)} Bach and {len(palestrina)} Palestrina pieces with music21 in {time.time() - t0:.0f} s")
        alphabet = Alphabet()
        streams = tokenize([(n, separate_voices(n)) for n in bach], alphabet)
        both = tokenize([(n, separate_voices(n)) for n in bach + palestrina], alphabet)
        if args.cache:
            save_streams(args.cache, alphabet, bach=streams, both=both)
    learn_dictionary(streams, alphabet, EMConfig.debug())  # compiles the numba kernels (cached on disk after)

    # 3. dictionary build on the Bach chorales (also gives the dictionary for the E-step)
    # the alphabet as it was after the chorales alone (ids are given in order of first use)
    alphabet_bach = Alphabet(config=alphabet.config, symbols=alphabet.symbols[: int(streams.tokens.max()) + 1])
    start = clocks()
    d = learn_dictionary(streams, alphabet_bach, EMConfig())
    build, build_cpu = since(start)
    print(f"Bach chorales: {streams.n_tokens:,} tokens, {len(d.words) - d.n_literals} words, "
          f"{d.history[0]:,.0f} -> {d.code_length:,.0f} bits, dictionary built in {build:.1f} s ({build_cpu:.1f} s CPU)")

    # 1. Throughput on Bach + Palestrina: one E-step, our whole dictionary learning, SentencePiece's
    start = clocks()
    d_both = learn_dictionary(both, alphabet, EMConfig())
    ours_wall, ours_cpu = since(start)
    reps = 5
    start = clocks()
    for _ in range(reps):  # the lattice built every time, as SentencePiece's E-step builds its own
        lattice = build_lattice(both.tokens, d_both.words, d_both.n_literals)
        forward_backward(lattice, d_both.logp)
    estep_wall, estep_cpu = since(start)

    spm_vocab = args.spm_vocab or len(alphabet) + len(d_both.words)
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
        spm_wall, spm_cpu, spm_iterations, spm_step = train_sentencepiece(
            input=path, model_prefix=os.path.join(tmp, "m"), model_type="unigram",
            vocab_size=spm_vocab, character_coverage=1.0, num_threads=1,
            max_sentence_length=1 << 20, split_by_whitespace=False, hard_vocab_limit=False,
        )
    n = both.n_tokens
    print(f"Bach + Palestrina, {n:,} tokens, one thread (tokens/s by wall clock | by CPU time):")
    print(f"  sentencepiece unigram training: {n / spm_wall:,.0f} | {n / spm_cpu:,.0f} tokens/s "
          f"({spm_wall:.1f} s | {spm_cpu:.1f} s CPU, {spm_iterations} EM iterations, vocabulary {spm_vocab:,})")
    print(f"  ours, whole dictionary learning (EM + MDL rounds, {len(d_both.rounds) - 1} rounds, "
          f"{len(d_both.words) - d_both.n_literals} words): {n / ours_wall:,.0f} | {n / ours_cpu:,.0f} tokens/s "
          f"({ours_wall:.1f} s | {ours_cpu:.1f} s CPU)")
    print(f"  -> whole learning, ratio ours/sentencepiece = {spm_wall / ours_wall:.2f} by wall clock, "
          f"{spm_cpu / ours_cpu:.2f} by CPU time")
    estep = reps * n / estep_wall
    print(f"  ours, one E-step (building the lattice, {len(lattice.start):,} edges, and forward-backward over it, "
          f"{len(d_both.words):,} words with the literals): {estep:,.0f} | {reps * n / estep_cpu:,.0f} tokens/s")
    if spm_step is None:
        print("  sentencepiece, one E-step: not timed (its log had no two EM lines of one group)")
    else:
        seconds, size = spm_step
        print(f"  sentencepiece, one E-step (+ M-step) on its last model ({size:,} pieces), timed between its log lines: "
              f"{n / seconds:,.0f} tokens/s by wall clock ({seconds:.2f} s)")
        print(f"  -> E-step, ratio ours/sentencepiece = {estep * seconds / n:.2f} by wall clock")

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
