"""MLflow: a job run is recorded in the SQLite store and reads back through MlflowClient."""

from __future__ import annotations

import pytest

from jobs.tracking import job_run, safe_params, tracking_uri


def test_run_is_recorded_and_readable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = {"out": "s3://AKIAXXXX:hunter2@bucket/prefix", "videos": 3, "aws_secret_access_key": "hunter2"}
    with job_run("unit", workdir=str(tmp_path), params=params) as run:
        mlflow.log_metric("rows", 3.0)
        mlflow.log_dict({"ok": True}, "summary.json")
    uri = tracking_uri(str(tmp_path))
    assert uri == f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"out": "s3://bucket/prefix", "videos": "3"}
    assert got.data.metrics == {"rows": 3.0}
    assert got.data.tags["job"] == "unit"
    assert client.get_experiment(got.info.experiment_id).name == "jobs/unit"
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert artifacts == ["summary.json"]
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts stay beside the store
    assert "hunter2" not in (tmp_path / "mlflow.db").read_bytes().decode("latin-1")


def test_failed_block_marks_run_failed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError):
        with job_run("unit", workdir=str(tmp_path), params={}) as run:
            raise ValueError("job failed")
    assert MlflowClient(tracking_uri(str(tmp_path))).get_run(run.info.run_id).info.status == "FAILED"


def test_tracking_uri_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking_uri(str(tmp_path)) == "http://mlflow.internal:5000"


def test_safe_params_drops_secrets() -> None:
    got = safe_params({"api_key": "k", "password": "p", "token": "t", "url": "http://u:p@h/x", "n": 1, "none": None})
    assert got == {"url": "http://h/x", "n": "1"}
