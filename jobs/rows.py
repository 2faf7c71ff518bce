"""One row per input through a Ray Data actor pool, written in parts as it comes.

The shape shared by the jobs that turn many files into rows (preprocess, generate): the driver
plans what to do (jobs.incremental), an actor pool processes one input per call (``batch_size=1``:
inputs are large and slow, and a failure then costs one row), and rows are appended to
``<folder>/part-*.parquet`` every ``flush`` rows, atomically, so a crash keeps what was finished
and the rerun skips it. An input that never comes back (a dead worker) gets an error row.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from jobs import incremental, storage
from jobs.sandbox import DEFAULT_LIMIT_S, DEFAULT_MEMORY_GIB, Sandbox

__all__ = ["RowWorker", "map_rows", "preview"]

SHOWN = 20  # ids listed by a dry run


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


def map_rows(todo: list[dict[str, Any]], worker: type, *, folder: str, schema: Any, flush: int, workers: int,
             lost_row: Callable[[dict[str, Any], str], dict[str, Any]], num_cpus: float = 1.0, num_gpus: float = 0.0,
             worker_kwargs: dict[str, Any] | None = None, keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             carry: Sequence[str] = (), blocks: int | None = None) -> list[dict[str, Any]]:
    """Process ``todo`` (dicts with ``id``, ``uri``, ``version``) with ``worker`` actors.

    ``worker(**worker_kwargs)`` is built once per actor; it maps ``{"id": [...], "uri": [...]}``
    to ``{"row": [row, ...]}``, one row per input, never raising for one bad input. Every row
    written gets the input's ``version`` and its fields named in ``carry``; inputs without a
    result get ``lost_row(input, reason)``. ``blocks``: units of work Ray Data hands out (default
    four per worker).
    Returns the rows written, each reduced to ``keep(row)`` (with its ``id``) when given: a catalog
    of a million videos should not hold a million full rows in the driver.
    """
    import pyarrow as pa  # noqa: PLC0415
    import ray  # noqa: PLC0415

    if not todo:
        return []
    extra = {r["id"]: {"version": r.get("version"), **{k: r.get(k) for k in carry}} for r in todo}
    items = [{"id": r["id"], "uri": r["uri"]} for r in todo]
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), blocks or 4 * workers))
    mapped = ds.map_batches(worker, fn_constructor_kwargs=worker_kwargs or {}, batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=num_cpus, num_gpus=num_gpus)
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []

    def write(batch: list[dict[str, Any]]) -> None:
        storage.write_table(incremental.part_url(folder), pa.Table.from_pylist(batch, schema=schema))
        rows.extend(batch if keep is None else ({**keep(r), "id": r["id"]} for r in batch))

    reason = "no result came back from the workers"
    try:
        for item in mapped.iter_rows():
            pending.append({**item["row"], **extra.get(item["row"]["id"], {"version": None})})
            if len(pending) >= flush:
                write(pending)
                pending = []
    except Exception as e:  # the pool failed beyond Ray's retries: keep what finished, say why for the rest
        reason = f"the worker pool failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if pending:
        write(pending)
    missing = set(extra) - {r["id"] for r in rows}
    if missing:  # never lose an input silently
        write([{**lost_row(r, reason), **extra[r["id"]]} for r in todo if r["id"] in missing])
    return rows


def preview(inputs: list[dict[str, Any]], folder: str, *, incremental_run: bool, limit: int | None,
            outputs: dict[str, str]) -> dict[str, Any]:
    """What a run would do (``--dry-run``): the plan's counts, the first ids, where outputs go."""
    work = incremental.plan(inputs, incremental.done_versions(folder), incremental=incremental_run, limit=limit)
    ids = [str(r["id"]) for r in work.todo]
    return {"plan": work.describe(), "would_process": ids[:SHOWN], "and_more": max(0, len(ids) - SHOWN),
            "outputs": outputs}
