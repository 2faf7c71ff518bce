"""Music-words at the motif level: the BPS-motif evaluation, honest figures, levels, the idiom null."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicwords.discover import DiscoverConfig, discover
from musicwords.notes import Notes
from musicwords.spelling import key_fifths
from musicwords.synthetic import markov_melodies, planted_corpus


def _bps_folder(root: Path, movements: list[str]) -> None:
    """A BPS-motif-shaped folder: a motif stated eight times per movement, in two staves."""
    (root / "csv_notes").mkdir(parents=True)
    for name in movements:
        rows, onset = [], 0.0
        motif = [0, 7, 4, 5, 2, 9, 11, 3]
        rng = np.random.default_rng(int(name[:2]))
        occurrences = []
        for k in range(8):
            filler = rng.integers(60, 80, 5).tolist()
            for p in filler:
                rows.append((onset, p, 1.0, 0, ""))
                onset += 1.0
            occ = []
            for step in motif:
                rows.append((onset, 60 + 3 * k + step, 0.5, 0, "a"))
                occ.append((onset, 60 + 3 * k + step))
                onset += 0.5
            occurrences.append(occ)
            rows.append((onset - 4.0, 40, 4.0, 1, ""))  # a bass note under it
        lines = ["onset,midi_number,morphetic_number,duration,staff_number,measure,type"]
        lines += [f"{t},{p},{p},{d},{s},1,{kind}" for t, p, d, s, kind in rows]
        (root / "csv_notes" / f"{name}.csv").write_text("\n".join(lines) + "\n")
        folder = root / "motif_notes" / name.split("-")[0]
        folder.mkdir(parents=True)
        for k, occ in enumerate(occurrences, start=1):
            (folder / f"A-{k}.csv").write_text("".join(f"{t},{p}.0,{p}.0,0.5,0.0,1.0\n" for t, p in occ))


def test_bps_movements_load_split_in_halves_and_evaluate_from_the_command_line(tmp_path: Path) -> None:
    from musicwords.evaluate import load_bps, split_pieces

    names = ["01-1", "02-1", "03-1", "04-1"]
    _bps_folder(tmp_path, names)
    pieces = load_bps(tmp_path)
    assert [p[0] for p in pieces] == names
    name, notes, ref = pieces[0]
    assert notes.voice_names == ("staff0", "staff1") and len(ref) == 1 and len(ref[0]) == 8
    assert ref[0][0][:2] == [(5.0, 60.0), (5.5, 67.0)]
    tune, test = split_pieces(pieces, "tune"), split_pieces(pieces, "test")
    assert [p[0] for p in tune] == ["01-1", "03-1"] and [p[0] for p in test] == ["02-1", "04-1"]
    assert not {p[0] for p in tune} & {p[0] for p in test}
    with pytest.raises(FileNotFoundError, match="no BPS-motif movements"):
        load_bps(tmp_path / "missing")
    unannotated = tmp_path / "unannotated"
    _bps_folder(unannotated, ["01-1"])
    shutil.rmtree(unannotated / "motif_notes" / "01")
    with pytest.raises(FileNotFoundError, match="01-1: no annotated motifs"):
        load_bps(unannotated)

    run = subprocess.run([sys.executable, "-m", "musicwords", "evaluate", "--dataset", "bps", "--path", str(tmp_path),
                          "--split", "test", "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    row = json.loads(run.stdout)["polyphonic"]
    assert {"F_est", "F_3", "box_iou", "box_iou_penalised"} <= set(row)
    assert row["R_est"] > 0.5  # the planted motif is found
    ablation = ["--layer", "motifs", "--motif-voices", "none", "--max-motif-notes", "none", "--no-texture",
                "--motif-words", "mdl"]
    run = subprocess.run([sys.executable, "-m", "musicwords", "evaluate", "--dataset", "bps", "--path", str(tmp_path),
                          "--split", "test", "--json", *ablation], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["polyphonic"]["R_est"] > 0.5
    run = subprocess.run([sys.executable, "-m", "musicwords", "evaluate", "--dataset", "bps", "--path", str(tmp_path),
                          "--split", "test", "--json", "--layer", "motifs", "--per-pattern"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    row = json.loads(run.stdout)["polyphonic"]
    lines = [line for line in run.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == row["n_patterns"] * 2 > 0  # a line per found pattern of the two test movements
    assert any("best match: annotated pattern 1 of 1, 1.00" in line for line in lines)  # the planted motif
    run = subprocess.run([sys.executable, "-m", "musicwords", "evaluate", "--max-motif-notes", "3"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "shortest motif" in run.stderr


def test_pattern_matches_are_the_establishment_matrix() -> None:
    """Per found pattern, its best annotated match: the means of the matrix's best entries are
    mir_eval's establishment precision and recall; a pattern that matches nothing scores 0."""
    import mir_eval

    from musicwords.evaluate import pattern_matches

    rng = np.random.default_rng(0)
    occurrence = lambda: [(float(t), float(p)) for t, p in zip(rng.integers(0, 40, 6), rng.integers(58, 66, 6), strict=True)]  # noqa: E731
    ref = [[occurrence() for _ in range(int(rng.integers(1, 4)))] for _ in range(4)]
    est = [[o[: int(rng.integers(2, 7))] for o in p] for p in ref[:3]] + [[[(500.0, 30.0), (501.0, 31.0)]]]
    matches = pattern_matches(ref, est)
    _, precision, recall = mir_eval.pattern.establishment_FPR(ref, est)
    assert matches.shape == (4, 4) and matches[:, 3].max() == 0.0
    assert matches.max(axis=0).mean() == pytest.approx(precision) and matches.max(axis=1).mean() == pytest.approx(recall)


