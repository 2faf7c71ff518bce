"""One row per input through a Ray Data actor pool, written in parts as it comes.

The shape shared by the jobs that turn many files into rows (score, preprocess, generate, words):
the driver plans what to do (jobs.incremental) and writes the plan to storage, a row group per
unit of work; an actor pool reads a unit's inputs from the plan, processes them one at a time (a
failure costs one row), and writes their rows to ``<folder>/part-*.parquet``, one part per unit,
atomically, so a crash keeps what was finished and the rerun skips it. The driver keeps counts
(a :class:`Tally`), not rows or inputs: its memory does not grow with the job. An input that never comes back (a dead worker)
gets an error row. When the job ends, however it ends, the driver stops the pool's actors itself
(each signs in with a :class:`Roster`): Ray Data only drops its handles to them, and a handle
kept anywhere (a logged exception's traceback) would keep an actor and its CPUs past the job.

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
import hashlib
import importlib
import math
import posixpath
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from jobs import incremental, storage
from jobs.runtime import failure_reason
from jobs.sandbox import DEFAULT_LIMIT_S, DEFAULT_MEMORY_GIB, Sandbox

__all__ = ["BlockWriter", "RowWorker", "Tally", "add_row_arguments", "block_part_url", "map_rows", "preview", "row_options"]

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
    # the parsers' documented refusals of a bad input ("module.Class"): after these the sandbox process is kept
    REJECTIONS: tuple[str, ...] = ()

    def __init__(self, input_time_limit: float = DEFAULT_LIMIT_S, input_memory_limit: float = DEFAULT_MEMORY_GIB) -> None:
        rejections = tuple(getattr(importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2])
                           for name in self.REJECTIONS)
        self.sandbox = Sandbox(input_time_limit, preload=self.PRELOAD, rejections=rejections,
                               memory_bytes=int(input_memory_limit * 2**30))

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


def map_rows(todo: Any, worker: type, *, folder: str, schema: Any, workers: int,
             lost_row: Callable[[dict[str, Any], str], dict[str, Any]], num_cpus: float = 1.0, num_gpus: float = 0.0,
             worker_kwargs: dict[str, Any] | None = None, keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             carry: Sequence[str] = (), block_inputs: int = 16, label: str = "rows", error_window: int = 0,
             max_error_rate: float = 1.0, histograms: Sequence[str] = ()) -> Tally:
    """Process ``todo`` (a table, or dicts, with ``id``, ``uri``, ``version``: jobs.incremental's
    plan) with ``worker`` actors.

    ``worker(**worker_kwargs)`` is built once per actor; it maps ``{"id": [...], "uri": [...]}``
    to ``{"row": [row, ...]}``, one row per input, never raising for one bad input. The actor
    writes the rows of each block of ``block_inputs`` inputs itself, as one part named after the
    run and the block's ids (:func:`block_part_url`): a block that Ray retries (its actor died)
    overwrites its own part instead of adding a second row per id. Every row written gets the
    input's ``version`` and its fields named in ``carry``; inputs without a result get
    ``lost_row(input, reason)``, written by the driver in a part that sorts before the workers'
    parts of the run (a row a worker did write wins). ``label`` names the progress lines;
    ``error_window`` and ``max_error_rate``: the early stop (see the module docstring; a window
    of 0 never stops).

    Returns a :class:`Tally` of ``keep(row)`` (default: ``status`` and ``error``) over the rows:
    the driver keeps counts, sums and ``histograms``, not the rows, so its memory does not grow
    with the inputs.
    """
    import pyarrow as pa  # noqa: PLC0415

    table = todo if isinstance(todo, pa.Table) else pa.Table.from_pylist(list(todo))
    tally = Tally(histograms)
    total = len(table)
    if total == 0:
        return tally
    run = incremental.run_stamp()
    fields = ("id", "uri", "version", *carry)
    table = table.select([c for c in fields if c in table.column_names])
    for c in fields:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(len(table), pa.string()))
    # the plan goes to storage, a row group per unit of work, and the workers read their groups:
    # the driver neither keeps the inputs nor puts them in the object store
    plan_url = storage.join(folder, f".tmp-plan-{run}.parquet")  # .tmp-: never listed as a part
    storage.write_table(plan_url, table, row_group_size=block_inputs)
    del table, todo
    try:
        return _run_plan(plan_url, total, worker, folder=folder, schema=schema, workers=workers, lost_row=lost_row,
                         num_cpus=num_cpus, num_gpus=num_gpus, worker_kwargs=worker_kwargs, keep=keep, carry=carry,
                         label=label, error_window=error_window, max_error_rate=max_error_rate, tally=tally, run=run,
                         block_inputs=block_inputs, fields=fields)
    finally:  # however the run ends (a failed write of a part included), the plan goes
        try:
            storage.delete(plan_url)
        except storage.StorageError as e:  # a .tmp- file is never read as a part; say so and go on
            print(f"{label}: the plan {storage.redact_url(plan_url)} was not removed ({e})", file=sys.stderr)


def _run_plan(plan_url: str, total: int, worker: type, *, folder: str, schema: Any, workers: int,
              lost_row: Callable[[dict[str, Any], str], dict[str, Any]], num_cpus: float, num_gpus: float,
              worker_kwargs: dict[str, Any] | None, keep: Callable[[dict[str, Any]], dict[str, Any]] | None,
              carry: Sequence[str], label: str, error_window: int, max_error_rate: float, tally: Tally, run: str,
              block_inputs: int, fields: tuple[str, ...]) -> Tally:
    """:func:`map_rows` once its plan is in storage."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415
    import ray  # noqa: PLC0415

    groups = math.ceil(total / block_inputs)
    # a row per unit of work, holding its number: the actor reads that row group of the plan itself
    ds = ray.data.from_items([{"group": k} for k in range(groups)], override_num_blocks=groups)
    # named after the worker (Ray names the actors ``MapBatches(Scorer)``, not after this wrapper)
    writer = type(worker.__name__, (BlockWriter,), {"__doc__": BlockWriter.__doc__})
    roster: Any = ray.remote(num_cpus=0)(Roster).remote()
    mapped = ds.map_batches(
        writer, batch_size=1, num_cpus=num_cpus, num_gpus=num_gpus,
        fn_constructor_kwargs={"worker": worker, "worker_kwargs": worker_kwargs or {}, "folder": folder, "schema": schema,
                               "run": run, "plan": plan_url, "carry": tuple(carry), "keep": keep, "roster": roster},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers))
    try:
        reason = _drain(mapped, tally, Progress(label, total), error_window, max_error_rate)
    finally:
        # Ray Data lets go of its actors by dropping their handles, which anything holding on to the
        # executor keeps alive (a logged exception's traceback, a reference cycle): the pool then
        # outlives the job with its CPUs, and the next job of the process (a Ray Train run) waits
        # forever for them. So the actors are stopped here (blocks still running after an early
        # stop or a failure too: their inputs get rows below)
        for actor in ray.get(roster.members.remote()):
            ray.kill(actor)
        ray.kill(roster)
    if tally.rows == total:
        return tally
    # a stop or a pool failure: blocks still running then may have written their parts, and their
    # rows stand (they win over the driver's); the tally is counted again from this run's parts
    tally, written = _written(folder, run, keep, list(tally.histogram))
    table = storage.read_table(plan_url)
    missing = table.filter(pc.invert(pc.is_in(table.column("id").cast(pa.string()), value_set=pa.array(written, pa.string()))))
    if len(missing):  # never lose an input silently
        lost = [{**lost_row(r, reason), **{k: r.get(k) for k in fields[2:]}} for r in missing.to_pylist()]
        rows = pa.Table.from_pylist(lost, schema=schema)
        storage.write_table(block_part_url(folder, run, [r["id"] for r in lost], lost=True), rows)
        for r in rows.to_pylist():
            tally.add(_kept(r, keep))
    return tally


