"""Music-words library: planted motifs, EM invariants, readers and their errors."""

from __future__ import annotations

import glob
from pathlib import Path

import mido
import numpy as np
import pytest

from musicwords.discover import DiscoverConfig, discover
from musicwords.em import Dictionary, EMConfig, _merge_candidates, _Spellings, learn_dictionary
from musicwords.io import read_midi, read_note_csv, read_notes
from musicwords.lattice import build_lattice, extend_lattice, forward_backward
from musicwords.midi import notes_to_midi_bytes, playable_notes
from musicwords.notes import Notes, NotesError
from musicwords.synthetic import planted_corpus
from musicwords.tokens import SEPARATOR, Alphabet, tokenize
from musicwords.voices import separate_voices


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_motifs_are_recovered(seed: int) -> None:
    corpus = planted_corpus(seed=seed, n_pieces=8, n_motifs=4, occurrences=3)
    result = discover(corpus.pieces, DiscoverConfig(extend="none", coverage=1.0))  # every word, ranked
    top = result.patterns[: len(corpus.motifs)]
    for m, truth in enumerate(corpus.occurrences):
        want = {(p, tuple(idx.tolist())) for p, idx in truth}
        shares = [len(want & {(p, tuple(idx.tolist())) for p, idx in pat.occurrences}) / len(want) for pat in top]
        assert max(shares) >= 0.9, f"motif {m}: best share {max(shares):.2f}"
        # the word is the motif exactly: same length in notes
        best = top[int(np.argmax(shares))]
        assert len(result.dictionary.words[best.word]) + 1 == len(corpus.motifs[m][0])


def test_random_music_has_no_words() -> None:
    rng = np.random.default_rng(5)
    pieces = [Notes.from_arrays(f"r{i}", onset=np.cumsum(rng.choice([0.5, 1.0, 1.5], 200)),
                                pitch=rng.integers(40, 90, 200), duration=np.ones(200)) for i in range(3)]
    result = discover(pieces, DiscoverConfig(extend="none"))
    assert result.patterns == []


def test_code_length_never_rises_and_em_is_deterministic() -> None:
    corpus = planted_corpus(seed=3, n_pieces=6)

    def learn() -> tuple[list[float], list[tuple[int, ...]], np.ndarray]:
        alphabet = Alphabet()
        streams = tokenize([(n, separate_voices(n)) for n in corpus.pieces], alphabet)
        d = learn_dictionary(streams, alphabet, EMConfig())
        return d.history, d.words, d.logp

    history, words, logp = learn()
    assert len(history) >= 2
    assert all(b < a for a, b in zip(history, history[1:], strict=False))
    history2, words2, logp2 = learn()
    assert history2 == history and words2 == words and np.array_equal(logp2, logp)


