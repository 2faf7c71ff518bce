"""One row per input through a Ray Data actor pool, written in parts as it comes.

The shape shared by the jobs that turn many files into rows (score, preprocess, generate, words):
the driver plans what to do (jobs.incremental), an actor pool processes one input per call
(``batch_size=1``: inputs are large and slow, and a failure then costs one row), and rows are
appended to ``<folder>/part-*.parquet`` every ``flush`` rows, atomically, so a crash keeps what
was finished and the rerun skips it. An input that never comes back (a dead worker) gets an error
row.

Units of work are blocks of ``--block-inputs`` inputs (each job's default is about a minute of
work), so progress, flushing and retries move in small steps; the pool starts working when its
first actor is up and grows to ``workers``. Progress (inputs done of all, rate, ETA, errors) goes
to stderr and the MLflow run every :data:`PROGRESS_EVERY_S` seconds. When more than
``--max-error-rate`` of the last ``--error-window`` inputs failed, the job stops early: the inputs
not processed get error rows naming the stop (a rerun retries them).
"""

from __future__ import annotations

import abc
import argparse
import collections
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from jobs import incremental, storage
from jobs.sandbox import DEFAULT_LIMIT_S, DEFAULT_MEMORY_GIB, Sandbox

__all__ = ["RowWorker", "add_row_arguments", "map_rows", "preview", "row_options"]

SHOWN = 20  # ids listed by a dry run
PROGRESS_EVERY_S = 10.0
STOPPED = "stopped early"  # the error of the inputs an early stop left (jobs.incremental.RETRY_ERRORS retries them)


def add_row_arguments(parser: argparse.ArgumentParser, *, block_inputs: int) -> None:
    """``--block-inputs`` (default ``block_inputs``: about a minute of this job's work) and ``--error-window``."""
    parser.add_argument("--block-inputs", type=int, default=block_inputs,
                        help="inputs per unit of work handed to an actor; progress, retries and a lost worker move in "
                             "these steps (default: %(default)s, about a minute of work)")
    parser.add_argument("--error-window", type=int, default=200,
                        help="stop early when more than --max-error-rate of the last this many inputs failed; the rest "
                             "get error rows naming the stop (0: never stop early) (default: %(default)s)")


