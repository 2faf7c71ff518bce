"""Scoring: storyboard and beats against the sample catalog's ground truth, the sync metrics'
power to tell fit from misfit, and the score job (rows out = rows in, bad inputs, reruns, S3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mir_eval
import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import storage
from jobs.__main__ import main
from vem import metrics
from vem.audio import analyze_audio, load_audio
from vem.scoring import score_video
from vem.storyboard import ParseConfig, parse_video
from vem.synthetic import AdPlan, SyntheticAdConfig, encode_mp4, plan_ad


@pytest.fixture(scope="module")
def truth(catalog: Path) -> list[dict]:
    return pq.read_table(catalog / "ground_truth.parquet").to_pylist()


@pytest.fixture(scope="module")
def scored(truth: list[dict]) -> list[dict]:
    return [score_video(r["id"], r["uri"], Path(r["uri"]).read_bytes()) for r in truth]


def _f1(ref: np.ndarray, est: np.ndarray, tol: float) -> tuple[int, int, int]:
    m = len(mir_eval.util.match_events(ref, est, tol)) if len(ref) and len(est) else 0
    return m, len(ref), len(est)


def test_transitions_match_the_ground_truth(truth: list[dict], scored: list[dict]) -> None:
    counts = {"hard": np.zeros(3), "gradual": np.zeros(3)}
    for r, s in zip(truth, scored, strict=True):
        for cat in counts:
            ref = np.array([t for t, c in zip(r["transitions"], r["transition_category"], strict=True) if c == cat])
            est = np.array([t for t, k in zip(s["transitions"], s["transition_kinds"], strict=True) if k == cat])
            counts[cat] += _f1(ref, est, 0.25)
    for cat, bar in (("hard", 0.95), ("gradual", 0.80)):
        m, n_ref, n_est = counts[cat]
        assert n_ref > 0
        f1 = 2 * m / (n_ref + n_est)
        assert f1 >= bar, f"{cat} F1 {f1:.2f} ({int(m)} of {int(n_ref)} found, {int(n_est)} reported)"


def test_beats_and_tempo_match_the_ground_truth(truth: list[dict], scored: list[dict]) -> None:
    f = [mir_eval.beat.f_measure(mir_eval.beat.trim_beats(np.array(r["beats"])), mir_eval.beat.trim_beats(np.array(s["beats"])))
         for r, s in zip(truth, scored, strict=True)]
    assert np.mean(f) >= 0.85
    for r, s in zip(truth, scored, strict=True):
        assert abs(s["tempo_bpm"] - r["tempo_bpm"]) <= 0.04 * r["tempo_bpm"]


def _auc(pos: list[float], neg: list[float]) -> float:
    """Probability that a fitting pair scores above a misfit one (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_tight_metrics_tell_fit_from_misfit_and_the_paper_tolerance_does_not(truth: list[dict]) -> None:
    fit: dict[str, list[float]] = {"cut_beat_hit": [], "tbiou_tight": [], "tbiou": []}
    misfit: dict[str, list[float]] = {k: [] for k in fit}
    analyses = [analyze_audio(load_audio(r["uri"])) for r in truth]
    boards = [parse_video(r["uri"]) for r in truth]
    for i, (board, audio) in enumerate(zip(boards, analyses, strict=True)):
        half_beat = 30.0 / audio.tempo_bpm
        shifted = audio.beats + half_beat  # the same soundtrack half a beat late
        other = analyses[(i + 1) % len(analyses)].beats  # another video's soundtrack
        # ... unless its beats fall where this one's do (same tempo and phase): for sync that is no misfit
        # (seed 2 has such a pair, 94.3 and 94.7 BPM in phase, which cuts found within 10 ms rightly fit)
        others = [other] if metrics.cut_beat_hit(audio.beats, other) < 0.5 else []
        edited_on_beat = np.mean(truth[i]["transition_on_beat"]) >= 0.5  # the editor cut this one to the music
        for key, fn in (("cut_beat_hit", metrics.cut_beat_hit), ("tbiou_tight", metrics.tbiou_tight), ("tbiou", metrics.tbiou)):
            if edited_on_beat:
                fit[key].append(fn(board.transitions, audio.beats))
            misfit[key].extend([fn(board.transitions, b) for b in (shifted, *others)])
    assert len(fit["cut_beat_hit"]) >= 4 and len(misfit["cut_beat_hit"]) >= 1.5 * len(truth)  # few left out
    assert _auc(fit["cut_beat_hit"], misfit["cut_beat_hit"]) >= 0.95
    assert _auc(fit["tbiou_tight"], misfit["tbiou_tight"]) >= 0.95
    # the paper's 0.5 s TBIoU cannot see it: do not "fix" the tight metric back to it
    assert _auc(fit["tbiou"], misfit["tbiou"]) < 0.95


def _bad_inputs(folder: Path) -> dict[str, str]:
    """Inputs that must become error rows or partial rows, with the reason expected."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = plan_ad(seed=9, index=0, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(folder / "good.mp4"))
    encode_mp4(plan, str(folder / "silent.mp4"), streams="video")
    encode_mp4(plan, str(folder / "audio_only.mp4"), streams="audio")
    (folder / "empty.mp4").write_bytes(b"")
    data = (folder / "good.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return {"empty": "video:", "truncated": "video:", "audio_only": "no video track", "silent": "no audio track"}


def test_score_job_bad_inputs_reruns_and_rows(ray_cluster: None, workdir: str, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    expected = _bad_inputs(videos)
    out = tmp_path / "scores"
    # 3 of 5 inputs are bad on purpose: accept them (--max-error-rate is tested in test_cluster.py)
    assert main(["score", "--input", str(videos), "--output", str(out), "--workdir", workdir, "--max-error-rate", "1"]) == 0
    rows = {r["id"]: r for r in pq.read_table(out / "scores").to_pylist()}
    assert sorted(rows) == sorted(["good", *expected])  # rows out = rows in
    assert rows["good"]["status"] == "ok" and rows["good"]["cut_beat_hit"] is not None
    assert rows["silent"]["status"] == "ok" and rows["silent"]["cut_beat_hit"] is None
    assert "no audio track" in rows["silent"]["warning"]
    for name in ("empty", "truncated", "audio_only"):
        assert rows[name]["status"] == "error" and expected[name] in rows[name]["error"], rows[name]
    assert all(r["semantic"] is None and "no joint" in r["semantic_note"] for r in rows.values() if r["status"] == "ok")
    # a rerun scores nothing again; a new video alone is scored
    encode_mp4(plan_ad(seed=9, index=1, config=SyntheticAdConfig.debug()), str(videos / "new.mp4"))
    assert main(["score", "--input", str(videos), "--output", str(out), "--workdir", workdir]) == 0
    again = pq.read_table(out / "scores").to_pylist()
    assert sorted(r["id"] for r in again) == sorted(["good", "new", *expected])


N_BROKEN = 40  # the actor runs ahead of the driver by a few blocks: enough inputs that some are left at the stop


def test_a_run_of_failures_stops_early_and_the_rest_get_rows_naming_the_stop(ray_cluster: None, workdir: str,
                                                                              catalog: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow

    from jobs.incremental import read_latest

    videos = tmp_path / "videos"
    videos.mkdir()
    for k in range(N_BROKEN):
        (videos / f"broken{k:02d}.mp4").write_bytes(b"not a video %d" % k)
    out = tmp_path / "scores"
    argv = ["score", "--input", str(videos), "--output", str(out), "--workdir", workdir, "--workers", "1",
            "--block-inputs", "2", "--max-error-rate", "0.5"]
    assert main([*argv, "--error-window", "4"]) == 1  # over the rate: the job says so
    rows = read_latest(str(out / "scores")).to_pylist()
    assert sorted(r["id"] for r in rows) == [f"broken{k:02d}" for k in range(N_BROKEN)]  # every input has its one row
    stopped = [r for r in rows if r["error"].startswith("stopped early")]
    assert 1 <= len(stopped) <= N_BROKEN - 4 and "4 of the last 4 inputs failed" in stopped[0]["error"]
    assert "--max-error-rate 0.5" in stopped[0]["error"]
    err = capsys.readouterr().err
    assert "score: stopped early" in err and f"/{N_BROKEN} inputs" in err  # progress: done of all, rate, failures
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("jobs/score").experiment_id],
                             order_by=["start_time DESC"])[0]
    assert run.data.metrics["inputs_done"] == 4  # the driver stopped at the window; blocks in flight wrote their rows
    # a rerun that does not stop early processes exactly the inputs the stop left
    assert main([*argv, "--error-window", "0"]) == 1
    again = {r["id"]: r for r in read_latest(str(out / "scores")).to_pylist()}
    assert len(again) == N_BROKEN and not any(r["error"].startswith("stopped early") for r in again.values())
    assert f"{N_BROKEN} inputs: {len(stopped)} new, 0 changed, {N_BROKEN - len(stopped)} skipped" in capsys.readouterr().err
    # block parts of two runs, merged by `compact` into one part holding the same newest rows
    parts = sorted((out / "scores").glob("part-*.parquet"))
    assert len(parts) >= 3
    assert main(["compact", "--output", str(out), "--workdir", workdir]) == 0
    assert len(list((out / "scores").glob("part-*.parquet"))) == 1
    assert {r["id"]: r for r in read_latest(str(out / "scores")).to_pylist()} == again


def test_a_rerun_retries_inputs_storage_could_not_read_but_not_broken_ones(ray_cluster: None, workdir: str,
                                                                          catalog: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    late, broken = tmp_path / "late.mp4", tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    manifest = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"id": ["late", "broken"], "uri": [str(late), str(broken)]}), manifest)
    out = tmp_path / "scores"
    argv = ["score", "--input", str(manifest), "--output", str(out), "--workdir", workdir, "--max-error-rate", "1"]
    assert main(argv) == 0
    first = {r["id"]: r for r in pq.read_table(out / "scores").to_pylist()}
    assert first["late"]["status"] == "error" and first["late"]["error"].startswith("read:"), first["late"]
    assert first["broken"]["status"] == "error" and not first["broken"]["error"].startswith("read:")
    shutil.copy(sorted((catalog / "videos").glob("*.mp4"))[0], late)  # the upload arrives
    assert main(argv) == 0
    from jobs.incremental import read_latest

    now = {r["id"]: r for r in read_latest(str(out / "scores")).to_pylist()}
    assert now["late"]["status"] == "ok"  # retried
    assert now["broken"]["error"] == first["broken"]["error"]
    assert len(pq.read_table(out / "scores")) == 3  # broken was not scored again: one row, late two


def test_limits_are_configurable_errors(tmp_path: Path) -> None:
    plan = plan_ad(seed=9, index=0, config=SyntheticAdConfig.debug())
    encode_mp4(plan, str(tmp_path / "v.mp4"))
    data = (tmp_path / "v.mp4").read_bytes()
    for config, reason in (
        (ParseConfig(max_duration_s=5.0), "over the 5 s limit"),
        (ParseConfig(max_pixels=100 * 50), "over the limit of 5000 pixels"),
        (ParseConfig(max_frames=50), "frames"),
    ):
        row = score_video("v", "v.mp4", data, config=config)
        assert row["status"] == "error" and reason in row["error"], row["error"]


def test_score_job_on_s3(ray_cluster: None, workdir: str, bucket: str, catalog: Path) -> None:
    for p in sorted((catalog / "videos").glob("*.mp4"))[:2]:
        storage.write_bytes(f"s3://{bucket}/in/{p.name}", p.read_bytes())
    out = f"s3://{bucket}/scores"
    assert main(["score", "--input", f"s3://{bucket}/in", "--output", out, "--workdir", workdir]) == 0
    parts = storage.list_files(f"{out}/scores", suffixes=(".parquet",))
    rows = [r for p in parts for r in storage.read_table(p).to_pylist()]
    assert sorted(r["id"] for r in rows) == ["ad00000", "ad00001"]
    assert all(r["status"] == "ok" for r in rows)


def test_explain_draws_a_timeline(ray_cluster: None, workdir: str, catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores"
    assert main(["score", "--input", str(catalog / "videos"), "--output", str(out), "--explain", "ad00001",
                 "--workdir", workdir]) == 0
    assert (out / "explain" / "ad00001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _encode_x264(plan: AdPlan, path: Path, x264_params: str) -> None:
    """The plan's frames as H.264 with these libx264 settings (one thread: the same bytes everywhere)."""
    from fractions import Fraction

    import av

    from vem.synthetic import render_frames

    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=plan.fps)
        video.width, video.height = plan.width, plan.height
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "23", "preset": "veryfast", "threads": "1", "x264-params": x264_params}
        for k, rgb in enumerate(render_frames(plan)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, plan.fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)


