"""The command line as a user meets it: help texts, and clear errors without tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _jobs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_jobs_with_descriptions() -> None:
    result = _jobs("--help")
    assert result.returncode == 0
    assert "sample" in result.stdout and "synthetic ads" in result.stdout


def test_each_job_has_help() -> None:
    from jobs import JOBS

    for name in JOBS:
        result = _jobs(name, "--help")
        assert result.returncode == 0, result.stderr
        assert "--address" in result.stdout and "examples:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "invalid choice: 'nope'"),
        (["sample", "--out", "{tmp}/x", "--videos", "0"], "--videos must be at least 1, got 0"),
        (["sample", "--out", "{tmp}/x", "--pieces", "0"], "--pieces must be at least 1"),
        (["sample", "--out", "{tmp}/x", "--composers", "bach,chopin"], "unknown ['chopin']"),
        (["sample", "--out", "{tmp}/afile/x"], "--out is not writable"),
        (["sample", "--out", "ftp://host/x"], "unsupported URL scheme 'ftp'"),
        (["sample"], "the following arguments are required: --out"),
        (["train", "--data", "{tmp}/d", "--output", "{tmp}/m", "--steps", "10", "--schedule-steps", "5"],
         "--schedule-steps (5) must be at least the phase's steps (10)"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "afile").write_text("not a folder")
    result = _jobs(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_s3_output_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    result = _jobs("sample", "--out", "s3://bucket/catalog", "--workdir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert "--out is not writable: s3://bucket/catalog: cannot write: cannot reach the endpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_bucket_is_a_clear_error(s3_server: str, tmp_path: Path) -> None:
    result = _jobs("sample", "--out", "s3://no-such-bucket/catalog", "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "the bucket does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_job_has_a_dry_run_that_writes_nothing(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from jobs import JOBS
    from jobs.__main__ import _module, main

    assert all(hasattr(_module(name), "dry_run") for name in JOBS)
    out = tmp_path / "out"
    assert main(["score", "--input", str(catalog / "videos"), "--output", str(out), "--limit", "2", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["would_process"] == ["ad00000", "ad00001"] and plan["outputs"]["scores"] == str(out / "scores")
    assert main(["words", "--input", str(catalog / "midi"), "--output", str(out / "w"), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == len(list((catalog / "midi").rglob("*.mid")))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written
