"""Real music paired with footage (vem.realmusic, ``python -m jobs paired``): labels from the score,
beats where the tempo puts them, clips that decode, splits that keep held-out music unheard."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs.__main__ import main
from vem.realmusic import Piece, grade_picture, midi_piece, notes_key, pair_clip, render_clip

A_MINOR = [69, 71, 72, 74, 76, 77, 79, 81, 76, 72, 69, 64, 69, 72, 76, 69]  # A natural minor, outlining its triad
C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 55, 60, 64, 67, 60]


def _midi_bytes(melody: list[int], bars: int = 12, bpm: float = 90.0) -> bytes:
    """A 4/4 MIDI file: the melody in crotchets, repeated over ``bars`` bars, a bass note per bar."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    top, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(32)
    beat = 60.0 / bpm
    for k in range(bars * 4):
        top.notes.append(pretty_midi.Note(90, melody[k % len(melody)], k * beat, (k + 0.9) * beat))
    for b in range(bars):
        bass.notes.append(pretty_midi.Note(80, melody[0] - 24, 4 * b * beat, (4 * b + 3.9) * beat))
    pm.instruments += [top, bass]
    out = io.BytesIO()
    pm.write(out)
    return out.getvalue()


def test_the_key_of_notes_is_major_or_minor_as_written() -> None:
    assert notes_key(np.array(C_MAJOR), np.ones(len(C_MAJOR)))[:2] == ("C", "major")
    assert notes_key(np.array(A_MINOR), np.ones(len(A_MINOR)))[:2] == ("A", "minor")


@pytest.mark.parametrize(("melody", "mood"), [(C_MAJOR, "bright"), (A_MINOR, "dark")])
def test_a_clip_takes_its_mood_from_its_mode_and_its_beats_from_the_tempo(melody: list[int], mood: str) -> None:
    piece = midi_piece(_midi_bytes(melody), "m")
    assert piece.n_voices == 2 and piece.tempo_mark == pytest.approx(90.0, rel=1e-4)
    assert np.allclose(np.diff(piece.downbeats_q), 4.0)  # 4/4: a bar every 4 beats
    clip = render_clip(piece, rng=np.random.default_rng(0), duration_s=12.0)
    assert clip is not None and clip.mood == mood
    lo, hi = {"bright": (100, 140), "dark": (66, 100)}[mood]
    assert lo <= clip.tempo_bpm <= hi  # the file's 90 BPM is kept where the mood's range has it
    assert np.allclose(np.diff(clip.beats), 60.0 / clip.tempo_bpm)
    assert set(np.round(clip.downbeats, 6)) <= set(np.round(clip.beats, 6))
    # the notes sound where the beats are: the onset strength is higher on the beats than half a beat off them
    # (by little for the string ensemble, whose attack takes ~0.1 s)
    import librosa

    y, sr = clip.audio, clip.sample_rate
    assert len(y) == round(clip.duration_s * sr) and np.abs(y).max() > 0.1
    strength = librosa.onset.onset_strength(y=y, sr=sr, hop_length=160)
    at = lambda times: float(np.mean([strength[int(t * 100) : int(t * 100) + 6].max() for t in times]))  # noqa: E731
    assert at(clip.beats[1:-1]) > 1.1 * at(clip.beats[1:-1] + 30.0 / clip.tempo_bpm)


def test_a_piece_too_short_for_a_clip_gives_none_and_a_broken_midi_file_is_refused() -> None:
    short = midi_piece(_midi_bytes(C_MAJOR, bars=2), "short")
    assert render_clip(short, rng=np.random.default_rng(0), duration_s=12.0) is None
    with pytest.raises(ValueError, match="not a readable MIDI file"):
        midi_piece(b"MThd\x00\x00\x00\x06 not midi", "broken")


def test_the_grade_carries_the_mood_and_cuts_fall_on_beats() -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(40, 216, size=(200, 360, 3), dtype=np.uint8)
    bright, dark = grade_picture(photo, "bright", rng), grade_picture(photo, "dark", rng)
    assert bright.mean() > photo.mean() > dark.mean() + 30
    piece = midi_piece(_midi_bytes(C_MAJOR, bars=24), "m")
    on_grid = 0
    for index in range(6):
        made = pair_clip(piece, [photo, photo[::-1]], seed=3, index=index)
        assert made is not None
        plan, music, _, row = made
        assert row["id"] == f"clip{index:05d}" and row["mood"] == "bright"
        assert len(music.audio) == round(plan.duration_s * music.sample_rate)
        if row["cut_grid"] == "beats":
            on_grid += 1
            assert sum(row["transition_on_beat"]) >= 0.5 * len(row["transitions"])
    assert on_grid >= 1


def test_the_paired_job_writes_one_row_per_clip_and_piece_and_keeps_held_out_music_apart(
        ray_cluster: None, workdir: str, tmp_path: Path) -> None:
    midi = tmp_path / "midi"
    midi.mkdir()
    for i in range(6):
        (midi / f"song{i}.mid").write_bytes(_midi_bytes(C_MAJOR if i % 2 else A_MINOR, bars=10 + i))
    (midi / "broken.mid").write_bytes(b"not a midi file")
    out = tmp_path / "paired"
    argv = ["paired", "--out", str(out), "--clips", "6", "--preset", "debug", "--kinds", "none", "--midi", str(midi),
            "--holdout", "0.4", "--workdir", workdir]
    assert main(argv) == 0
    pieces = pq.read_table(out / "pieces.parquet").to_pylist()
    assert len(pieces) == 7
    broken = [p for p in pieces if p["status"] == "error"]
    assert [p["id"] for p in broken] == ["midi:broken.mid"] and "not a readable MIDI file" in broken[0]["error"]
    truth = pq.read_table(out / "ground_truth.parquet").to_pylist()
    assert [r["id"] for r in truth] == [f"clip{i:05d}" for i in range(6)]
    assert all(r["status"] == "ok" for r in truth), [r["error"] for r in truth]
    from jobs.train import held_out

    held = {p["id"] for p in pieces if p["status"] == "ok" and held_out(p["id"], 0.4)}
    for r in truth:
        assert r["split"] == ("holdout" if held_out(r["id"], 0.4) else "train")
        if held and r["split"] == "holdout":
            assert r["piece"] in held
        elif r["split"] == "train":
            assert r["piece"] not in held
        assert r["mood"] == {"major": "bright", "minor": "dark"}[r["mode"]]
        with av.open(r["uri"]) as container:
            assert container.streams.video[0].codec_context.width == 160
            assert abs(container.duration / 1e6 - r["duration_s"]) < 0.15
            assert container.streams.audio[0].sample_rate == 16_000
    videos = pq.read_table(out / "videos.parquet").to_pylist()
    assert [v["id"] for v in videos] == [r["id"] for r in truth]
    assert main(argv) == 0  # a rerun makes nothing again and leaves the same rows
    assert pq.read_table(out / "ground_truth.parquet").to_pylist() == truth


def test_pieces_round_trip_through_their_rows() -> None:
    piece = midi_piece(_midi_bytes(A_MINOR), "m")
    back = Piece.from_row(piece.to_row())
    assert back.id == piece.id and np.array_equal(back.pitch, piece.pitch) and np.allclose(back.beats_q, piece.beats_q)