def test_midi_round_trip_keeps_every_note(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 300
    notes = playable_notes(Notes.from_arrays(
        "rt", onset=np.round(rng.uniform(0, 60, n) * 4) / 4, pitch=rng.integers(30, 100, n),
        duration=rng.choice([0.25, 0.5, 1.0, 2.0], n), voice=rng.integers(0, 3, n), velocity=rng.integers(20, 120, n),
        tempo_bpm=96.0,
    ))
    path = tmp_path / "rt.mid"
    path.write_bytes(notes_to_midi_bytes(notes))
    back = read_midi(path)
    assert len(back) == len(notes)
    assert back.tempo_bpm == pytest.approx(96.0)
    for field in ("onset", "duration", "pitch", "voice", "velocity"):
        assert np.allclose(getattr(back, field), getattr(notes, field)), field
    assert len(playable_notes(back)) == len(notes)  # nothing left to merge: the file was playable


def test_jkupdd_csv_matches_annotations(jkupdd: Path) -> None:
    pieces = sorted(glob.glob(str(jkupdd / "groundTruth" / "*" / "polyphonic" / "csv" / "*.csv")))
    assert len(pieces) == 5
    for csv in pieces:
        notes = read_note_csv(csv)
        assert len(notes) == len(Path(csv).read_text().strip().splitlines())
        points = {(round(float(t), 2), int(p)) for t, p in zip(notes.onset, notes.pitch, strict=True)}
        root = Path(csv).parents[1] / "repeatedPatterns"
        for occ in root.glob("*/*/occurrences/csv/*.csv"):
            rows = np.loadtxt(occ, delimiter=",", ndmin=2)
            assert read_note_csv(occ).pitch.size == len(rows)
            assert {(round(float(t), 2), int(round(p))) for t, p in rows} <= points, occ


def _drums_only() -> bytes:
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0))
    track.append(mido.Message("note_off", channel=9, note=36, velocity=0, time=480))
    mid.tracks.append(track)
    import io

    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _absurd_tempo() -> bytes:
    n = playable_notes(Notes.from_arrays("t", onset=[0, 1], pitch=[60, 62], duration=[1, 1]))
    data = bytearray(notes_to_midi_bytes(n))
    i = data.index(b"\xff\x51\x03")  # set_tempo: 3 bytes of microseconds per beat
    data[i + 3 : i + 6] = (1).to_bytes(3, "big")  # 1 µs per beat = 60,000,000 BPM
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.mid", b"", "empty file"),
        ("corrupt.mid", b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0garbage", "corrupt MIDI"),
        ("text.mid", b"hello world", "not a MIDI file"),
        ("drums.mid", _drums_only(), "no pitched notes"),
        ("tempo.mid", _absurd_tempo(), "absurd tempo"),
        ("bad.csv", b"1,2,3\nx,y,z\n", "not a numeric note CSV"),
        ("piece.txt", b"1", "unknown file type"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(NotesError, match=message) as info:
        read_notes(path)
    assert name in str(info.value)


def test_one_note_is_a_clear_error() -> None:
    one = Notes.from_arrays("lonely", onset=[0.0], pitch=[60], duration=[1.0])
    with pytest.raises(NotesError, match="lonely: too few notes"):
        discover([one])


def test_voice_separation_keeps_monophonic_lines_whole() -> None:
    n = Notes.from_arrays("leaps", onset=np.arange(6), pitch=[40, 80, 42, 85, 41, 90], duration=np.ones(6))
    assert [s.tolist() for s in separate_voices(n).streams] == [[0, 1, 2, 3, 4, 5]]
    chords = Notes.from_arrays("ch", onset=[0, 0, 1, 1, 2], pitch=[72, 60, 74, 59, 76], duration=[1, 1, 1, 1, 1])
    lines = separate_voices(chords).streams
    assert [chords.pitch[s].tolist() for s in lines] == [[72, 74, 76], [60, 59]]
    assert [chords.pitch[s].tolist() for s in separate_voices(chords, method="skyline").streams] == [[72, 74, 76]]


def test_discover_cli_writes_every_output(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import mir_eval
    import pyarrow.parquet as pq

    corpus = planted_corpus(seed=4, n_pieces=1, n_motifs=3, occurrences=4)
    midi = tmp_path / "planted.mid"
    midi.write_bytes(notes_to_midi_bytes(playable_notes(corpus.pieces[0])))
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd broken")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "musicwords", "discover", str(midi), str(bad), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1  # one input failed ...
    assert "broken.mid" in result.stderr and "Traceback" not in result.stderr  # ... and says so
    patterns = mir_eval.io.load_patterns(str(out / "planted.patterns.txt"))
    assert len(patterns) >= 3
    motif_lengths = sorted(len(m[0]) for m in corpus.motifs)
    assert sorted(len(p[0]) for p in patterns[:3]) == motif_lengths
    assert all(len(p) == 4 for p in patterns[:3])  # every planted occurrence
    words = pq.read_table(out / "planted.dictionary.parquet").to_pylist()
    assert [w["count"] for w in words] == [len(p) for p in patterns]
    occurrences = pq.read_table(out / "planted.occurrences.parquet")
    assert occurrences.num_rows == sum(len(p) for p in patterns)
    summary = json.loads((out / "planted.dictionary.json").read_text())
    assert summary["piece"]["compression_ratio"] > 1.0
    assert summary["code_length_history"] == sorted(summary["code_length_history"], reverse=True)
    tracks = read_midi(out / "planted.words.mid")
    assert len(tracks) == len(corpus.pieces[0])  # every note, once
    assert len(tracks.voice_names) == len(patterns) + 1
    for png in ("planted.pianoroll.png", "planted.words.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_cli_prints_means_for_both_versions(jkupdd: Path) -> None:
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "musicwords", "evaluate", "--path", str(jkupdd), "--json", "--per-piece"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    means = json.loads(result.stdout)
    lines = result.stderr.splitlines()  # a line per piece of each version, naming the version
    assert [line.split()[0] for line in lines] == ["polyphonic"] * 5 + ["monophonic"] * 5
    for version in ("polyphonic", "monophonic"):
        row = means[version]
        assert set(row) >= {"F_est", "P_est", "R_est", "F_occ_75", "F_occ_50", "F_3", "box_iou"}
        assert all(0.0 <= row[k] <= 1.0 for k in ("F_est", "F_3", "box_iou"))


def test_box_iou_and_occurrence_threshold() -> None:
    from musicwords.evaluate import box_iou, evaluate_piece

    occ = [(0.0, 60.0), (1.0, 62.0), (2.0, 64.0), (3.0, 65.0)]
    ref = [[occ, [(t + 8, p) for t, p in occ]]]
    assert box_iou(ref, ref) == pytest.approx(1.0)
    shifted = [[[(t + 1, p) for t, p in o] for o in ref[0]]]  # half the time span overlaps
    assert box_iou(ref, shifted) == pytest.approx(2 / 4)
    assert box_iou(ref, []) == 0.0
    # half of each occurrence found: the pair is scored at c = 0.5 (score 0.5), left out at c = 0.75
    half = [[o[:2] for o in ref[0]]]
    m = evaluate_piece(ref, half)
    assert m["F_occ_50"] == pytest.approx(0.5) and m["F_occ_75"] == 0.0


def test_alphabet_round_trips_through_json() -> None:
    import json

    corpus = planted_corpus(seed=5, n_pieces=2)
    alphabet = Alphabet()
    tokens = tokenize([(n, separate_voices(n)) for n in corpus.pieces], alphabet)
    again = Alphabet.from_json(json.loads(json.dumps(alphabet.to_json())))
    assert again.symbols == alphabet.symbols and again.config == alphabet.config
    # the stored alphabet spells new music with the same ids
    same = tokenize([(n, separate_voices(n)) for n in corpus.pieces], again, grow=False)
    assert np.array_equal(same.tokens, tokens.tokens)


def test_maximal_extension_grows_a_word_to_the_phrase_its_statements_share() -> None:
    from musicwords.reconstruct import Occurrence, _extend

    # a 10-note phrase stated three times, transposed; the word found covers its notes 3..6 only
    phrase_pitch = np.array([60, 62, 64, 65, 67, 69, 71, 72, 74, 76])
    rng = np.random.default_rng(0)
    pitch, onset = [], []
    t = 0.0
    for k in (0, 5, -3):
        filler = rng.integers(40, 50, 4)  # a different bridge each time, in another register
        pitch += list(filler) + list(phrase_pitch + k)
        onset += [t + i for i in range(14)]
        t += 14
    n = Notes.from_arrays("phrase", onset=np.array(onset, dtype=float), pitch=np.array(pitch), duration=np.ones(len(pitch)))
    occs = [Occurrence(piece=0, word=0, stream=0, notes=np.arange(s + 4 + 3, s + 4 + 7), start=0.0, end=0.0,
                       pitch_lo=0, pitch_hi=0) for s in (0, 14, 28)]
    grown = _extend(occs, [n], 1.0, grow=True)
    assert [idx.tolist() for _, idx in grown] == [list(range(s + 4, s + 14)) for s in (0, 14, 28)]
    plain = _extend(occs, [n], 1.0)
    assert [idx.tolist() for _, idx in plain] == [o.notes.tolist() for o in occs]


def test_a_motif_that_also_recurs_outside_a_repeated_section_is_reported_beside_it() -> None:
    rng = np.random.default_rng(3)
    motif = np.array([0, 7, 5, 4, 2, 0])
    section = rng.integers(55, 80, 60)
    parts = [section, section]  # a long section played twice ...
    for k in (2, -3, 4, 1):  # ... and a motif that recurs between other music
        parts += [rng.integers(50, 85, 12), 62 + k + motif]
    pitch = np.concatenate(parts)
    n = Notes.from_arrays("sect", onset=np.arange(len(pitch), dtype=float), pitch=pitch, duration=np.ones(len(pitch)))
    configs = {"default": DiscoverConfig(), "new_bits": DiscoverConfig(select="new_bits"),
               "coverage 0.8": DiscoverConfig(coverage=0.8), "every saving word": DiscoverConfig(significance=None)}
    lengths, results = {}, {}
    for name, cfg in configs.items():
        results[name] = result = discover([n], cfg)
        lengths[name] = sorted(len(result.dictionary.words[p.word]) + 1 for p in result.patterns)
    for name in ("default", "new_bits"):
        assert len(motif) in lengths[name], lengths
        assert max(lengths[name]) >= 50, lengths  # the section is reported as well
    assert len(motif) not in lengths["coverage 0.8"], lengths  # the section makes 80 % of the bits saved alone
    # significance: only words saving more than log2(n_words / 0.05) bits, a subset of every saving word
    d = results["default"].dictionary
    floor = np.log2((len(d.words) - d.n_literals) / 0.05)
    assert all(p.bits_saved > floor for p in results["default"].patterns)
    assert {p.word for p in results["default"].patterns} <= {p.word for p in results["every saving word"].patterns}
    with pytest.raises(ValueError, match="significance"):
        discover([n], DiscoverConfig(significance=2.0))


def _reference_forward_backward(tokens: np.ndarray, words: list[tuple[int, ...]], logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Expected counts and log Z by a plain log-sum-exp over every match, stream by stream."""
    counts = np.zeros(len(words))
    log_z = 0.0
    cuts = np.flatnonzero(tokens == SEPARATOR)
    for stream in np.split(tokens, cuts + 1):
        t = [int(x) for x in stream if x != SEPARATOR]
        if not t:
            continue
        n = len(t)
        edges = [(s, s + len(w), i) for i, w in enumerate(words) for s in range(n - len(w) + 1)
                 if tuple(t[s : s + len(w)]) == w]
        alpha = np.full(n + 1, -np.inf)
        beta = np.full(n + 1, -np.inf)
        alpha[0] = beta[n] = 0.0
        for p in range(1, n + 1):
            alpha[p] = np.logaddexp.reduce([alpha[s] + logp[w] for s, e, w in edges if e == p] or [-np.inf])
        for p in range(n - 1, -1, -1):
            beta[p] = np.logaddexp.reduce([beta[e] + logp[w] for s, e, w in edges if s == p] or [-np.inf])
        for s, e, w in edges:
            counts[w] += np.exp(alpha[s] + logp[w] + beta[e] - alpha[n])
        log_z += alpha[n]
    return counts, float(log_z)


def test_forward_backward_matches_a_plain_log_sum_exp() -> None:
    """The ratio-based passes against the textbook recursion, with a long word over rare tokens
    (its ratio leaves the range of a double: the exponential path), a word at -inf, overlapping
    words and several streams."""
    rng = np.random.default_rng(11)
    n_lit = 6
    long_word = tuple(rng.integers(0, n_lit, 160).tolist())
    streams = []
    for _ in range(4):
        parts = [rng.integers(0, n_lit, rng.integers(3, 30)).tolist() for _ in range(3)]
        streams.append(parts[0] + list(long_word) + parts[1] + [0, 1, 2, 0, 1, 2, 0, 1] + parts[2])
    tokens = np.array([x for s in streams for x in [*s, SEPARATOR]], dtype=np.int64)
    words = [(i,) for i in range(n_lit)] + [(0, 1), (1, 2), (0, 1, 2), (2, 0, 1), (0, 1, 2, 0, 1, 2), long_word,
                                            long_word[:80], (5, 5)]
    logp = rng.normal(0, 3, len(words))
    logp[:n_lit] -= 8.0  # rare tokens: 160 of them are ~1e-600 on their own
    logp[len(words) - 1] = -np.inf  # a word no one may use
    logp -= np.log(np.exp(logp).sum())
    lattice = build_lattice(tokens, words, n_lit)
    counts, log_z = forward_backward(lattice, logp)
    want_counts, want_z = _reference_forward_backward(tokens, words, logp)
    assert log_z == pytest.approx(want_z, rel=1e-12)
    np.testing.assert_allclose(counts, want_counts, rtol=1e-9, atol=1e-12)
    assert counts[len(words) - 1] == 0.0
    assert counts[n_lit + 5] > 0.5  # the long word is used, through the exponential path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_lattice_extended_by_new_words_is_the_lattice_built_with_them(seed: int) -> None:
    """Each round's trial lattice is the accepted one plus the candidates' matches: the same
    arrays as matching every word again, from a built and from a restricted lattice."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 4, 3000)
    tokens[rng.integers(0, 3000, 60)] = SEPARATOR
    found: set[tuple[int, ...]] = set()
    while len(found) < 80:
        a = int(rng.integers(0, 2990))
        word = tuple(tokens[a : a + int(rng.integers(2, 7))].tolist())
        if SEPARATOR not in word:
            found.add(word)
    literals = [(t,) for t in range(4)]
    old, new = sorted(found)[:50], sorted(found)[50:]
    fields = ("start", "end", "word", "end_ptr", "by_start", "start_ptr", "end_bs", "word_bs", "is_sep")
    base = build_lattice(tokens, literals + old, 4)
    extended = extend_lattice(base, tokens, new, 4 + len(old))
    built = build_lattice(tokens, literals + old + new, 4)
    assert len(extended.start) > len(base.start)
    for f in fields:
        assert np.array_equal(getattr(extended, f), getattr(built, f)), f
    new_id = np.full(4 + len(old), -1)
    kept = [w for i, w in enumerate(literals + old) if i < 4 or i % 3]
    new_id[[i for i in range(4 + len(old)) if i < 4 or i % 3]] = np.arange(len(kept))
    extended = extend_lattice(base.restricted(new_id), tokens, new, len(kept))
    built = build_lattice(tokens, kept + new, 4)
    for f in fields:
        assert np.array_equal(getattr(extended, f), getattr(built, f)), f


def test_a_repeat_longer_than_a_word_is_proposed_once_not_as_all_its_windows() -> None:
    """A piece that is in the corpus twice, longer than ``max_word_tokens``: every window of it
    recurs; the merge candidates take windows whose first statements do not overlap (at most the
    piece's length in all, where each of its hundreds of windows came before), and a motif stated
    ten times elsewhere is still proposed."""
    rng = np.random.default_rng(3)
    piece = rng.integers(0, 12, 400).tolist()
    motif = [12, 13, 14, 15, 16]
    other = [x for _ in range(10) for x in [*rng.integers(0, 12, 7).tolist(), *motif]]
    tokens = np.array([*piece, SEPARATOR, *piece, SEPARATOR, *other, SEPARATOR], dtype=np.int64)
    alphabet = Alphabet()
    d = Dictionary(alphabet=alphabet, words=[(t,) for t in range(17)], logp=np.full(17, -np.log(17)),
                   counts=np.ones(17), n_literals=17, base_bits=np.full(17, np.log2(17)), n_tokens=len(tokens))
    config = EMConfig(max_word_tokens=64, merge_candidates=1000)
    cands = _merge_candidates(d, tokens, config, set(d.words))
    text = " ".join(map(str, piece))
    in_piece = [w for w, c in cands if c == 2 and f" {' '.join(map(str, w))} " in f" {text} "]  # its windows
    assert 0 < sum(map(len, in_piece)) <= len(piece)
    assert max(map(len, in_piece)) == 64
    assert tuple(motif) in [w for w, _ in cands]


def test_a_dropped_word_hands_its_count_to_its_best_spelling() -> None:
    words = [(0,), (1,), (2,), (3,), (0, 1), (2, 3), (0, 1, 2, 3), (1, 2)]
    spellings = _Spellings(words, 4)
    alive = np.ones(len(words), dtype=bool)
    alive[6] = False
    bits = np.array([5.0, 5.0, 5.0, 5.0, 3.0, 3.0, np.inf, 2.0])  # (0 1)(2 3): 6 bits; 0 (1 2) 3: 12
    counts = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 7.0, 4.0])
    spellings.hand_over(alive, bits, np.array([6]), counts)
    assert counts.tolist() == [1.0, 1.0, 1.0, 1.0, 9.0, 10.0, 0.0, 4.0]
