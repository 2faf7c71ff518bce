"""The Ray side of every job: starting or joining a cluster, and progress over Ray tasks.

A job joins the cluster named by ``--address`` or ``RAY_ADDRESS``; otherwise it starts a local
one with ``--num-cpus`` CPUs (all by default). When Ray is already running in the process (a
notebook, the test session) the job uses it and leaves it running.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from jobs.storage import worker_env

__all__ = ["ErrorRateExceeded", "JobError", "check_error_rate", "error_rate", "failure_reason", "quiet_logs", "ray_results",
           "start_ray", "stop_ray"]


class JobError(RuntimeError):
    """A mistake in how a job was called (bad option, unreachable output): shown without a traceback."""


class ErrorRateExceeded(RuntimeError):
    """More inputs failed than ``--max-error-rate`` allows; the outputs (error rows included) are written."""


def error_rate(summary: dict[str, Any]) -> tuple[int, int] | None:
    """``(errors, processed)`` of a job's summary, or ``None`` when the job does not count errors.

    The convention every job's summary follows: ``errors`` is the number of inputs of this run
    that gave an error row, and ``processed`` the number of inputs this run handled (rows
    written, error rows included). Inputs skipped because they were done already are in
    neither. A summary without ``processed`` falls back to ``inputs`` minus ``skipped``.
    """
    if not isinstance(summary.get("errors"), int):
        return None
    processed = summary.get("processed")
    if not isinstance(processed, int):
        if not isinstance(summary.get("inputs"), int):
            return None
        processed = int(summary["inputs"]) - int(summary.get("skipped") or 0)
    return int(summary["errors"]), processed


def check_error_rate(summary: dict[str, Any], max_rate: float) -> None:
    """Raise :class:`ErrorRateExceeded` when the share of failed inputs is above ``max_rate``."""
    counts = error_rate(summary)
    if counts is None or counts[1] <= 0:
        return
    errors, processed = counts
    rate = errors / processed
    if rate > max_rate:
        raise ErrorRateExceeded(
            f"{errors} of {processed} inputs failed: error rate {rate:.3f} is above --max-error-rate {max_rate:g} "
            "(the error rows say why; rerun with a higher --max-error-rate to accept them)"
        )


def quiet_logs() -> None:
    """Silence library chatter a user cannot act on (Ray's and MLflow's start-up INFO lines)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("alembic", "mlflow", "ray", "ray.data", "ray.train", "urllib3", "botocore", "s3fs", "aiobotocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A local cluster turns on token authentication by default and says so at every start.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")


def start_ray(*, address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join or start Ray; return whether this call started it (and so should stop it).

    Parameters
    ----------
    address : str, optional
        A cluster address (``ray://host:10001`` or ``auto``); defaults to ``RAY_ADDRESS``.
    num_cpus : int, optional
        CPUs of a local cluster; all of this machine's by default. Ignored when joining one.
    """
    import ray  # noqa: PLC0415  (only jobs that run start Ray)

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    runtime_env: dict[str, Any] = {"env_vars": _driver_env_vars()}
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=num_cpus, runtime_env=runtime_env, include_dashboard=False,
                logging_level=logging.WARNING, configure_logging=True,
            )
    except ConnectionError as e:
        raise JobError(f"cannot reach the Ray cluster at {address}: {e}") from e
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    return True


#: Not copied into a Ray Job's runtime_env by the driver (it would show them on the Ray dashboard).
_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _driver_env_vars() -> dict[str, str]:
    """:func:`jobs.storage.worker_env` for ``ray.init``; inside a Ray Job, only what the job lacks.

    A job submitted with ``ray job submit --runtime-env-json '{"env_vars": {...}}'`` (or a KubeRay
    RayJob's ``runtimeEnvYAML``) runs its driver and workers with that runtime_env, and Ray refuses
    a ``ray.init(runtime_env=...)`` that sets one of the same keys again: only the variables the
    job's runtime_env lacks are added, and never credentials (on a cluster, workers get those from
    their own environment: a Kubernetes Secret, an instance role, or the job's runtime_env).
    """
    import json  # noqa: PLC0415

    env = worker_env()
    injected = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # set by Ray for a job's driver (ray._private.runtime_env)
    if injected:
        job_env = (json.loads(injected).get("runtime_env") or {}).get("env_vars") or {}
        env = {k: v for k, v in env.items() if k not in job_env and k not in _CREDENTIALS}
    return env


def stop_ray(started: bool) -> None:
    """Shut Ray down if :func:`start_ray` started it."""
    if started:
        import ray  # noqa: PLC0415

        ray.shutdown()


def ray_results(refs: list[Any], *, desc: str, unit: str = "item") -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(position, result, error)`` for Ray object refs as they finish, with a progress bar.

    A task whose worker died or raised yields ``error`` (a one-line reason) instead of raising,
    so the job can write an error row for that input and go on with the others.
    """
    import ray  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    if not refs:
        return
    position = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    with tqdm(total=len(pending), desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=None)
            for ref in done:
                try:
                    yield position[ref], ray.get(ref), None
                except ray.exceptions.RayError as e:
                    yield position[ref], None, failure_reason(e)
                bar.update(1)


def failure_reason(e: BaseException) -> str:
    """One line saying why a Ray task failed: the task's own exception when there is one.

    Ray Data wraps a user function's exception in a ``UserCodeException`` whose cause does not
    travel back to the driver; its traceback text does, and names the user's exception on the
    last line before "The above exception was the direct cause"."""
    cause = getattr(e, "cause", None) or e
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    if type(cause).__name__ == "UserCodeException" and _DIRECT_CAUSE in text:
        inner = [line for line in text.split(_DIRECT_CAUSE)[0].splitlines() if line.strip()]
        if inner and re.match(r"^[A-Za-z_][\w.]*: ", inner[-1]):
            return inner[-1].strip()[:500]
    lines = [line for line in str(cause).strip().splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[-1][:500] if lines else ''}".rstrip(": ")


_DIRECT_CAUSE = "The above exception was the direct cause of the following exception"
