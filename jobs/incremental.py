"""Incremental runs: process only the inputs that are new or changed since the last run, and append.

Shared by every job that turns a set of input files into rows keyed by input ``id`` (score,
generate, preprocess, words). The conventions:

- **Content version.** Every input has a *version* string taken from its storage metadata,
  without reading it: on S3 (and other object stores) its ETag and size (``etag=…;size=…``); on a
  local disk its modification time in nanoseconds and size (``mtime_ns=…;size=…``). Every output
  row carries the version of the input it was made from, in a ``version`` column.
- **Parts.** A job appends rows as Parquet part files ``<folder>/part-<UTC time to the
  microsecond>-….parquet``, written atomically: the row jobs' actors write one part per block,
  ``part-<run start>-b-<first id>-<hash of the ids>.parquet`` (jobs.rows.block_part_url: a
  retried block overwrites its own part), other writers :func:`part_url`. The names sort in the
  order of the runs; within a run an id has one row (the driver's rows of inputs that never came
  back sort before the actors' parts, ``-a-``).
- **Newest row wins.** When an id appears in several parts (a changed input was processed
  again), the row of the *later part* (by name) is the current one. :func:`read_latest` reads a
  folder of parts that way; readers must use it (or apply the same rule), not concatenate parts.
- **What a run processes** (:func:`plan`). By default (a resumed run) an input whose id already
  has a row is skipped, whatever its version. With ``--incremental`` (scheduled runs) an input is
  processed when its id has no row yet (*new*) or its newest row was made from another version
  (*changed*: re-delivered with other bytes, or rewritten); otherwise it is *skipped*. Rows written
  before versions were recorded (no ``version`` value) count as current. An input whose row is an
  error row is not retried until the file changes (a corrupt file stays corrupt; retrying it every
  night would only inflate the error rate).

Identical bytes uploaded again to S3 keep their ETag and are not processed again; a local file
that is rewritten (new mtime) is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import posixpath
import re
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from jobs import storage
from jobs.runtime import JobError

__all__ = [
    "Plan",
    "add_arguments",
    "content_version",
    "done_table",
    "done_versions",
    "list_inputs",
    "list_table",
    "list_versions",
    "part_url",
    "parts",
    "plan",
    "read_latest",
    "run_stamp",
    "versions_of",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--incremental`` option, with the same help text in every job."""
    parser.add_argument(
        "--incremental", action="store_true",
        help="process only inputs that are new or changed (by id and content version: S3 ETag, or mtime + size) "
             "since the last run and append their rows; without it, a rerun skips every id already written",
    )


def content_version(info: dict[str, Any], *, local: bool = False) -> str:
    """The version string of one file from its fsspec ``info`` dict (no read of the content).

    ``local``: the file is on this machine's disk (its mtime is then read in nanoseconds).
    """
    size = info.get("size")
    etag = info.get("ETag") or info.get("etag") or info.get("e_tag")
    if etag:
        return f"etag={str(etag).strip(chr(34))};size={size}"
    if local:
        st = os.stat(str(info["name"]))
        return f"mtime_ns={st.st_mtime_ns};size={st.st_size}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    if isinstance(mtime, dt.datetime):
        mtime = mtime.timestamp()
    return f"mtime={mtime};size={size}"


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return bool({"file", "local"} & set(protocols))


#: directories listed at once when a prefix is listed (one listing request per directory page)
LIST_THREADS = 8


def list_versions(url: str, *, suffixes: tuple[str, ...] = ()) -> dict[str, str]:
    """``{url: version}`` of the files under a prefix (:func:`list_table`'s listing, as a dict)."""
    table = _listing(url, suffixes)
    return dict(zip(table.column("uri").to_pylist(), table.column("version").to_pylist(), strict=True))


