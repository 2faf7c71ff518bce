"""The sample job's outputs are what they claim: videos, cuts, tempo, MIDI note counts."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import storage
from jobs.__main__ import main
from tests.conftest import N_VIDEOS
from vem.audio import PITCH_CLASSES, estimate_key
from vem.synthetic import SyntheticAdConfig, encode_mp4, plan_ad, render_soundtrack


def _decode(path: str) -> tuple[np.ndarray, float, float, np.ndarray, int]:
    """Grey frames (n, h, w) float32, duration in s, frame rate, mono audio, its sample rate."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        duration = container.duration / 1e6
        frames = np.stack([f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)])
    with av.open(path) as container:
        a = container.streams.audio[0]
        sr = a.sample_rate
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    return frames, duration, rate, audio.astype(np.float32), sr


def test_catalog_tables(catalog: Path) -> None:
    videos = pq.read_table(catalog / "videos.parquet").to_pylist()
    truth = pq.read_table(catalog / "ground_truth.parquet").to_pylist()
    assert [r["id"] for r in videos] == [f"ad{i:05d}" for i in range(N_VIDEOS)]
    assert all(r["status"] == "ok" and r["error"] is None for r in videos)
    assert [r["id"] for r in truth] == [r["id"] for r in videos]
    # the fixture's seed gives every kind of transition, on and off the beat, and both moods
    assert {k for r in truth for k in r["transition_kind"]} == {"cut", "dissolve", "fade"}
    assert {b for r in truth for b in r["transition_on_beat"]} == {True, False}
    assert {r["mood"] for r in truth} == {"bright", "dark"}
    for row in truth:
        assert Path(row["uri"]).is_file()
        assert 8.0 <= row["duration_s"] <= 10.0
        assert 3 <= row["n_shots"] <= 4 and len(row["transitions"]) == row["n_shots"] - 1
        assert row["mode"] == ("major" if row["mood"] == "bright" else "minor")
        period = 60.0 / row["tempo_bpm"]
        beats = np.array(row["beats"])
        assert np.allclose(np.diff(beats), period)
        for t, on_beat in zip(row["transitions"], row["transition_on_beat"], strict=True):
            distance = np.min(np.abs(beats - t))
            if on_beat:
                assert distance <= 0.5 / row["fps"] + 1e-6
            else:
                assert distance >= 0.3 * period - 0.5 / row["fps"]


@pytest.mark.parametrize("index", range(N_VIDEOS))
def test_video_decodes_with_declared_cuts_and_tempo(catalog: Path, index: int) -> None:
    import librosa

    row = pq.read_table(catalog / "ground_truth.parquet").to_pylist()[index]
    frames, duration, rate, audio, sr = _decode(row["uri"])
    fps = row["fps"]
    # duration and frame rate as declared
    assert rate == fps
    assert len(frames) == row["n_frames"]
    assert abs(duration - row["duration_s"]) <= 1.0 / fps
    assert abs(len(audio) / sr - row["duration_s"]) <= 0.05

    # frame-difference peaks: exactly at the declared hard cuts, and nowhere else outside gradual transitions
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))  # diff[k-1] = change into frame k
    cut_frames = {round(t * fps) for t, kind in zip(row["transitions"], row["transition_kind"], strict=True) if kind == "cut"}
    in_gradual = np.zeros(len(diff), dtype=bool)
    for t, length, kind in zip(row["transitions"], row["transition_duration_s"], row["transition_kind"], strict=True):
        if kind != "cut":
            lo, hi = round((t - length / 2) * fps) - 1, round((t + length / 2) * fps) + 1
            in_gradual[max(lo, 0) : hi] = True
    threshold = 6 * np.median(diff) + 2.0
    peaks = {k + 1 for k in np.flatnonzero(diff > threshold) if not in_gradual[k]}
    assert peaks == cut_frames, (sorted(peaks), sorted(cut_frames), np.round(diff, 1))
    # a gradual transition changes the picture as much as a cut, but spread over its frames
    for t, length, kind in zip(row["transitions"], row["transition_duration_s"], row["transition_kind"], strict=True):
        if kind != "cut":
            a, b = round((t - length / 2) * fps), round((t + length / 2) * fps)
            total = np.abs(frames[min(b, len(frames) - 1)] - frames[a - 1]).mean()
            assert total > threshold
            assert diff[a - 1 : b].max() < 0.5 * total

    # librosa's beat tracker hears the declared tempo
    y = librosa.resample(audio, orig_sr=sr, target_sr=22050)
    tempo, _ = librosa.beat.beat_track(y=y, sr=22050, hop_length=128)
    assert abs(float(np.atleast_1d(tempo)[0]) - row["tempo_bpm"]) <= 0.02 * row["tempo_bpm"]