def test_the_penalised_box_iou_falls_when_boxes_are_missed_or_added() -> None:
    from musicwords.evaluate import box_iou, box_iou_penalised

    occ = [(0.0, 60.0), (1.0, 62.0), (2.0, 64.0)]
    ref = [[[(t + 10 * k, p) for t, p in occ] for k in range(10)]]
    one_found = [ref[0][:1]]
    junk = [[[(500.0 + 10 * k, 30.0), (501.0, 31.0)]] for k in range(200)]
    assert box_iou(ref, ref) == box_iou_penalised(ref, ref) == pytest.approx(1.0)
    # the paper's figure cannot tell these from a perfect answer; the penalised one can
    assert box_iou(ref, one_found) == pytest.approx(1.0)
    assert box_iou_penalised(ref, one_found) == pytest.approx(0.1)
    assert box_iou(ref, [*ref, *junk]) == pytest.approx(1.0)
    assert box_iou_penalised(ref, [*ref, *junk]) == pytest.approx(10 / 210)
    assert box_iou_penalised(ref, []) == 0.0


def test_every_pattern_carries_its_level_and_parts_and_the_command_writes_each_level(tmp_path: Path) -> None:
    from musicwords.reconstruct import LEVELS, level_of, word_parts
    from musicwords.report import word_tree

    # a phrase of two motifs, stated as a whole four times, and its motifs also on their own
    rng = np.random.default_rng(7)
    a, b = np.array([0, 4, 7, 12, 7, 4]), np.array([0, -2, -3, -5, -7, -8])
    parts = []
    for k in range(4):
        parts += [rng.integers(40, 90, 9), 60 + k + np.concatenate([a, a[-1] + 2 + b])]
        parts += [rng.integers(40, 90, 9), 65 - k + a, rng.integers(40, 90, 9), 70 + k + b]
    pitch = np.concatenate(parts)
    n = Notes.from_arrays("tree", onset=np.arange(len(pitch), dtype=float), pitch=pitch, duration=np.ones(len(pitch)))
    result = discover([n], DiscoverConfig(extend="none", significance=None))
    d = result.dictionary
    assert result.patterns
    for p in result.patterns:
        assert p.level == level_of(d, p.word) and p.parts == word_parts(d, p.word)
    assert {p.level for p in result.patterns} >= {"motif", "phrase"}
    phrase = next(p for p in result.patterns if p.level == "phrase")
    assert any(level_of(d, part) == "motif" for part in phrase.parts)
    tree = word_tree(result)
    assert len(tree) == len(result.patterns) and any(line.startswith(f"phrase w{phrase.word} = ") for line in tree)

    csv = tmp_path / "tree.csv"
    csv.write_text("".join(f"{t},{p},{p},1.0,0\n" for t, p in zip(n.onset, n.pitch, strict=True)))
    run = subprocess.run([sys.executable, "-m", "musicwords", "discover", str(csv), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import mir_eval

    together = mir_eval.io.load_patterns(str(tmp_path / "out" / "tree.patterns.txt"))
    per_level = [tmp_path / "out" / f"tree.patterns.{level}.txt" for level in LEVELS]
    n_per_level = sum(f.read_text().count("pattern") for f in per_level)
    assert n_per_level == len(together) > 0
    summary = json.loads((tmp_path / "out" / "tree.dictionary.json").read_text())
    assert all(w["level"] in LEVELS for w in summary["words"]) and len(summary["tree"]) == len(together)
    motifs = (tmp_path / "out" / "tree.motifs.txt").read_text().count("pattern")
    assert motifs == len(summary["motifs"]) > 0


def test_nested_occurrences_save_their_bits_once() -> None:
    from musicwords.em import Dictionary
    from musicwords.reconstruct import Occurrence, rank_words
    from musicwords.tokens import Alphabet

    # the theme (0 1 0 1) is on the segmentation three times; its motif (0 1) only inside it
    words = [(0,), (1,), (0, 1), (0, 1, 0, 1)]
    d = Dictionary(Alphabet(), words, np.log(np.array([0.3, 0.3, 0.1, 0.3])), np.ones(4), 2, np.array([3.0, 3.0]), 100)

    def occ(word: int, depth: int) -> Occurrence:
        return Occurrence(piece=0, word=word, stream=0, notes=np.arange(3), start=0.0, end=0.0, pitch_lo=0, pitch_hi=0,
                          token=0, depth=depth)

    occurrences = [occ(3, 0) for _ in range(3)] + [occ(2, 1) for _ in range(6)]
    ranked = {w: (saved, count) for w, saved, count in rank_words(d, occurrences)}
    costs = d.word_costs()
    per_use = 6.0 + np.log2(0.1)
    assert ranked[2][1] == 6  # heard six times ...
    assert d.spelling(3) == [(0, 2), (2, 2)]  # the dictionary spells the theme as the motif twice
    assert ranked[2][0] == pytest.approx(2 * per_use - costs[2])  # ... so it saves twice, not six times
    assert ranked[3][0] == pytest.approx(3 * (12.0 + np.log2(0.3)) - costs[3])


def test_one_pieces_repeats_do_not_make_a_composers_word() -> None:
    from musicwords.compare import distinctive_words, is_distinctive

    counts = {"a": {"x": 40, "y": 5, "z": 10}, "b": {"x": 2, "y": 40, "z": 10}}
    one_piece = {"a": {"x": 1, "y": 2, "z": 3}, "b": {"x": 1, "y": 6, "z": 4}}
    many = {"a": {"x": 5, "y": 2, "z": 3}, "b": {"x": 1, "y": 6, "z": 4}}
    row = distinctive_words(counts, "a", pieces=one_piece)[0]
    assert row["word"] == "x" and row["q"] <= 0.05 and not is_distinctive(row)
    assert is_distinctive(distinctive_words(counts, "a", pieces=many)[0])
    # with many words tested, a z just over 1.96 alone no longer passes
    wide = {"a": {i: 100 for i in range(200)}, "b": {i: 100 for i in range(200)}}
    wide["a"][0] = 170
    row = next(r for r in distinctive_words(wide, "a", pieces={"a": {0: 5}}) if r["word"] == 0)
    assert row["z"] > 1.96 and row["q"] > 0.05 and not is_distinctive(row)


def test_the_idiom_model_predicts_figuration_and_leaves_the_word_out() -> None:
    from musicwords.idiom import IdiomModel

    rng = np.random.default_rng(0)
    run = [0, 1, 0, 1, 0, 1]  # a figure the whole stream plays
    tokens = np.array(run * 30 + [-1] + rng.integers(2, 12, 200).tolist() + [-1])
    motif_at = [190 + 40 * k for k in range(4)]  # four passages of the random stream, as if a word
    model = IdiomModel(tokens, 12)
    before = dict(model.joint)
    figure = model.word_bits([0, 6, 12, 18], 6) / 4
    motif = model.word_bits(motif_at, 6) / 4
    assert figure < 0.5 * motif
    assert dict(model.joint) == before  # the counts are restored after leaving the word out


@pytest.fixture(scope="module")
def chorales() -> list[Notes]:
    from music21 import corpus

    from musicwords.io import read_notes

    paths = sorted(str(p) for p in corpus.getComposer("bach") if "bwv" in str(p))[:150]
    return [read_notes(p) for p in paths]


def test_the_motif_layer_takes_the_mdl_words_motifs_first_then_the_merges_in_the_notes_they_leave(
        chorales: list[Notes]) -> None:
    """motif_words="both" (the default): the motifs among the MDL dictionary's words, exactly as
    motif_words="mdl" finds them, then motifs among the frequency merges, none of whose
    statements shares a note with one before; one dictionary names them all."""
    pieces = chorales[:3]  # statements as their words spell them (not filled out to a bar: fill_bars is tested below)
    both, mdl, merges = (discover(pieces, DiscoverConfig(motif_words=w, motif_bars=None)) for w in ("both", "mdl", "merges"))

    def statements(found: list) -> list[list[tuple[int, tuple[int, ...]]]]:
        return [[(piece, tuple(idx.tolist())) for piece, idx in p.occurrences] for p in found]

    k = len(mdl.motifs)
    assert k >= 1 and len(both.motifs) > k  # on these chorales the merges add motifs the MDL words miss
    assert statements(both.motifs[:k]) == statements(mdl.motifs)
    d = both.motif_words
    assert [d.describe(p.word) for p in both.motifs[:k]] == [mdl.motif_words.describe(p.word) for p in mdl.motifs]
    merged = {merges.motif_words.describe(w) for w in merges.motif_words.word_ids}
    assert all(d.describe(p.word) in merged for p in both.motifs[k:])
    assert all(len(d.words[p.word]) == len(p.occurrences[0][1]) - 1 for p in both.motifs)  # its first statement spells it
    for p in both.motifs:  # no note in two statements of one motif
        held = [(piece, int(i)) for piece, idx in p.occurrences for i in idx]
        assert len(held) == len(set(held))
    with pytest.raises(ValueError, match="motif_words"):
        DiscoverConfig(motif_words="bpe")


@pytest.mark.parametrize("null", ["unigram", "markov"])
def test_markov_music_without_repeats_has_no_patterns_but_planted_motifs_in_it_are_found(
        chorales: list[Notes], null: str) -> None:
    cfg = DiscoverConfig(null=null)
    for seed in range(3):
        idiom = markov_melodies(chorales, seed=seed, n_notes=400, order=1)
        nothing = discover(idiom.pieces, cfg)
        assert nothing.patterns == [] and nothing.motifs == [], f"seed {seed}: a pattern in music without repeats"
        planted = markov_melodies(chorales, seed=100 + seed, n_notes=400, order=1, n_motifs=2, occurrences=6, motif_notes=10)
        found = discover(planted.pieces, cfg).patterns
        for m, truth in enumerate(planted.occurrences):
            notes = set(np.concatenate([idx for _, idx in truth]).tolist())
            best = max((len(notes & set(np.concatenate([i for _, i in p.occurrences]).tolist())) / len(notes)
                        for p in found), default=0.0)
            assert best >= 0.5, f"seed {seed}, motif {m}: {best:.2f} of its notes found"


def test_outer_voices_keep_a_leaping_melody_whole() -> None:
    from musicwords.voices import separate_voices

    # a melody that leaps down towards an inner voice (which sounds on every other beat), over a bass
    melody = [(0, 79), (1, 69), (2, 81), (3, 70), (4, 83), (5, 72)]
    inner = [(0, 67), (2, 68), (4, 69)]
    bass = [(0, 48), (1, 50), (2, 52), (3, 53), (4, 55), (5, 57)]
    notes = melody + inner + bass
    n = Notes.from_arrays("leap", onset=[t for t, _ in notes], pitch=[p for _, p in notes], duration=np.ones(len(notes)))
    outer = separate_voices(n, method="outer")
    streams = [n.pitch[s].tolist() for s in outer.streams]
    assert streams[0] == [p for _, p in melody] and streams[1] == [p for _, p in bass]
    assert sorted(np.concatenate(outer.streams).tolist()) == list(range(len(n)))  # every note, once
    lines = [n.pitch[s].tolist() for s in separate_voices(n, method="lines").streams]
    assert [p for _, p in melody] not in lines  # what line-following does to it


def test_planted_motifs_still_rank_first_with_nested_savings() -> None:
    corpus = planted_corpus(seed=11, n_pieces=6, n_motifs=3, occurrences=3)
    result = discover(corpus.pieces, DiscoverConfig(extend="none"))
    top = result.patterns[:3]
    for truth in corpus.occurrences:
        want = {(p, tuple(idx.tolist())) for p, idx in truth}
        assert max(len(want & {(p, tuple(i.tolist())) for p, i in pat.occurrences}) / len(want) for pat in top) >= 0.9


@pytest.mark.parametrize("spelled", [False, True])
def test_a_motif_moved_up_and_down_the_scale_is_one_word_with_diatonic_tokens(spelled: bool) -> None:
    from musicwords.tokens import TokenConfig

    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    rng = np.random.default_rng(2)
    motif_steps = np.array([0, 2, 4, 3, 1, 2, 0, -1, 0])  # in scale steps
    degrees: list[int] = []
    planted = []
    for start in (0, 1, 3, 4, 2, 5, 1, 3):  # the sequence on eight scale degrees of C major
        degrees += (14 + np.cumsum(rng.integers(-2, 3, 8))).tolist()  # stepwise diatonic filler
        planted.append(len(degrees))
        degrees += (14 + start + motif_steps).tolist()
    degrees_a = np.array(degrees)
    pitch = 48 + 12 * (degrees_a // 7) + scale[degrees_a % 7]
    n = Notes.from_arrays("seq", onset=np.arange(len(pitch), dtype=float), pitch=pitch, duration=np.ones(len(pitch)),
                          morph=(60 - 14 + degrees_a) if spelled else None)
    if not spelled:
        from musicwords.spelling import diatonic_pitch, estimate_tonic

        assert estimate_tonic(n) in (0, 9)  # C major or A minor: the same spelling
        assert np.array_equal(np.diff(diatonic_pitch(n)), np.diff(degrees_a))

    def best_share(pitch_tokens: str, variants: bool = False) -> float:
        cfg = DiscoverConfig(tokens=TokenConfig(pitch=pitch_tokens), extend="none", variants=variants)
        found = discover([n], cfg).patterns
        want = {int(s) for s in planted}
        return max((len(want & {int(idx[0]) for _, idx in p.occurrences}) / len(want) for p in found), default=0.0)

    assert best_share("diatonic") == 1.0  # every statement, whatever its degree, is one word's
    assert best_share("interval") < 0.5  # in semitones they are several different words
    # as varied statements (a note or two a semitone off) some join the semitone word, not all
    assert best_share("interval") < best_share("interval", variants=True) < 1.0

    def motif_share(cfg: DiscoverConfig) -> float:
        want = {int(s) for s in planted}
        return max((len(want & {int(idx[0]) for _, idx in p.occurrences}) / len(want) for p in discover([n], cfg).motifs),
                   default=0.0)

    # the motif layer learns its own dictionary of scale steps by default: the sequence is one motif
    assert motif_share(DiscoverConfig()) == 1.0
    assert motif_share(DiscoverConfig(motif_tokens=None)) < 1.0  # from the semitone dictionary: not all of them


def test_a_word_as_musicxml_reads_back_with_its_notes(tmp_path: Path) -> None:
    import music21

    from musicwords.report import pattern_musicxml

    onset, interval, duration = [0.0, 0.5, 1.0, 1.0, 2.0 + 1 / 3], [0, 2, 4, 7, -1], [0.5, 0.5, 1.0, 1.0, 2 / 3]
    xml = pattern_musicxml(onset, interval, duration, base_pitch=62, name="word 7")
    score = music21.converter.parse(xml, format="musicxml")
    got = sorted((round(float(n.offset), 3), p.midi, round(float(n.quarterLength), 3))
                 for m in score.recurse().getElementsByClass("Measure") for n in m.notes for p in n.pitches)
    want = sorted((round(t, 3), 62 + i, round(d, 3)) for t, i, d in zip(onset, interval, duration, strict=True))
    assert got == want
    # a word of Haydn's in the music21 corpus (demisemiquavers after a dotted one): its onsets once became quintuplets
    onset = [0.0, 0.2083, 0.3333, 0.4583, 0.5833]
    xml = pattern_musicxml(onset, [0, 2, 0, 2, 0], [0.2083, 0.125, 0.125, 0.125, 0.125])
    got_onsets = [float(n.offset) for n in music21.converter.parse(xml, format="musicxml").recurse().notes]
    assert len(got_onsets) == len(onset) and all(abs(a - b) < 1 / 48 for a, b in zip(got_onsets, onset, strict=True))
    # a name per note writes each note as spelled; a name that does not sound the pitch is refused
    xml = pattern_musicxml([0, 1, 2], [0, 3, 6], [1, 1, 1], base_pitch=61, spelling=["Db4", "E4", "G4"])
    assert [p.nameWithOctave for p in music21.converter.parse(xml, format="musicxml").pitches] == ["D-4", "E4", "G4"]
    with pytest.raises(ValueError, match="does not sound"):
        pattern_musicxml([0, 1], [0, 3], [1, 1], base_pitch=61, spelling=["C#4", "F4"])
    # where the word stands: key signature, metre, and an upbeat on the beat it starts on
    for bar_length, beat, meter in [(3.0, 3.5, "3/4"), (1.5, 1.0, "3/8"), (None, 3.0, "4/4"), (2.5, 1.5, "5/8")]:
        xml = pattern_musicxml([0, 0.5, 1.5], [0, 2, 4], [0.5, 1, 1], base_pitch=66, spelling=["F#4", "G#4", "A#4"],
                               fifths=6, bar_length=bar_length, beat=beat)
        score = music21.converter.parse(xml, format="musicxml")
        first = score.recurse().notes[0]
        assert score.recurse().getElementsByClass("KeySignature")[0].sharps == 6
        assert score.recurse().getElementsByClass("TimeSignature")[0].ratioString == meter
        assert float(first.offset) == (beat - 1 if bar_length else 0.0) and first.measureNumber == 1
        assert [el.pitch.nameWithOctave for el in score.recurse().notes  # a note over a bar line: once
                if not (el.tie and el.tie.type in ("continue", "stop"))] == ["F#4", "G#4", "A#4"]
    # the discover command writes one per reported word: its first statement at its pitch, each
    # note as the input spells it. The note CSV spells every black key against music21's own
    # choice (C# as Db, Bb as A#, ...), so names music21 would give cannot pass
    corpus = planted_corpus(seed=4, n_pieces=1, n_motifs=2, occurrences=4)
    csv = tmp_path / "p.csv"
    n = corpus.pieces[0]
    flat = {1, 3, 6, 8, 10} - {pc for pc in range(12) if "-" in music21.pitch.Pitch(midi=60 + pc).name}  # music21: sharp

    def morph(p: int) -> int:  # the staff position: a black key on the letter above (flat) or below (sharp)
        octave, pc = divmod(p, 12)
        step = [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6][pc] + (pc in flat)
        return 60 + 7 * (octave - 5) + step

    csv.write_text("".join(f"{t},{p},{morph(int(p))},{d},0\n" for t, p, d in zip(n.onset, n.pitch, n.duration, strict=True)))
    run = subprocess.run([sys.executable, "-m", "musicwords", "discover", str(csv), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    words = json.loads((tmp_path / "p.dictionary.json").read_text())["words"]
    assert words and all((tmp_path / "p.words" / f"w{w['word_id']}.musicxml").is_file() for w in words)
    spelled = Notes.from_arrays("p", onset=n.onset, pitch=n.pitch, duration=n.duration, morph=[morph(int(p)) for p in n.pitch])
    key = key_fifths(spelled)
    black = 0
    for w in words:
        score = music21.converter.parse((tmp_path / "p.words" / f"w{w['word_id']}.musicxml").read_text(), format="musicxml")
        written = [(p.midi, p.name) for el in score.recurse().notes for p in el.pitches
                   if not (el.tie and el.tie.type in ("continue", "stop"))]  # a note over a bar line: once
        assert sorted(p for p, _ in written) == sorted(w["pitch"])  # at the statement's own pitch
        assert score.recurse().getElementsByClass("KeySignature")[0].sharps == w["fifths"] == key  # the piece's
        for p, name in written:
            default = music21.pitch.Pitch(midi=p)  # music21's own name of the pitch
            want = default.getEnharmonic().name if p % 12 in (1, 3, 6, 8, 10) else default.name
            assert name == want, (p, name, want)
            black += p % 12 in (1, 3, 6, 8, 10)
    assert black > 0  # the check above saw spelled black keys


def test_occurrences_say_their_bar_and_beat_where_the_score_has_measures(tmp_path: Path) -> None:
    import mido
    from music21 import corpus

    from musicwords.io import read_notes
    from musicwords.report import occurrences_table

    chorale = next(str(p) for p in corpus.getComposer("bach") if str(p).endswith("bwv1.6.mxl"))
    fast, slow = read_notes(chorale, reader="fast"), read_notes(chorale, reader="music21")
    assert np.array_equal(fast.bars, slow.bars) and fast.first_bar == slow.first_bar == 0
    assert fast.bar_beat(0.0) == (0, 4.0) and fast.bar_beat(1.0) == (1, 1.0)  # a one-beat pickup in 4/4

    # a MIDI file in 3/4: a motif at the start of bars 1, 3, 5 and 7
    motif = [67, 72, 71, 69, 67, 64]
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    rng = np.random.default_rng(0)
    for _ in range(4):
        for p in motif + rng.integers(48, 84, 6).tolist():  # six quavers of motif, six of filler: two bars
            track.append(mido.Message("note_on", note=int(p), velocity=80, time=0))
            track.append(mido.Message("note_off", note=int(p), velocity=0, time=240))
    path = tmp_path / "waltz.mid"
    mid.save(path)
    notes = read_notes(path)
    assert notes.bars is not None and np.allclose(np.diff(notes.bars[:4]), 3.0)
    result = discover([notes], DiscoverConfig(extend="none", significance=None))
    table = occurrences_table(result).to_pylist()
    first = [r for r in table if r["start"] in (0.0, 6.0, 12.0, 18.0)]
    assert first and all(r["beat"] == 1.0 and r["bar"] == 1 + int(r["start"]) // 3 for r in first)


def _naive_variants(word: tuple[int, ...], tokens: np.ndarray, symbols: list[tuple[int, int]]) -> set[tuple[int, int, str]]:
    """The definitions of musicwords.variants, note by note, without any of its shortcuts."""
    def notes(toks: list[int]) -> list[tuple[int, int]]:  # (pitch, onset) from the first note
        out = [(0, 0)]
        for t in toks:
            out.append((out[-1][0] + symbols[t][0], out[-1][1] + symbols[t][1]))
        return out

    def drop(ns: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
        return ns[:k] + ns[k + 1:]

    n, want = len(word), notes(list(word))
    allowed = max(1, (n + 1) // 4)
    found = set()
    for m in (n - 1, n, n + 1):
        for s in range(len(tokens) - m + 1):
            window = tokens[s : s + m].tolist()
            if -1 in window:
                continue
            got = notes(window)
            if m == n and got != want:
                same_pitch = [p for p, _ in got] == [p for p, _ in want]
                same_time = [t for _, t in got] == [t for _, t in want]
                if same_pitch and sum(a[1] != b[1] for a, b in zip(got, want, strict=True)) <= allowed:
                    found.add((s, m, "rhythm"))
                shifts = [a[0] - b[0] for a, b in zip(got, want, strict=True)]
                if same_time and n + 1 - max(shifts.count(x) for x in shifts) <= allowed:
                    found.add((s, m, "pitch"))
            rel = lambda ns: [(p - ns[0][0], t - ns[0][1]) for p, t in ns]  # noqa: E731
            if m == n + 1 and any(rel(drop(got, k)) == want for k in range(1, n + 1)):
                found.add((s, m, "insertion"))
            if m == n - 1 and any(rel(drop(want, k)) == got for k in range(1, n)):
                found.add((s, m, "deletion"))
    return found


@pytest.mark.parametrize("seed", range(4))
def test_variant_statements_are_what_their_definitions_say(seed: int) -> None:
    from musicwords.tokens import Alphabet
    from musicwords.variants import VariantFinder, find_variants

    rng = np.random.default_rng(seed)
    symbols = [(a, b) for a in range(-6, 9) for b in range(3, 27, 3)]
    alphabet = Alphabet(symbols=symbols)
    small = [symbols.index((a, b)) for a in (-2, -1, 0, 1, 2, 3, 4) for b in (6, 9, 12)]
    word = tuple(int(t) for t in rng.choice(small, 6))
    streams: list[int] = []
    for k in range(40):  # random streams, each with the word in it exact or varied in one of the four ways
        w = [symbols[t] for t in word]
        j = int(rng.integers(0, len(w) - 1))
        (a, da), (b, db) = w[j], w[j + 1]
        w[j : j + 2] = [  # each a change a composer makes: exact, a note left out, a passing note, an onset moved, a note moved
            [(a, da), (b, db)], [(a + b, da + db)], [(1, 3), (a - 1, da - 3), (b, db)],
            [(a, da - 3), (b, db + 3)], [(a + 1, da), (b - 1, db)]][k % 5]
        filler = rng.choice(small, int(rng.integers(3, 12))).tolist()
        streams += filler + [symbols.index(x) for x in w] + rng.choice(small, 3).tolist() + [-1]
    tokens = np.array(streams)
    found = set(find_variants(word, tokens, alphabet))
    assert found == _naive_variants(word, tokens, symbols)
    assert {k for _, _, k in found} == {"rhythm", "pitch", "insertion", "deletion"}  # the planted kinds, each found
    exact = VariantFinder(tokens, alphabet).find_exact(word).tolist()  # and the exact statements
    assert exact == [s for s in range(len(tokens)) if tuple(tokens[s : s + len(word)].tolist()) == word] and len(exact) >= 8


@pytest.mark.parametrize("seed", range(3))
def test_a_motif_with_another_rhythm_a_note_more_or_an_altered_note_is_one_pattern(seed: int) -> None:
    rng = np.random.default_rng(seed)
    motif = [(0, 1.0), (4, 0.5), (7, 0.5), (5, 1.0), (4, 0.5), (2, 0.5), (0, 2.0)]  # (pitch from the first, duration)
    varied = {
        "rhythm": [(0, 1.25), (4, 0.25), (7, 0.5), (5, 1.0), (4, 0.5), (2, 0.5), (0, 2.0)],  # a dotted figure
        "pitch": [(0, 1.0), (4, 0.5), (9, 0.5), (5, 1.0), (4, 0.5), (2, 0.5), (0, 2.0)],  # one note altered
        "insertion": [(0, 1.0), (4, 0.5), (7, 0.5), (5, 0.5), (6, 0.5), (4, 0.5), (2, 0.5), (0, 2.0)],  # a passing note
    }
    statements = [motif] * 6 + [varied[k] for k in varied for _ in range(2)]
    order = rng.permutation(len(statements))
    pitch, dur, starts = [], [], []
    for k in order:
        for _ in range(int(rng.integers(5, 9))):  # random filler: leaps and durations no statement has
            pitch.append(int(rng.integers(36, 58)))
            dur.append(float(rng.choice([0.75, 1.25, 1.75, 2.5, 3.0])))
        base = int(rng.integers(60, 70))
        starts.append((int(k), len(pitch)))
        pitch += [base + p for p, _ in statements[k]]
        dur += [d for _, d in statements[k]]
    onset = np.concatenate([[0.0], np.cumsum(dur[:-1])])
    n = Notes.from_arrays("varied", onset=onset, pitch=pitch, duration=dur)

    def statements_found(variants: bool) -> tuple[int, tuple[str, ...]]:
        found = discover([n], DiscoverConfig(extend="none", variants=variants)).patterns
        firsts = [{int(idx[0]) for _, idx in p.occurrences} for p in found]
        best = max(range(len(found)), key=lambda i: len(firsts[i] & {s for _, s in starts}))
        return len(firsts[best] & {s for _, s in starts}), found[best].variants

    count, kinds = statements_found(True)
    assert count == len(statements)  # the six exact statements and the six varied ones: one word
    assert sorted(kinds) == sorted(k for k in varied for _ in range(2))
    assert statements_found(False) == (6, ())  # without variants only the exact statements

    # the page's view of it: the first exact statement, then the first of each kind, each from its
    # own first note (the statements are at different heights), on one scale
    from musicwords.page import statements_html
    from musicwords.report import statements

    result = discover([n], DiscoverConfig(extend="none"))
    word = max(result.patterns, key=lambda p: len({int(idx[0]) for _, idx in p.occurrences} & {s for _, s in starts}))
    rows = statements(result, word, limit=4)
    assert rows[0]["kind"] == "exact" and {r["kind"] for r in rows[1:]} == set(varied)
    for r in rows:
        want = motif if r["kind"] == "exact" else varied[r["kind"]]
        assert r["interval"] == [p for p, _ in want] and r["duration"] == [d for _, d in want]
        assert r["onset"] == np.concatenate([[0.0], np.cumsum([d for _, d in want][:-1])]).tolist()
    html = statements_html(rows)
    assert [html.count(f'data-kind="{r["kind"]}"') for r in rows] == [1, 1, 1, 1]
    first_notes = re.findall(r'class="stmt"[^>]*><svg[^>]*><title>[^<]*</title><rect x="([\d.]+)" y="([\d.]+)"', html)
    assert len(first_notes) == 4 and len(set(first_notes)) == 1  # every first note at the same place: one scale


def test_a_motif_shorter_than_a_bar_is_filled_out_to_its_bar() -> None:
    """A two-beat motif in 4/4 is stated at the start of bars, each time followed by other notes:
    its statements go on to the bar's end (not past it, and not into its next statement); without
    measures, or with motif_bars=None, they are its word's notes only."""
    rng = np.random.default_rng(3)
    motif = [(0, 0.5), (4, 0.5), (7, 0.5), (4, 0.5)]  # (pitch from the first, duration): two beats
    onset, pitch, duration, starts = [], [], [], []
    t = 0.0
    for _ in range(12):
        base = int(rng.integers(60, 67))
        starts.append(len(onset))
        for step, d in motif:
            onset.append(t), pitch.append(base + step), duration.append(d)
            t += d
        for _ in range(2):  # the rest of the bar: two crotchets no motif has
            onset.append(t), pitch.append(int(rng.integers(48, 84))), duration.append(1.0)
            t += 1.0
    bars = np.arange(0.0, t, 4.0)
    found = {}
    for name, cfg, measured in (("filled", DiscoverConfig(), True), ("as found", DiscoverConfig(motif_bars=None), True),
                                ("no measures", DiscoverConfig(), False)):
        n = Notes.from_arrays("m", onset=onset, pitch=pitch, duration=duration, bars=bars if measured else None)
        result = discover([n], cfg)
        best = max(result.motifs, key=lambda p: len({int(i.min()) for _, i in p.occurrences} & set(starts)))
        assert len({int(i.min()) for _, i in best.occurrences} & set(starts)) >= 8, name  # the motif, stated 8+ times
        found[name] = [np.sort(i).tolist() for _, i in best.occurrences if int(i.min()) in starts]
        held = [int(i) for _, idx in best.occurrences for i in idx]
        assert len(held) == len(set(held)), name  # no note in two statements
    assert all(idx == list(range(idx[0], idx[0] + 6)) for idx in found["filled"])  # its four notes and the bar's last two
    assert all(len(idx) == 4 for idx in found["as found"]) and found["no measures"] == found["as found"]


def test_a_words_key_signature_is_the_scores_where_it_writes_one() -> None:
    """A tune in E flat written without a key signature (every flat an accidental): its words are
    in the score's signature, none; the same tune with three flats in the signature, or with none
    written at all, is in E flat's (the estimate: the fewest accidentals)."""
    from musicwords.io import read_notes
    from musicwords.report import dictionary_table

    tune = "4e-\n4f\n4g\n4e-\n=\n4b-\n4a-\n2g\n=\n4c\n4d\n4e-\n4g\n=\n2f\n2b-\n=\n"
    body = "".join([tune] * 4) + "1e-\n*-\n"
    for signature, want in (("*k[]\n", 0), ("*k[b-e-a-]\n", -3), ("", -3)):
        notes = read_notes("t.krn", data=("**kern\n*M4/4\n" + signature + body).encode())
        table = dictionary_table(discover([notes], DiscoverConfig.debug()))
        assert table.num_rows and set(table.column("fifths").to_pylist()) == {want}, signature


@pytest.mark.parametrize("seed", range(3))
def test_the_motif_layer_takes_a_short_motif_heard_many_times_not_a_section_heard_twice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    motif = [(0, 0.5), (2, 0.5), (4, 1.0), (2, 0.5), (-1, 1.5)]  # (pitch from the first, duration)

    def filler(k: int) -> list[tuple[int, float]]:  # leaps and durations no motif has
        return [(int(rng.integers(36, 58)), float(rng.choice([0.75, 1.25, 1.75, 2.5, 3.0]))) for _ in range(k)]

    def stated(base: int) -> list[tuple[int, float]]:
        return [(base + p, d) for p, d in motif]

    section = filler(10) + stated(67) + filler(8) + stated(62) + filler(10)  # 38 notes, two motif statements in it
    notes = filler(6) + section + filler(7) + section
    for _ in range(6):
        notes += filler(int(rng.integers(5, 9))) + stated(int(rng.integers(60, 72)))
    notes += filler(5)
    pitch, dur = [p for p, _ in notes], [d for _, d in notes]
    n = Notes.from_arrays("layers", onset=np.concatenate([[0.0], np.cumsum(dur[:-1])]), pitch=pitch, duration=dur)
    # statements at random semitone heights among random notes (no key to spell them in): the
    # layer's choice is tested on the patterns' dictionary of semitone tokens
    result = discover([n], DiscoverConfig(motif_tokens=None))
    starts = {i for i in range(len(notes) - len(motif) + 1)
              if [pitch[i + j] - pitch[i] for j in range(len(motif))] == [p for p, _ in motif]
              and dur[i : i + len(motif)] == [d for _, d in motif]}
    assert len(starts) == 10
    first = result.motifs[0]
    assert {int(idx[0]) for _, idx in first.occurrences} == starts  # every statement, nothing else
    held = [int(i) for p in result.motifs for _, idx in p.occurrences for i in idx]
    assert len(held) == len(set(held))  # every note in one motif at most
    longest = max(result.patterns, key=lambda p: len(p.occurrences[0][1]))
    assert len(longest.occurrences) == 2 and len(longest.occurrences[0][1]) >= 38  # the section: a pattern ...
    assert all(len(p.occurrences[0][1]) < 38 for p in result.motifs)  # ... and no motif


@pytest.mark.parametrize("seed", range(3))
def test_a_motif_reports_its_statements_that_share_a_note_with_another_motif(seed: int) -> None:
    """Two motifs, eight statements each; twice the first's last note is the second's first. The
    motif chosen first holds that note, and the other still reports those statements: both motifs
    have all eight, and those two notes are in both."""
    rng = np.random.default_rng(seed)
    motifs = [[(0, 0.5), (2, 0.5), (4, 1.0), (2, 0.5), (-1, 1.5)], [(0, 1.0), (5, 0.5), (3, 0.5), (7, 1.0), (5, 2.0)]]

    def filler() -> list[tuple[int, float]]:  # leaps and durations no motif has
        return [(int(rng.integers(36, 58)), float(rng.choice([0.75, 1.25, 1.75, 2.5, 3.0])))
                for _ in range(int(rng.integers(5, 9)))]

    last = iter(np.arange(16) * 0.125 + 2.0)  # the last note's length is no part of a statement: none twice

    def stated(m: list[tuple[int, float]], base: int) -> list[tuple[int, float]]:
        return [(base + p, d) for p, d in m[:-1]] + [(base + m[-1][0], float(next(last)))]

    notes: list[tuple[int, float]] = []
    for _ in range(6):
        for m in motifs:
            notes += filler() + stated(m, int(rng.integers(60, 72)))
    for _ in range(2):  # the first motif, its last note the second's first
        a = stated(motifs[0], int(rng.integers(60, 66)))
        notes += filler() + a[:-1] + [(a[-1][0], motifs[1][0][1])] + stated(motifs[1], a[-1][0])[1:]
    notes += filler()
    pitch, dur = [p for p, _ in notes], [d for _, d in notes]
    onset = np.concatenate([[0.0], np.cumsum(dur[:-1])])
    n = Notes.from_arrays("overlap", onset=onset, pitch=pitch, duration=dur)
    result = discover([n], DiscoverConfig(motif_tokens=None))  # random heights: no key to spell them in

    def starts(m: list[tuple[int, float]]) -> set[int]:
        return {i for i in range(len(n) - len(m) + 1)
                if [pitch[i + j] - pitch[i] for j in range(len(m))] == [p for p, _ in m]
                and np.allclose(np.diff(onset[i : i + len(m)]), [d for _, d in m][:-1])}

    found = [{int(idx[0]) for _, idx in p.occurrences} for p in result.motifs]
    assert all(len(starts(m)) == 8 and starts(m) in found for m in motifs)
    a, b = ({int(i) for _, idx in result.motifs[found.index(starts(m))].occurrences for i in idx} for m in motifs)
    assert len(a & b) == 2  # the two shared notes


FIGURES = {
    "alberti": (0, 7, 4, 7) * 3,  # a cell stated in place
    "pedal": (0, 7, 0, 5, 0, 9, 0, 7, 0),  # a held note struck between the notes of a moving line
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("figure", sorted(FIGURES))
def test_figuration_is_texture_not_a_motif(figure: str, seed: int) -> None:
    """A figure (an Alberti cell twice in place; a pedal alternating with a moving line) heard
    often beside a planted motif: the motif layer reports the motif with all its statements and
    no figuration; without the texture rule the figure is a motif (the control)."""
    from musicwords.reconstruct import in_place

    rng = np.random.default_rng(seed)
    motif = [(0, 0.5), (2, 0.5), (4, 1.0), (2, 0.5), (-1, 1.5)]
    notes: list[tuple[int, float]] = []
    for k in range(10):
        notes += [(int(rng.integers(60, 80)), float(rng.choice([0.75, 1.25, 1.75, 2.5]))) for _ in range(4)]
        base = int(rng.integers(60, 72))
        notes += [(base + p, d) for p, d in motif] if k % 2 == 0 else [(base + p, 0.25) for p in FIGURES[figure]]
    pitch, dur = [p for p, _ in notes], [d for _, d in notes]
    n = Notes.from_arrays(figure, onset=np.concatenate([[0.0], np.cumsum(dur[:-1])]), pitch=pitch, duration=dur)
    cfg = DiscoverConfig(motif_tokens=None)  # random heights: no key to spell them in
    result = discover([n], cfg)
    assert not any(in_place(result.motif_words, p.word) for p in result.motifs)
    starts = {int(idx[0]) for p in result.motifs[:1] for _, idx in p.occurrences}
    assert len(starts) == 5 and all([pitch[i + j] - pitch[i] for j in range(5)] == [0, 2, 4, 2, -1] for i in starts)
    control = discover([n], dataclasses.replace(cfg, texture=False))
    assert any(in_place(control.motif_words, p.word) for p in control.motifs)


def _melody_over_bass(rng: np.random.Generator, *, low: int, root: int) -> tuple[list[int], list[int]]:
    """A melody (random notes from ``low`` up, a planted motif 0 +4 +2 +7 +5 eight times) and a
    bass as long (a six-note formula on a root from ``root`` up, between random notes under
    ``low - 4``)."""
    melody: list[int] = []
    for _ in range(8):
        melody += rng.integers(low, low + 20, int(rng.integers(4, 8))).tolist()
        base = int(rng.integers(low + 2, 72))
        melody += [base, base + 4, base + 2, base + 7, base + 5]
    bass: list[int] = []
    while len(bass) < len(melody):
        r = int(rng.integers(root, root + 6))
        bass += [r, r - 5, r - 3, r - 8, r - 1, r - 3] + rng.integers(36, low - 4, int(rng.integers(3, 7))).tolist()
    return melody, bass[: len(melody)]


@pytest.mark.parametrize("seed", range(2))
def test_the_motif_layer_listens_to_the_top_line_of_each_part(seed: int) -> None:
    """A melody over a bass in one part, the bass restating a formula: the motif layer holds no
    note under the top line (the formula stays out), and the melody's planted motif is found;
    on line-following streams (``motif_voices=None``) the bass formula is a motif (the control)."""
    melody, bass = _melody_over_bass(np.random.default_rng(seed), low=60, root=40)
    onset = np.arange(len(melody)) * 0.5
    n = Notes.from_arrays("two lines", onset=np.concatenate([onset, onset]), pitch=melody + bass,
                          duration=np.full(2 * len(melody), 0.5))
    cfg = DiscoverConfig(motif_tokens=None)
    held = lambda result: n.pitch[[int(i) for p in result.motifs for _, idx in p.occurrences for i in idx]]  # noqa: E731
    top = discover([n], cfg)
    assert top.motifs and held(top).min() >= 60  # the melody's notes only (the bass is under 56)
    first = top.motifs[0]
    assert len(first.occurrences) == 8 and all(np.diff(n.pitch[idx]).tolist()[:4] == [4, -2, 5, -2]
                                               for _, idx in first.occurrences)
    lines = discover([n], dataclasses.replace(cfg, motif_voices=None, motif_in_melody=False))
    assert held(lines).min() < 60


@pytest.mark.parametrize("seed", range(2))
def test_a_motif_is_heard_as_melody_at_least_once(seed: int) -> None:
    """A melody with a planted motif over a keyboard left hand (a bass line in octaves) restating
    a formula: the formula, never heard on top, is accompaniment and no motif; the melody's motif
    is found. The same bass line played by a part of one line (a cello) is a voice of its own:
    its formula is a motif. Without the rule (``motif_in_melody=False``) the left hand's formula
    is a motif too (the control)."""
    from musicwords.voices import in_melody

    melody, bass = _melody_over_bass(np.random.default_rng(seed), low=62, root=44)
    onset = np.arange(len(melody)) * 0.5

    def piece(octaves: bool) -> Notes:
        low = [p - 12 for p in bass] if octaves else []
        return Notes.from_arrays("melody and bass", onset=np.concatenate([onset, onset, onset[: len(low)]]),
                                 pitch=melody + bass + low, duration=np.full(2 * len(melody) + len(low), 0.5),
                                 voice=[0] * len(melody) + [1] * (len(bass) + len(low)),
                                 voice_names=("melody", "bass"))

    def held(n: Notes, result: object) -> np.ndarray:
        return n.voice[[int(i) for p in result.motifs for _, idx in p.occurrences for i in idx]]  # type: ignore[attr-defined]

    cfg = DiscoverConfig(motif_tokens=None)
    keyboard = piece(octaves=True)
    assert not in_melody(keyboard)[keyboard.voice == 1].any() and in_melody(keyboard)[keyboard.voice == 0].all()
    result = discover([keyboard], cfg)
    assert result.motifs and (held(keyboard, result) == 0).all()
    assert any(len(p.occurrences) == 8 and all(np.diff(keyboard.pitch[idx]).tolist()[:4] == [4, -2, 5, -2]
                                               for _, idx in p.occurrences) for p in result.motifs)
    control = discover([keyboard], dataclasses.replace(cfg, motif_in_melody=False))
    assert (held(keyboard, control) == 1).any()
    ensemble = piece(octaves=False)
    assert in_melody(ensemble).all()
    assert (held(ensemble, discover([ensemble], cfg)) == 1).any()