def _listing(url: str, suffixes: tuple[str, ...]) -> pa.Table:
    """``uri``, ``version``, ``rel`` (the path below ``url``) and ``stem`` (``rel`` without its
    suffix) of the files under a prefix, folder by folder in path order and by name in each;
    temporary files (``.tmp-*``) left out.

    Directories are listed in parallel (:data:`LIST_THREADS`), one listing each, and each one's
    entries become Arrow columns at once: the driver holds a few directories' entries as Python
    objects at a time, never the whole listing (a flat prefix is one directory, though), and the
    table is the directories' columns put end to end, not copied.
    """
    fs, path = storage.filesystem(url)
    local = _is_local(fs)
    lowered = tuple(s.lower() for s in suffixes)
    base = storage.to_url(fs, path).rstrip("/")

    def columns(entries: Iterable[dict[str, Any]], folder: str) -> tuple[pa.Table, list[str]]:
        uris, versions, rels, stems, subfolders = [], [], [], [], []
        for info in sorted(entries, key=lambda e: str(e["name"])):
            p = str(info["name"]).rstrip("/")
            if p == folder.rstrip("/"):
                continue  # a folder's own marker object
            if info.get("type") == "directory":
                subfolders.append(p)
                continue
            if posixpath.basename(p).startswith(".tmp-") or (lowered and not p.lower().endswith(lowered)):
                continue
            uri = storage.to_url(fs, p)
            rel = uri[len(base):].lstrip("/") if uri.startswith(base) else ""
            rel = rel or posixpath.basename(uri)  # a single file: its name
            uris.append(uri)
            versions.append(content_version(info, local=local))
            rels.append(rel)
            stems.append(os.path.splitext(rel)[0])
        chunk = pa.table({"uri": pa.array(uris, pa.string()), "version": pa.array(versions, pa.string()),
                          "rel": pa.array(rels, pa.string()), "stem": pa.array(stems, pa.string())})
        return chunk, subfolders

    def folder_listing(folder: str) -> tuple[pa.Table, list[str]]:
        entries = fs.ls(folder, detail=True, refresh=True) if not local else fs.ls(folder, detail=True)
        fs.invalidate_cache(folder)  # s3fs would keep every listing in its cache
        return columns(entries, folder)

    chunks: dict[str, pa.Table] = {}
    with storage.errors(url, "list"):
        fs.invalidate_cache(path)
        if fs.isfile(path):
            chunks[path] = columns([fs.info(path)], "")[0]
        elif fs.isdir(path):
            with ThreadPoolExecutor(max_workers=LIST_THREADS) as pool:
                pending = {pool.submit(folder_listing, path): path}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        chunks[pending.pop(f)], subfolders = f.result()
                        pending.update({pool.submit(folder_listing, d): d for d in subfolders})
        else:
            raise FileNotFoundError(path)
    return pa.concat_tables([chunks[k] for k in sorted(chunks, key=lambda k: k.split("/"))])


def list_table(url: str, suffixes: tuple[str, ...], *, columns: Sequence[str] = ()) -> pa.Table:
    """The inputs of a job as a table: ``id``, ``uri``, ``version`` and those of ``columns`` a
    manifest has; from a manifest (a ``.parquet`` file with ``id`` and ``uri`` columns) or from the
    files ending in ``suffixes`` under a prefix.

    Under a prefix an id is the file's path below the prefix without its suffix, except where two
    files share that stem (``ad1.mp4`` and ``ad1.mov``): those keep their suffix, so no input hides
    another. A manifest's ids are its own; a manifest with an id twice is refused, naming the
    duplicates. ``version`` is the content version of the file, null if it cannot be seen.
    """
    if url.lower().endswith(".parquet"):
        table = storage.read_table(url)
        missing = {"id", "uri"} - set(table.column_names)
        if missing:
            raise JobError(f"--input {storage.redact_url(url)}: the manifest lacks column(s) {sorted(missing)}")
        table = table.select(["id", "uri", *(c for c in columns if c in table.column_names)])
        table = table.set_column(0, "id", table.column("id").cast(pa.string())).set_column(
            1, "uri", table.column("uri").cast(pa.string()))
        counts = pc.value_counts(table.column("id"))
        twice = sorted(str(c["values"]) for c in counts.to_pylist() if c["counts"] > 1)
        if twice:
            shown = ", ".join(repr(i) for i in twice[:10]) + (f" and {len(twice) - 10} more" if len(twice) > 10 else "")
            raise JobError(f"--input {storage.redact_url(url)}: {len(twice)} ids appear more than once ({shown}); "
                           "each row needs its own id")
        versions = versions_of(table.column("uri").to_pylist())
        return table.append_column("version", pa.array([versions[u] for u in table.column("uri").to_pylist()], pa.string()))
    listed = _listing(url.rstrip("/"), suffixes)
    stems = listed.column("stem")
    counts = pc.value_counts(stems)
    shared = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    ids = pc.if_else(pc.is_in(stems, value_set=shared), listed.column("rel"), stems)
    table = pa.table({"id": ids, "uri": listed.column("uri"), "version": listed.column("version")})
    del listed, stems, counts, shared
    pa.default_memory_pool().release_unused()  # the listing's scratch memory back to the OS, not kept by the job's driver
    return table