def row_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`map_rows` keyword arguments that come from the command line."""
    for name in ("block_inputs", "error_window"):
        if getattr(args, name) < (1 if name == "block_inputs" else 0):
            from jobs.runtime import JobError  # noqa: PLC0415

            raise JobError(f"--{name.replace('_', '-')} must be at least {1 if name == 'block_inputs' else 0}, "
                           f"got {getattr(args, name)}")
    return {"label": args.job, "block_inputs": args.block_inputs, "error_window": args.error_window,
            "max_error_rate": args.max_error_rate}


class RowWorker(abc.ABC):
    """Base of the actors of :func:`map_rows`: ``one(id, uri) -> row`` per input; an exception on
    one input becomes that input's ``error_row(id, uri, reason)``, so it cannot lose the others.

    Untrusted bytes are decoded through :meth:`isolated`, in the actor's sandbox process (see
    jobs.sandbox): at most ``input_time_limit`` seconds per call and ``input_memory_limit`` GiB of
    address space, with no credentials; a decoder crash or a memory bomb costs one row.
    """

    PRELOAD: tuple[str, ...] = ()  # modules the sandbox imports before its first call

    def __init__(self, input_time_limit: float = DEFAULT_LIMIT_S, input_memory_limit: float = DEFAULT_MEMORY_GIB) -> None:
        self.sandbox = Sandbox(input_time_limit, preload=self.PRELOAD, rejections=self.rejections(),
                               memory_bytes=int(input_memory_limit * 2**30))

    def rejections(self) -> tuple[type[Exception], ...]:
        """The parsers' documented refusals of a bad input: after these the sandbox process is kept."""
        return ()

    def isolated(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` run in the sandbox (``fn`` must be importable by name)."""
        return self.sandbox(fn, *args, **kwargs)

    @abc.abstractmethod
    def one(self, id_: str, uri: str) -> dict[str, Any]:
        """The row of one input (may raise: the input then gets an error row)."""

    @abc.abstractmethod
    def error_row(self, id_: str, uri: str, reason: str) -> dict[str, Any]:
        """The row of an input that failed, naming the reason."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for id_, uri in zip(batch["id"], batch["uri"], strict=True):
            try:
                rows.append(self.one(str(id_), str(uri)))
            except Exception as e:  # one bad input must not lose the others; say what happened
                rows.append(self.error_row(str(id_), str(uri), storage.scrub(f"{type(e).__name__}: {e}")))
        return {"row": rows}


def map_rows(todo: list[dict[str, Any]], worker: type, *, folder: str, schema: Any, flush: int, workers: int,
             lost_row: Callable[[dict[str, Any], str], dict[str, Any]], num_cpus: float = 1.0, num_gpus: float = 0.0,
             worker_kwargs: dict[str, Any] | None = None, keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             carry: Sequence[str] = (), block_inputs: int = 16, label: str = "rows", error_window: int = 0,
             max_error_rate: float = 1.0) -> list[dict[str, Any]]:
    """Process ``todo`` (dicts with ``id``, ``uri``, ``version``) with ``worker`` actors.

    ``worker(**worker_kwargs)`` is built once per actor; it maps ``{"id": [...], "uri": [...]}``
    to ``{"row": [row, ...]}``, one row per input, never raising for one bad input. Every row
    written gets the input's ``version`` and its fields named in ``carry``; inputs without a
    result get ``lost_row(input, reason)``. ``block_inputs``: inputs per unit of work; ``label``
    names the progress lines; ``error_window`` and ``max_error_rate``: the early stop (see the
    module docstring; a window of 0 never stops).
    Returns the rows written, each reduced to ``keep(row)`` (with its ``id``) when given: a catalog
    of a million videos should not hold a million full rows in the driver.
    """
    import pyarrow as pa  # noqa: PLC0415
    import ray  # noqa: PLC0415

    if not todo:
        return []
    extra = {r["id"]: {"version": r.get("version"), **{k: r.get(k) for k in carry}} for r in todo}
    items = [{"id": r["id"], "uri": r["uri"]} for r in todo]
    ds = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / max(1, block_inputs)))
    mapped = ds.map_batches(worker, fn_constructor_kwargs=worker_kwargs or {}, batch_size=1,
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers),
                            num_cpus=num_cpus, num_gpus=num_gpus)
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []

    def write(batch: list[dict[str, Any]]) -> None:
        storage.write_table(incremental.part_url(folder), pa.Table.from_pylist(batch, schema=schema))
        rows.extend(batch if keep is None else ({**keep(r), "id": r["id"]} for r in batch))

    reason = "no result came back from the workers"
    progress = Progress(label, len(items))
    recent: collections.deque[bool] = collections.deque(maxlen=max(1, error_window))
    try:
        for item in mapped.iter_rows():
            row = {**item["row"], **extra.get(item["row"]["id"], {"version": None})}
            pending.append(row)
            failed = row.get("status") == "error"
            progress.add(failed)
            recent.append(failed)
            if len(pending) >= flush:
                write(pending)
                pending = []
            if error_window and len(recent) == error_window and sum(recent) / error_window > max_error_rate:
                reason = (f"{STOPPED}: {sum(recent)} of the last {error_window} inputs failed, more than "
                          f"--max-error-rate {max_error_rate:g}; not processed")
                print(f"{label}: {reason}", file=sys.stderr)
                break
    except Exception as e:  # the pool failed beyond Ray's retries: keep what finished, say why for the rest
        reason = f"the worker pool failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    progress.report(final=True)
    if pending:
        write(pending)
    missing = set(extra) - {r["id"] for r in rows}
    if missing:  # never lose an input silently
        write([{**lost_row(r, reason), **extra[r["id"]]} for r in todo if r["id"] in missing])
    return rows


class Progress:
    """Inputs done of all, the rate, the ETA and the errors: a line on stderr and MLflow metrics
    (``inputs_done``, ``inputs_per_s``, ``input_errors``) every :data:`PROGRESS_EVERY_S` seconds."""

    def __init__(self, label: str, total: int, every_s: float = PROGRESS_EVERY_S) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.done = self.errors = 0
        self.started = self.last = time.monotonic()

    def add(self, failed: bool) -> None:
        self.done += 1
        self.errors += failed
        if time.monotonic() - self.last >= self.every_s:
            self.report()

    def report(self, final: bool = False) -> None:
        self.last = now = time.monotonic()
        rate = self.done / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        line = f"{self.label}: {self.done}/{self.total} inputs ({self.done / max(self.total, 1):.0%}), {rate:.2f}/s"
        if not final:
            line += f", ETA {_duration(eta)}"
        print(f"{line}, {self.errors} failed", file=sys.stderr)
        try:
            import mlflow  # noqa: PLC0415

            if mlflow.active_run() is not None:
                mlflow.log_metrics({"inputs_done": self.done, "inputs_per_s": round(rate, 4), "input_errors": self.errors},
                                   step=self.done)
        except Exception as e:  # tracking is a report, not the job: a hiccup there must not stop the work
            print(f"{self.label}: progress not logged to MLflow ({type(e).__name__})", file=sys.stderr)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def preview(inputs: list[dict[str, Any]], folder: str, *, incremental_run: bool, limit: int | None,
            outputs: dict[str, str]) -> dict[str, Any]:
    """What a run would do (``--dry-run``): the plan's counts, the first ids, where outputs go."""
    work = incremental.plan(inputs, incremental.done_versions(folder), incremental=incremental_run, limit=limit)
    ids = [str(r["id"]) for r in work.todo]
    return {"plan": work.describe(), "would_process": ids[:SHOWN], "and_more": max(0, len(ids) - SHOWN),
            "outputs": outputs}
