"""Faults and trust: a worker killed mid-job, ids that try to leave the output, planted credentials."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import storage
from jobs.__main__ import main
from tests.procs import raylet_pid, workers
from vem.pipeline import VeMPipeline


def test_a_scoring_actor_killed_mid_job_loses_no_input(ray_cluster: None, workdir: str, catalog: Path,
                                                        tmp_path: Path) -> None:
    raylet = raylet_pid()  # this session's node only
    videos = tmp_path / "videos"
    videos.mkdir()
    for p in sorted((catalog / "videos").glob("*.mp4")):
        shutil.copy(p, videos / p.name)
    out = tmp_path / "scores"
    result: list[int] = []
    job = threading.Thread(target=lambda: result.append(main(
        ["score", "--input", str(videos), "--output", str(out), "--workers", "1", "--block-inputs", "1", "--workdir", workdir])))
    job.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and job.is_alive():
        for pid in workers(raylet, "Scorer"):
            time.sleep(1.0)  # let it take its first video
            os.kill(pid, signal.SIGKILL)
            killed = pid
            break
        time.sleep(0.2)
    job.join(timeout=600)
    assert killed is not None, "no scoring actor was seen"
    assert result == [0]
    ids = [r["id"] for r in pq.read_table(out / "scores").to_pylist()]
    assert sorted(ids) == sorted(p.stem for p in videos.glob("*.mp4"))  # every input exactly once


def test_ids_cannot_leave_the_output_folder(ray_cluster: None, workdir: str, catalog: Path, tmp_path: Path) -> None:
    video = sorted((catalog / "videos").glob("*.mp4"))[0]
    manifest = tmp_path / "manifest.parquet"
    evil = ["../../escaped", "/etc/escaped", "a/../../escaped", "..", "s3://other-bucket/escaped"]
    pq.write_table(pa.table({"id": evil, "uri": [str(video)] * len(evil)}), manifest)
    model = VeMPipeline.build("debug").save_pretrained(tmp_path / "model")
    out = tmp_path / "deep" / "out"
    assert main(["generate", "--input", str(manifest), "--model", str(model), "--output", str(out), "--steps", "1",
                 "--workdir", workdir]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "escaped" in p.name]
    assert written and all(out in p.parents for p in written), written
    assert not (tmp_path / "escaped.wav").exists() and not Path("/etc/escaped.wav").exists()
    rows = pq.read_table(out / "generated").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(evil) and all(r["status"] == "ok" for r in rows)
    assert len({r["video_uri"] for r in rows}) == len(evil)  # distinct ids, distinct files


def test_planted_credentials_reach_no_log_param_row_or_artifact(ray_cluster: None, bucket: str, catalog: Path,
                                                                tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    secret = f"PLANTEDsecret{uuid.uuid4().hex}"
    key_id = f"AKIAPLANTED{uuid.uuid4().hex[:8].upper()}"
    saved = {k: os.environ.get(k) for k in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")}
    os.environ.update(AWS_SECRET_ACCESS_KEY=secret, AWS_ACCESS_KEY_ID=key_id, AWS_SESSION_TOKEN=secret + "tok")
    workdir = tmp_path / "mlflow"
    try:
        for p in sorted((catalog / "videos").glob("*.mp4"))[:2]:
            storage.write_bytes(f"s3://{bucket}/in/{p.name}", p.read_bytes())
        storage.write_bytes(f"s3://{bucket}/in/broken.mp4", b"not a video")
        out = f"s3://{bucket}/out"
        # the secret also sits in the URL of the output, as a careless user might write it
        assert main(["score", "--input", f"s3://{bucket}/in", "--output", out, "--workdir", str(workdir),
                     "--max-error-rate", "1"]) == 0
        assert main(["score", "--input", f"s3://{key_id}:{secret}@{bucket}/missing", "--output", out,
                     "--workdir", str(workdir)]) == 2
        rows = [r for p in storage.list_files(f"{out}/scores", suffixes=(".parquet",)) for r in storage.read_table(p).to_pylist()]
        assert len(rows) == 3
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    captured = capfd.readouterr()
    places = {"stdout": captured.out, "stderr": captured.err, "rows": repr(rows)}
    for path in workdir.rglob("*"):  # the MLflow database, params, metrics and artifacts
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("latin-1")
    for name, text in places.items():
        assert secret not in text and key_id not in text, f"a planted credential reached {name}"