@pytest.mark.parametrize("x264_params", [
    "bframes=3",  # x264's adaptive B-frames with B-pyramid; it puts a reference frame on every cut it detects
    "bframes=2:b-adapt=0:b-pyramid=none:scenecut=0:keyint=48",  # a fixed IBBP pattern: cuts may land on B-frames
])
def test_skipping_non_reference_frames_keeps_the_transitions(tmp_path: Path, x264_params: str) -> None:
    from vem.storyboard import decode_frames

    plan = plan_ad(seed=4, index=2, config=SyntheticAdConfig.debug())
    path = tmp_path / "v.mp4"
    _encode_x264(plan, path, x264_params)
    _, fresh, _ = decode_frames(str(path), ParseConfig())
    assert 0 < (~fresh).sum() < len(fresh)  # frames were skipped, so some slots repeat their neighbour
    skipped = parse_video(str(path), ParseConfig())
    full = parse_video(str(path), ParseConfig(skip_nonref=False))
    truth = np.array([t.time_s for t in plan.transitions])
    for board in (skipped, full):
        assert len(board.transitions) == len(truth)
        assert np.abs(board.transitions - truth).max() <= 0.25
        assert board.transition_kinds == [t.category for t in plan.transitions]
    assert np.abs(skipped.transitions - full.transitions).max() <= 0.13  # two frames at 24 fps and a bit
    # motion energy stays per unit of time: a repeated slot's share comes from the next fresh one
    assert abs(skipped.motion_energy.mean() / full.motion_energy.mean() - 1) < 0.2