def list_inputs(url: str, suffixes: tuple[str, ...], *, columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """:func:`list_table` as ``[{id, uri, version, ...}]``."""
    return list_table(url, suffixes, columns=columns).to_pylist()


#: a folder holding at least this many of a manifest's files is listed (a request per 1,000 of its
#: entries) instead of asked about each file (a request each)
LIST_FOLDER_MIN = 1000


def versions_of(urls: Iterable[str], *, threads: int = 16) -> dict[str, str | None]:
    """``{url: version}`` of individual files (e.g. the rows of a manifest); ``None`` where missing.

    The files of a folder that holds :data:`LIST_FOLDER_MIN` of them or more are found in one
    listing of that folder; the others, and any the listing did not name as given, are asked
    about one by one, in parallel.
    """

    def one(url: str) -> dict[str, str | None]:
        try:
            fs, path = storage.filesystem(url)
            fs.invalidate_cache(path)
            return {url: content_version(fs.info(path), local=_is_local(fs))}
        except (OSError, storage.StorageError):
            return {url: None}  # the job's read of the file will give the error row

    def folder(parent: str, wanted: list[str]) -> dict[str, str | None]:
        try:
            fs, path = storage.filesystem(parent)
            local = _is_local(fs)
            entries = fs.ls(path, detail=True) if local else fs.ls(path, detail=True, refresh=True)
            fs.invalidate_cache(path)
        except (OSError, storage.StorageError):
            return {}
        found = {storage.to_url(fs, str(e["name"])): content_version(e, local=local)
                 for e in entries if e.get("type") != "directory"}
        return {u: found[u] for u in wanted if u in found}

    urls = list(dict.fromkeys(urls))
    by_folder: dict[str, list[str]] = {}
    for u in urls:
        by_folder.setdefault(posixpath.dirname(u), []).append(u)
    listed = {parent: wanted for parent, wanted in by_folder.items() if len(wanted) >= LIST_FOLDER_MIN}
    singles = [u for parent, wanted in by_folder.items() if parent not in listed for u in wanted]
    out: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(urls) or 1))) as pool:
        for part in pool.map(lambda item: folder(*item), listed.items()):
            out.update(part)
        singles += [u for wanted in listed.values() for u in wanted if u not in out]
        for part in pool.map(one, singles):
            out.update(part)
    return {u: out[u] for u in urls}