def _drain(mapped: Any, tally: Tally, progress: Progress, error_window: int, max_error_rate: float) -> str:
    """Add the kept fields of every row that comes back to ``tally``; returns the reason to give the inputs that did not."""
    reason = "no result came back from the workers"
    recent: collections.deque[bool] = collections.deque(maxlen=max(1, error_window))
    results = iter(mapped.iter_rows())
    try:
        for item in results:
            kept = dict(item["kept"])
            tally.add(kept)
            failed = kept.get("status") == "error"
            progress.add(failed)
            recent.append(failed)
            if error_window and len(recent) == error_window and sum(recent) / error_window > max_error_rate:
                reason = (f"{STOPPED}: {sum(recent)} of the last {error_window} inputs failed, more than "
                          f"--max-error-rate {max_error_rate:g}; not processed")
                print(f"{progress.label}: {reason}", file=sys.stderr)
                break
    except Exception as e:  # the pool failed beyond Ray's retries: keep what finished, say why for the rest
        reason = f"the worker pool failed: {failure_reason(e)}"
    finally:  # a stop: shut the pool down (blocks in flight may still have written their parts)
        close = getattr(results, "close", None)
        if close is not None:
            close()
    progress.report(final=True)
    return reason


def block_part_url(folder: str, run: str, ids: Sequence[str], *, lost: bool = False) -> str:
    """The part of one block of a run: ``part-<run>-b-<first id>-<hash of the ids>.parquet``; the
    driver's part of the inputs with no result has ``a`` for ``b`` (it sorts first: jobs.incremental)."""
    first = re.sub(r"[^A-Za-z0-9._-]+", "_", str(ids[0]))[:40] if ids else ""
    digest = hashlib.sha1("\n".join(map(str, ids)).encode()).hexdigest()[:16]
    return storage.join(folder, f"part-{run}-{'a' if lost else 'b'}-{first}-{digest}.parquet")