def test_a_stream_skipping_would_leave_long_gaps_in_is_decoded_in_full(tmp_path: Path) -> None:
    from vem.storyboard import decode_frames

    plan = plan_ad(seed=4, index=2, config=SyntheticAdConfig.debug())
    path = tmp_path / "v.mp4"
    _encode_x264(plan, path, "bframes=8:b-adapt=0:b-pyramid=none")  # 8 non-reference frames in a row: gaps of 0.375 s
    frames, fresh, _ = decode_frames(str(path), ParseConfig())
    assert fresh.all()
    assert np.array_equal(frames, decode_frames(str(path), ParseConfig(skip_nonref=False))[0])
    _, lax, _ = decode_frames(str(path), ParseConfig(max_skip_gap_s=1.0))
    assert (~lax).sum() > len(lax) // 2  # what the limit prevented: most slots would repeat a frame


def test_a_timestamp_far_ahead_is_refused_not_filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots are filled up to each frame's time: a frame stamped an hour on (a header that said
    otherwise) must be refused, not make 57600 slots."""
    from fractions import Fraction

    import av

    from vem import storyboard
    from vem.storyboard import VideoError

    path = tmp_path / "jump.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height = 64, 48
        video.pix_fmt = "yuv420p"
        video.options = {"threads": "1", "bframes": "0"}
        for k, pts in enumerate([0, 1, 2, 24 * 3600]):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 24)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    monkeypatch.setattr(storyboard, "_duration", lambda container, stream: 1.0)  # the header lies
    with pytest.raises(VideoError, match="past the 60 s limit"):
        parse_video(str(path), ParseConfig(max_duration_s=60.0))


def test_inputs_that_share_a_stem_keep_their_suffix_and_a_manifest_with_an_id_twice_is_refused(
        ray_cluster: None, workdir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa

    from jobs.score import list_inputs

    videos = tmp_path / "videos"
    videos.mkdir()
    encode_mp4(plan_ad(seed=9, index=0, config=SyntheticAdConfig.debug()), str(videos / "ad1.mp4"))
    (videos / "ad1.mov").write_bytes((videos / "ad1.mp4").read_bytes())  # the same stem in another container
    encode_mp4(plan_ad(seed=9, index=1, config=SyntheticAdConfig.debug()), str(videos / "ad2.mp4"))
    assert sorted(list_inputs(str(videos)).column("id").to_pylist()) == ["ad1.mov", "ad1.mp4", "ad2"]
    out = tmp_path / "scores"
    assert main(["score", "--input", str(videos), "--output", str(out), "--workdir", workdir]) == 0
    rows = pq.read_table(out / "scores").to_pylist()
    assert sorted(r["id"] for r in rows) == ["ad1.mov", "ad1.mp4", "ad2"] and all(r["status"] == "ok" for r in rows)
    assert main(["score", "--input", str(videos), "--output", str(out), "--workdir", workdir]) == 0  # a rerun: all done
    assert len(pq.read_table(out / "scores")) == 3
    # a manifest naming one id twice: refused before anything runs, the duplicate named
    manifest = tmp_path / "twice.parquet"
    pq.write_table(pa.table({"id": ["x", "y", "x"], "uri": [str(videos / "ad1.mp4"), str(videos / "ad2.mp4"),
                                                            str(videos / "ad1.mov")]}), manifest)
    capsys.readouterr()
    assert main(["score", "--input", str(manifest), "--output", str(tmp_path / "other"), "--workdir", workdir]) == 2
    assert "'x'" in capsys.readouterr().err and not (tmp_path / "other" / "scores").exists()


def test_output_file_names_are_an_injective_encoding_of_the_id() -> None:
    from jobs.generate import safe_name

    ids = ["a/b", "a__b", "a_b", "a%2Fb", "..", ".", "%2E", ".hidden", "", "%", "sub/dir/ad1", "ad 1", "ad\u00e91", "ad/../x"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids), dict(zip(ids, names, strict=True))
    assert all("/" not in n and "\\" not in n and not n.startswith(".") and n for n in names)
