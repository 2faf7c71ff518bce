"""MLflow for every job: one run per job invocation, params without secrets, metrics, artifacts.

Tracking goes to ``MLFLOW_TRACKING_URI`` when set (a server on a cluster); otherwise to an
SQLite file ``<workdir>/mlflow.db`` with artifacts in ``<workdir>/mlartifacts``. Open the UI on
the local store with::

    .venv/bin/mlflow ui --backend-store-uri sqlite:///$(pwd)/work/mlflow.db
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jobs.storage import redact_url

__all__ = ["job_run", "safe_params", "tracking_uri", "ui_command"]

_SECRET_NAME = re.compile(r"(secret|password|passwd|token|credential|api[_-]?key|access[_-]?key)", re.I)


def tracking_uri(workdir: str) -> str:
    """``MLFLOW_TRACKING_URI`` or the local SQLite store under ``workdir``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(workdir).expanduser().resolve() / 'mlflow.db'}"


def ui_command(uri: str) -> str:
    """The command that opens the MLflow UI on ``uri``."""
    return f".venv/bin/mlflow ui --backend-store-uri {redact_url(uri)}"


def safe_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params fit for MLflow: secret-looking names dropped, URLs without credentials, short strings.

    Examples
    --------
    >>> safe_params({"out": "s3://key:pw@bucket/x", "aws_secret_access_key": "abc", "n": 3})
    {'out': 's3://bucket/x', 'n': '3'}
    """
    out = {}
    for key, value in params.items():
        if _SECRET_NAME.search(key) or value is None:
            continue
        text = redact_url(value) if isinstance(value, str) else str(value)
        out[key] = text[:500]
    return out


@contextlib.contextmanager
def job_run(job: str, *, workdir: str, params: Mapping[str, Any], experiment: str | None = None) -> Iterator[Any]:
    """Start an MLflow run for ``job`` (experiment ``jobs/<job>`` by default) and yield it.

    The run ends FINISHED when the block completes and FAILED when it raises.
    """
    import mlflow  # noqa: PLC0415  (slow import; only jobs that run need it)
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    uri = tracking_uri(workdir)
    own_store = not os.environ.get("MLFLOW_TRACKING_URI")
    name = experiment or f"jobs/{job}"
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    if found is None:
        location = (Path(workdir).expanduser().resolve() / "mlartifacts").as_uri() if own_store else None
        experiment_id = client.create_experiment(name, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    mlflow.set_tracking_uri(uri)  # (this also sets MLFLOW_TRACKING_URI, restored below)
    try:
        with mlflow.start_run(experiment_id=experiment_id, tags={"job": job}) as run:
            mlflow.log_params(safe_params(params))
            yield run
    finally:
        if own_store:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