def _written(folder: str, run: str, keep: Callable[[dict[str, Any]], dict[str, Any]] | None,
             histograms: Sequence[str]) -> tuple[Tally, list[str]]:
    """The tally of the rows in the actors' parts of this run, and their ids (each id once)."""
    tally, ids = Tally(histograms), set()
    for url in incremental.parts(folder):  # none when the pool failed before any block was written
        if posixpath.basename(url).startswith(f"part-{run}-b-"):
            for r in storage.read_table(url).to_pylist():
                if str(r["id"]) not in ids:
                    ids.add(str(r["id"]))
                    tally.add(_kept(r, keep))
    return tally, sorted(ids)


def _kept(row: dict[str, Any], keep: Callable[[dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    """``keep(row)`` (default: ``status`` and ``error``); ``row`` has every column of the schema."""
    return keep(row) if keep is not None else {"status": row.get("status"), "error": row.get("error")}


class Tally:
    """What the driver keeps of the rows of a job: how many, by ``status``, and per numeric field of
    the ``ok`` rows how many have it, its sum, how many lack it, and for ``histograms`` its counts
    in :data:`BINS` equal bins of [0, 1] (scores). Constant size, however many inputs."""

    BINS = 20

    def __init__(self, histograms: Sequence[str] = ()) -> None:
        self.rows = 0
        self.status: collections.Counter[str] = collections.Counter()
        self.count: collections.Counter[str] = collections.Counter()
        self.missing: collections.Counter[str] = collections.Counter()
        self.sum: dict[str, float] = collections.defaultdict(float)
        self.histogram = {k: [0] * self.BINS for k in histograms}

    def add(self, kept: dict[str, Any]) -> None:
        self.rows += 1
        self.status[str(kept.get("status"))] += 1
        if kept.get("status") != "ok":
            return
        for k, v in kept.items():
            if k in ("id", "status", "error"):
                continue
            if v is None or (isinstance(v, float) and math.isnan(v)):
                self.missing[k] += 1
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                self.count[k] += 1
                self.sum[k] += float(v)
                if k in self.histogram and 0.0 <= v <= 1.0:
                    self.histogram[k][min(int(v * self.BINS), self.BINS - 1)] += 1

    @property
    def ok(self) -> int:
        return self.status["ok"]

    @property
    def errors(self) -> int:
        return self.rows - self.ok

    def mean(self, key: str) -> float | None:
        """The mean of ``key`` over the ok rows that have it (None: none has)."""
        return self.sum[key] / self.count[key] if self.count[key] else None


class Roster:
    """The actors of one :func:`map_rows` pool (a Ray actor): each adds itself when it starts, and
    the driver stops them all when the job ends."""

    def __init__(self) -> None:
        self.actors: list[Any] = []

    def add(self, actor: Any) -> None:
        self.actors.append(actor)

    def members(self) -> list[Any]:
        return self.actors


class BlockWriter:
    """Ray Data actor around a :class:`RowWorker`: per unit of work, its inputs (a row group of the
    plan), their rows written as its part; returns the kept fields."""

    def __init__(self, worker: type, worker_kwargs: dict[str, Any], folder: str, schema: Any, run: str, plan: str,
                 carry: tuple[str, ...], keep: Callable[[dict[str, Any]], dict[str, Any]] | None,
                 roster: Any = None) -> None:
        if roster is not None:
            import ray  # noqa: PLC0415

            ray.get(roster.add.remote(ray.get_runtime_context().current_actor))
        self.worker = worker(**worker_kwargs)
        self.folder, self.schema, self.run, self.plan, self.carry, self.keep = folder, schema, run, plan, carry, keep

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import pyarrow as pa  # noqa: PLC0415

        (group,) = batch["group"]
        inputs = storage.read_table(self.plan, row_group=int(group)).to_pydict()
        ids = [str(i) for i in inputs["id"]]
        made = self.worker({"id": inputs["id"], "uri": inputs["uri"]})["row"]
        rows = [{**row, **{k: inputs[k][n] for k in ("version", *self.carry)}} for n, row in enumerate(made)]
        storage.write_table(block_part_url(self.folder, self.run, ids), pa.Table.from_pylist(rows, schema=self.schema))
        # every column of the schema, so that ``keep`` sees an error row's missing fields as None
        return {"kept": [_kept({**dict.fromkeys(self.schema.names), **row}, self.keep) for row in rows]}


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


def preview(inputs: Any, folder: str, *, incremental_run: bool, limit: int | None,
            outputs: dict[str, str]) -> dict[str, Any]:
    """What a run would do (``--dry-run``): the plan's counts, the first ids, where outputs go."""
    work = incremental.plan(inputs, incremental.done_table(folder), incremental=incremental_run, limit=limit)
    ids = [str(i) for i in work.todo.column("id").slice(0, SHOWN).to_pylist()]
    return {"plan": work.describe(), "would_process": ids, "and_more": max(0, len(work.todo) - SHOWN),
            "outputs": outputs}