def run_stamp() -> str:
    """Now, as the start of part names: UTC to the microsecond, so names sort in the order written."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")


def part_url(folder: str, prefix: str = "part") -> str:
    """A new part file URL under ``folder`` whose name sorts after every part written before it."""
    return storage.join(folder, f"{prefix}-{run_stamp()}-{uuid.uuid4().hex[:8]}.parquet")


def parts(folder: str) -> list[str]:
    """The part files under ``folder``, in the order they were written (by name)."""
    if not storage.exists(folder):
        return []
    return sorted(storage.list_files(folder, suffixes=(".parquet",)), key=lambda u: posixpath.basename(u))


def read_latest(folder: str, *, columns: list[str] | None = None, key: str = "id") -> pa.Table | None:
    """All rows of the parts under ``folder``, one per ``key``: the row of the latest part wins.

    Returns ``None`` when there are no parts. ``columns`` reads only those columns (plus ``key``;
    one that no part has comes back as nulls). The parts are read as one ``pyarrow.dataset``
    (their schemas unified, newer columns null in older parts), in parallel.
    """
    import pyarrow.dataset as pads  # noqa: PLC0415

    urls = parts(folder)
    if not urls:
        return None
    if columns is not None and key not in columns:
        columns = [key, *columns]
    fs, _ = storage.arrow_filesystem(folder)
    paths = [storage.filesystem(u)[1] for u in urls]  # the same paths as pyarrow's, without building its filesystem per part
    with storage.errors(folder, "read"):
        factory = pads.FileSystemDatasetFactory(fs, paths, pads.ParquetFileFormat(), pads.FileSystemFactoryOptions())
        dataset = factory.finish(factory.inspect(promote_options="permissive"))
        names = dataset.schema.names
        wanted = [c for c in columns if c in names] if columns else names
        table = dataset.to_table(columns=[*wanted, "__filename"])
    for c in columns or []:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(len(table), pa.string()))
    # the last row per key: ranked by its part (in write order), then by its place in the scan
    # (which keeps each file's order)
    part = pc.index_in(table.column("__filename"), value_set=pa.array(paths)).cast(pa.int64())
    rank = pc.add(pc.multiply(part, len(table)), pa.array(range(len(table)), pa.int64()))
    table = table.drop_columns(["__filename"]).append_column("__rank", rank)
    last = table.group_by(key, use_threads=False).aggregate([("__rank", "max")]).column("__rank_max")
    return table.filter(pc.is_in(table.column("__rank"), value_set=last.combine_chunks())).drop_columns(["__rank"])


#: Error rows that say nothing about the input: storage could not be read, or the worker died.
#: A rerun tries these inputs again; an input that failed to parse stays done until it changes.
RETRY_ERRORS = ("read:", "no result came back", "the worker pool failed", "stopped early")


def done_table(folder: str, *, key: str = "id") -> pa.Table:
    """``id`` and ``version`` of the current row of each id under ``folder`` (a null version: none
    recorded). Ids whose current row is an error of :data:`RETRY_ERRORS` are left out: the rerun retries them."""
    table = read_latest(folder, columns=[key, "version", "status", "error"], key=key)
    if table is None:
        return pa.table({"id": pa.array([], pa.string()), "version": pa.array([], pa.string())})
    error = pc.fill_null(table.column("error").cast(pa.string()), "")
    retried = pc.and_(pc.equal(table.column("status"), "error"),
                      pc.match_substring_regex(error, "^(" + "|".join(map(re.escape, RETRY_ERRORS)) + ")"))
    table = table.filter(pc.invert(pc.fill_null(retried, False)))
    return pa.table({"id": table.column(key).cast(pa.string()), "version": table.column("version").cast(pa.string())})


def done_versions(folder: str, *, key: str = "id") -> dict[str, str | None]:
    """:func:`done_table` as ``{id: version}``."""
    table = done_table(folder, key=key)
    return dict(zip(table.column("id").to_pylist(), table.column("version").to_pylist(), strict=True))


@dataclass
class Plan:
    """What a run does with its inputs: ``todo`` (a table of the ``new`` and ``changed`` inputs, in
    input order), and the rest skipped."""

    todo: pa.Table = field(default_factory=lambda: pa.table({"id": pa.array([], pa.string())}))
    new: int = 0
    changed: int = 0
    skipped: int = 0

    def counts(self) -> dict[str, int]:
        return {"new": self.new, "changed": self.changed, "skipped": self.skipped}

    def take_todo(self) -> pa.Table:
        """``todo``, handed over (to jobs.rows.map_rows, which lets go of it once it is in storage):
        the plan keeps its counts, not the table."""
        todo, self.todo = self.todo, self.todo.slice(0, 0)
        return todo

    def describe(self, errors: int | None = None) -> str:
        """One log line: ``12 inputs: 3 new, 1 changed, 8 skipped[; 1 failed]``."""
        todo = self.new + self.changed
        line = f"{todo + self.skipped} inputs: {self.new} new, {self.changed} changed, {self.skipped} skipped"
        if errors is not None:
            line += f"; {todo} processed, {errors} failed"
        return line


def plan(inputs: pa.Table | list[dict[str, Any]], done: pa.Table | dict[str, str | None], *, incremental: bool,
         limit: int | None = None) -> Plan:
    """Split ``inputs`` (with ``id`` and ``version``: :func:`list_table`) against ``done``
    (:func:`done_table`), column-wise: the driver holds the tables, not a Python object per input.

    ``limit`` caps how many are processed; the ones over it count as skipped.
    """
    table = inputs if isinstance(inputs, pa.Table) else pa.Table.from_pylist(list(inputs))
    if len(table) == 0:
        return Plan()
    if isinstance(done, dict):
        done = pa.table({"id": pa.array(list(done), pa.string()), "version": pa.array(list(done.values()), pa.string())})
    if "version" not in table.column_names:
        table = table.append_column("version", pa.nulls(len(table), pa.string()))
    table = table.set_column(table.column_names.index("version"), "version", table.column("version").cast(pa.string()))
    at = pc.index_in(table.column("id").cast(pa.string()), value_set=done.column("id"))
    new = pc.is_null(at)
    if incremental:
        before = pc.take(done.column("version"), at)
        changed = pc.fill_null(pc.not_equal(before, table.column("version")), False)  # null where either is unknown
    else:
        changed = pa.array([False] * len(table))
    chosen = pc.or_(new, changed)
    if limit is not None:
        chosen = pc.and_(chosen, pc.less_equal(pc.cumulative_sum(chosen.cast(pa.int64())), limit))
    n_new, n_changed = (pc.sum(pc.and_(m, chosen)).as_py() or 0 for m in (new, changed))
    todo = table if n_new + n_changed == len(table) else table.filter(chosen)
    return Plan(todo=todo, new=n_new, changed=n_changed, skipped=len(table) - len(todo))