def test_midi_parse_back_with_declared_note_counts(catalog: Path) -> None:
    import pretty_midi

    rows = pq.read_table(catalog / "midi.parquet").to_pylist()
    assert {r["composer"] for r in rows} == {"bach", "palestrina", "beethoven", "mozart", "essen"}
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    for row in rows:
        path = Path(row["uri"])
        assert path.relative_to(catalog / "midi").parts[0] == row["composer"]
        assert path.suffix == ".mid" and row["id"] == f"{row['composer']}/{path.stem}"
        midi = pretty_midi.PrettyMIDI(io.BytesIO(path.read_bytes()))
        assert sum(len(i.notes) for i in midi.instruments) == row["n_notes"] > 0
        assert len(midi.instruments) == row["n_voices"]


def test_rerun_renders_nothing_and_changes_nothing(catalog: Path, workdir: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in sorted((catalog / "videos").glob("*.mp4"))}
    argv = ["sample", "--out", str(catalog), "--videos", str(N_VIDEOS), "--preset", "debug", "--seed", "2", "--pieces", "1",
            "--workdir", workdir]
    assert main(argv) == 0
    assert '"videos_rendered": 0' in capsys.readouterr().err
    assert {p: p.read_bytes() for p in sorted((catalog / "videos").glob("*.mp4"))} == before


def test_other_seed_in_same_folder_is_refused(catalog: Path, workdir: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--out", str(catalog), "--videos", "2", "--preset", "debug", "--seed", "4", "--workdir", workdir]) == 2
    assert "seed 2" in capsys.readouterr().err


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    plan = plan_ad(seed=11, index=2, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(tmp_path / "a.mp4"))
    encode_mp4(plan_ad(seed=11, index=2, config=SyntheticAdConfig.debug()), str(tmp_path / "b.mp4"))
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    other = plan_ad(seed=12, index=2, config=SyntheticAdConfig.debug())
    assert other != plan


def test_catalog_statistics_match_the_specification() -> None:
    plans = [plan_ad(seed=0, index=i) for i in range(400)]
    durations = np.array([p.duration_s for p in plans])
    shots = np.array([len(p.shots) for p in plans])
    transitions = [t for p in plans for t in p.transitions]
    on_beat = np.mean([t.on_beat for t in transitions])
    gradual = np.mean([t.kind != "cut" for t in transitions])
    assert durations.min() >= 8 and durations.max() <= 30
    assert shots.min() == 3 and shots.max() >= 10 and shots.max() <= 12
    assert 0.80 <= on_beat <= 0.90
    assert 0.1 <= gradual <= 0.3
    for p in plans:
        assert all(b.start_s - a.start_s >= 2.0 - 1e-9 for a, b in zip(p.shots, p.shots[1:], strict=False))
        bright = p.mood == "bright"
        assert (p.mode == "major") == bright and (p.tempo_bpm >= 112) == bright


def test_the_soundtrack_key_and_mode_are_recognisable_from_its_pitch_classes() -> None:
    """A key-profile estimator (the one the mood metrics use) finds the planned tonic and mode: the
    minor loop is not a rotation of the relative major's chords."""
    plans = [plan_ad(seed=3, index=i) for i in range(20)]
    assert {p.mode for p in plans} == {"major", "minor"}
    right = [estimate_key(render_soundtrack(p), sr=p.sample_rate)[:2] == (PITCH_CLASSES[p.tonic], p.mode) for p in plans]
    # (with the natural-minor loop i-VI-III-VII, about half the minor ones read as the relative major)
    assert np.mean(right) >= 0.9, [(p.index, p.mode) for p, ok in zip(plans, right, strict=True) if not ok]


def test_sample_job_on_s3(ray_cluster: None, bucket: str, workdir: str) -> None:
    out = f"s3://{bucket}/catalog"
    assert main(["sample", "--out", out, "--videos", "2", "--preset", "debug", "--composers", "essen", "--pieces", "2",
                 "--workdir", workdir]) == 0
    videos = storage.read_table(f"{out}/videos.parquet").to_pylist()
    assert [r["status"] for r in videos] == ["ok", "ok"]
    assert storage.list_files(f"{out}/videos") == [f"{out}/videos/ad00000.mp4", f"{out}/videos/ad00001.mp4"]
    with av.open(io.BytesIO(storage.read_bytes(videos[0]["uri"]))) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    midi = storage.read_table(f"{out}/midi.parquet").to_pylist()
    assert len(midi) == 2 and all(storage.exists(r["uri"]) for r in midi)
