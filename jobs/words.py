"""``python -m jobs words``: music-words at corpus scale, per composer and for the whole corpus.

Steps (numbers as in :func:`run`):

1. *list* the scores under ``--input`` (MIDI, MusicXML, kern, abc) or the ``id``/``uri`` rows of a
   Parquet manifest, each with its group (``--group-by composer``: the first folder under the
   prefix, or the manifest's ``composer``/``group`` column; ``folder``: the whole folder;
   ``none``: one group);
2. *parse* them in a Ray Data actor pool into Notes and monophonic voices: one row per file in
   ``<output>/pieces/part-*.parquet`` (error rows name the file and the reason);
3. *learn* one dictionary per group (plus one for the whole corpus when there are several
   groups, the common vocabulary the composers are compared in). Groups run in parallel in an
   actor pool, one EM per actor, largest first; a group of more than ``--shard-tokens`` tokens
   and well over a worker's fair share of all the groups' tokens (see :func:`_learn_groups`)
   runs on the driver (in a thread, beside the pool, largest first) with its E-step sharded over
   ``--workers`` actors that each hold a contiguous range of the E-step blocks (see
   :mod:`musicwords.em`: same blocks, same sums, same numbers as one process). A dead worker
   loses nothing: a group whose actor dies is learned once more on a new actor, then gets an
   error row naming it and why; a dead E-step shard is replaced, its
   lattices rebuilt, and the call made again (same numbers). Per group, under
   ``<output>/groups/<group>/``: ``dictionary.parquet`` + ``.json``, ``words.parquet`` (every
   word), ``occurrences.parquet``, ``pieces.parquet`` (code length and compression ratio per
   piece), ``usage.parquet``, MIDI of the top words, PNGs, and ``summary.json`` last (a rerun
   with the same pieces and options skips the group); one nested MLflow run per group under the
   job's run;
4. *report*: ``<output>/index.html`` (open it from the folder, no server), built by
   :mod:`musicwords.page`, and ``<output>/groups.parquet``, one row per group.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobs import incremental, sandbox, storage
from jobs.runtime import JobError

DESCRIPTION = "discover music-words per composer and for the corpus: dictionaries, occurrences, code lengths, an HTML report"
EXAMPLES = """examples:
  python -m jobs words --input work/sample/midi --output work/words
  python -m jobs words --input work/sample/midi.parquet --output s3://corpus/words --workers 8
  python -m jobs words --input s3://corpus/scores/ --output s3://corpus/words --group-by folder --preset debug
"""
SUFFIXES = (".mid", ".midi", ".xml", ".mxl", ".musicxml", ".krn", ".abc")
CORPUS = "whole corpus"  # the group of every piece, learned when there are several groups
CORPUS_FOLDER = "_corpus"
UNGROUPED = "ungrouped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from musicwords.em import EMConfig  # noqa: PLC0415

    parser.add_argument("--input", required=True,
                        help="a folder/prefix of scores (.mid .midi .xml .mxl .musicxml .krn .abc) or a Parquet manifest "
                             "with id and uri columns (and composer or group)")
    parser.add_argument("--output", required=True, help="output folder: pieces/, groups/<group>/, index.html")
    parser.add_argument("--group-by", choices=("composer", "folder", "none"), default="composer",
                        help="composer: first folder under the prefix, or the manifest's composer/group column; folder: "
                             "the whole folder; none: one group (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parsing actors, group actors and E-step shards at once (default: CPUs - 1, at least 1)")
    parser.add_argument("--limit", type=int, default=None, help="parse at most this many new files")
    cfg = parser.add_argument_group("music-words")
    cfg.add_argument("--preset", choices=("default", "debug"), default="default",
                     help="EM settings: default, or debug (fewer candidates and rounds: seconds) (default: %(default)s)")
    cfg.add_argument("--voices", choices=("lines", "skyline"), default="lines",
                     help="voice separation of polyphonic parts (default: %(default)s)")
    cfg.add_argument("--max-voices", type=int, default=4, help="lines per part (default: %(default)s)")
    cfg.add_argument("--extend", choices=("none", "repeating"), default="none",
                     help="repeating: occurrences take the co-sounding notes that recur with them (polyphonic patterns; "
                          "quadratic in a word's occurrences, slow on big groups) (default: %(default)s)")
    cfg.add_argument("--max-patterns", type=int, default=300,
                     help="report at most this many patterns per group (default: %(default)s)")
    cfg.add_argument("--block-tokens", type=int, default=EMConfig().block_tokens,
                     help="E-step block size in tokens, the unit of sharding; part of the result (default: %(default)s)")
    cfg.add_argument("--shard-tokens", type=int, default=200_000,
                     help="a group with more tokens (and over 1.25/--workers of all groups' tokens) runs its E-step "
                          "sharded over --workers actors (default: %(default)s)")
    cfg.add_argument("--top-words", type=int, default=12, help="words per group shown in the report (default: %(default)s)")
    parser.add_argument("--flush", type=int, default=200, help="parsed rows per output part file (default: %(default)s)")
    sandbox.add_argument(parser)


def check(args: argparse.Namespace) -> None:
    for name in ("limit", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise JobError(f"--{name} must be at least 1, got {value}")
    for name in ("max_voices", "max_patterns", "block_tokens", "shard_tokens", "top_words", "flush"):
        if getattr(args, name) < 1:
            raise JobError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    try:
        if not storage.exists(args.input):
            raise JobError(f"--input {storage.redact_url(args.input)}: not found")
        storage.check_writable(args.output)
        config_url = storage.join(args.output, "config.json")
        if storage.exists(config_url):
            old = json.loads(storage.read_bytes(config_url))
            new = job_config(args)
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                raise JobError(
                    f"--output {storage.redact_url(args.output)} holds a run with other settings ({', '.join(changed)}: "
                    f"{ {k: old.get(k) for k in changed} }); use another --output or the same settings")
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def job_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that shape the results (kept in ``<output>/config.json``; a rerun must match)."""
    return {"group_by": args.group_by, "preset": args.preset, "voices": args.voices, "max_voices": args.max_voices,
            "extend": args.extend, "max_patterns": args.max_patterns, "block_tokens": args.block_tokens,
            "top_words": args.top_words}


def discover_config(config: dict[str, Any]) -> Any:
    """The :class:`~musicwords.discover.DiscoverConfig` of a job config."""
    import dataclasses  # noqa: PLC0415

    from musicwords.discover import DiscoverConfig  # noqa: PLC0415
    from musicwords.em import EMConfig  # noqa: PLC0415

    em = EMConfig.debug() if config["preset"] == "debug" else EMConfig()
    em = dataclasses.replace(em, block_tokens=int(config["block_tokens"]))
    return DiscoverConfig(voices=config["voices"], max_voices=int(config["max_voices"]), em=em, extend=config["extend"],
                          top_patterns=int(config["max_patterns"]))


# --------------------------------------------------------------------------------------------
# 1. listing


def list_inputs(url: str, group_by: str) -> list[dict[str, str]]:
    """``[{id, uri, group}]`` of a manifest or of the scores under a prefix (ids: paths without suffix)."""
    if url.lower().endswith(".parquet"):
        table = storage.read_table(url)
        missing = {"id", "uri"} - set(table.column_names)
        if missing:
            raise JobError(f"--input {storage.redact_url(url)}: the manifest lacks column(s) {sorted(missing)}")
        column = next((c for c in ("composer", "group") if c in table.column_names), None)
        if group_by == "composer" and column is None:
            raise JobError(f"--input {storage.redact_url(url)}: --group-by composer needs a composer or group column "
                           "(or use --group-by folder/none)")
        rows = table.to_pylist()
        out = []
        for r in rows:
            if group_by == "composer":
                group = str(r[column] or UNGROUPED) if column else UNGROUPED
            elif group_by == "folder":
                group = posixpath.dirname(str(r["uri"]).split("://", 1)[-1]) or UNGROUPED
            else:
                group = CORPUS
            out.append({"id": str(r["id"]), "uri": str(r["uri"]), "group": group})
        return out
    base = url.rstrip("/")
    if "://" not in base or base.startswith("file://"):  # list_files gives absolute local paths
        base = storage.filesystem(base)[1].rstrip("/")
    found = storage.list_files(url, suffixes=SUFFIXES)
    rels = [uri[len(base):].lstrip("/") if uri.startswith(base) else posixpath.basename(uri) for uri in found]
    stems = [os.path.splitext(r)[0] for r in rels]
    clash = {s for s in stems if stems.count(s) > 1}  # bwv1.6.mxl beside bwv1.6.krn: keep the suffix
    out = []
    for uri, rel, stem in zip(found, rels, stems, strict=True):
        folder = posixpath.dirname(rel)
        if group_by == "composer":
            group = folder.split("/", 1)[0] if folder else UNGROUPED
        elif group_by == "folder":
            group = folder or UNGROUPED
        else:
            group = CORPUS
        out.append({"id": rel if stem in clash else stem, "uri": uri, "group": group})
    return out


# --------------------------------------------------------------------------------------------
# 2. parsing


# imported by the parsing child before its first file, so that the time limit counts the parsing:
# the direct MusicXML and kern readers use a few pieces of music21 (offsets, part names)
PARSE_MODULES = ("musicwords.io", "musicwords.voices", "musicwords.kern", "musicwords.musicxml", "jobs.storage",
                 "music21.common.numberTools", "music21.humdrum.instruments", "music21.musicxml.xmlToM21")


class Parser:
    """Ray Data actor: reads and parses a batch of ``{id, uri, group}`` rows into notes and voices."""

    def __init__(self, voices: str, max_voices: int, input_time_limit: float = sandbox.DEFAULT_LIMIT_S) -> None:
        self.voices = voices
        self.max_voices = max_voices
        # Files are parsed in a child process, at most input_time_limit seconds each (see jobs.sandbox).
        self.sandbox = sandbox.Sandbox(input_time_limit, preload=PARSE_MODULES)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for i, u, g in zip(batch["id"], batch["uri"], batch["group"], strict=True):
            t0 = time.time()
            try:
                rows.append(self.sandbox(parse_one, str(i), str(u), str(g), voices=self.voices, max_voices=self.max_voices))
            except (sandbox.InputTimeout, sandbox.ParserCrashed) as e:
                rows.append(_error_row(str(i), str(u), str(g), f"{type(e).__name__}: {e}", time.time() - t0))
        return {"row": rows}


def parse_one(id_: str, uri: str, group: str, *, voices: str, max_voices: int) -> dict[str, Any]:
    """One parsed row: the piece's notes and monophonic voices, or an error row saying why not."""
    from musicwords.io import read_notes  # noqa: PLC0415
    from musicwords.notes import NotesError  # noqa: PLC0415
    from musicwords.voices import separate_voices  # noqa: PLC0415

    t0 = time.time()
    try:
        data = storage.read_bytes(uri)
        notes = read_notes(posixpath.basename(uri.split("://", 1)[-1]), data=data, piece_id=id_)
        streams = separate_voices(notes, method=voices, max_voices=max_voices)
    except storage.StorageError as e:
        return _error_row(id_, uri, group, f"read: {e}", time.time() - t0)
    except NotesError as e:
        return _error_row(id_, uri, group, str(e), time.time() - t0)
    except Exception as e:  # a parser bug on one file must not lose the others; say what happened
        return _error_row(id_, uri, group, f"{type(e).__name__}: {e}", time.time() - t0)
    return {
        "id": id_, "uri": uri, "group": group, "status": "ok", "error": None, "title": notes.title,
        "n_notes": len(notes), "n_voices": int(notes.n_voices), "n_tokens": int(sum(max(len(s) - 1, 0) for s in streams.streams)),
        "tempo_bpm": float(notes.tempo_bpm), "voice_names": list(notes.voice_names),
        "onset": notes.onset.tolist(), "duration": notes.duration.tolist(), "pitch": notes.pitch.astype(int).tolist(),
        "voice": notes.voice.astype(int).tolist(), "velocity": notes.velocity.astype(int).tolist(),
        "streams": [s.astype(int).tolist() for s in streams.streams], "stream_names": list(streams.names),
        "seconds": time.time() - t0,
    }


def _error_row(id_: str, uri: str, group: str, error: str, seconds: float) -> dict[str, Any]:
    return {"id": id_, "uri": uri, "group": group, "status": "error", "error": error, "title": None, "n_notes": 0,
            "n_voices": 0, "n_tokens": 0, "tempo_bpm": None, "voice_names": [], "onset": [], "duration": [], "pitch": [],
            "voice": [], "velocity": [], "streams": [], "stream_names": [], "seconds": seconds}


def _parse_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    ints, floats, strings = pa.list_(pa.int64()), pa.list_(pa.float64()), pa.list_(pa.string())
    return pa.schema([
        ("id", pa.string()), ("uri", pa.string()), ("group", pa.string()), ("status", pa.string()), ("error", pa.string()),
        ("title", pa.string()), ("n_notes", pa.int64()), ("n_voices", pa.int64()), ("n_tokens", pa.int64()),
        ("tempo_bpm", pa.float64()), ("voice_names", strings), ("onset", floats), ("duration", floats), ("pitch", ints),
        ("voice", ints), ("velocity", ints), ("streams", pa.list_(ints)), ("stream_names", strings), ("seconds", pa.float64()),
    ])


def parsed_rows(output: str) -> dict[str, dict[str, Any]]:
    """Rows already in ``<output>/pieces``, by id (the latest part wins), less those a rerun retries:
    files storage could not read and files whose worker died (jobs.incremental.RETRY_ERRORS)."""
    folder = storage.join(output, "pieces")
    if not storage.exists(folder):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for part in sorted(storage.list_files(folder, suffixes=(".parquet",))):
        for row in storage.read_table(part).to_pylist():
            out[row["id"]] = row
    retry = incremental.RETRY_ERRORS
    return {k: r for k, r in out.items() if not (r["status"] == "error" and str(r["error"] or "").startswith(retry))}


def _write_part(output: str, rows: list[dict[str, Any]]) -> str:
    import pyarrow as pa  # noqa: PLC0415

    url = incremental.part_url(storage.join(output, "pieces"))  # names sort in write order
    storage.write_table(url, pa.Table.from_pylist(rows, schema=_parse_schema()))
    return url


def to_pieces(rows: Sequence[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Notes and Streams of parsed rows (status ok)."""
    from musicwords.notes import Notes  # noqa: PLC0415
    from musicwords.voices import Streams  # noqa: PLC0415

    pieces, streams = [], []
    for r in rows:
        notes = Notes.from_arrays(
            r["id"], onset=np.asarray(r["onset"], dtype=float), pitch=np.asarray(r["pitch"]),
            duration=np.asarray(r["duration"], dtype=float), voice=np.asarray(r["voice"]),
            velocity=np.asarray(r["velocity"]), tempo_bpm=float(r["tempo_bpm"]), voice_names=tuple(r["voice_names"]),
            title=r["title"] or "",
        )
        pieces.append(notes)
        streams.append(Streams(r["id"], tuple(np.asarray(s, dtype=np.int64) for s in r["streams"]), tuple(r["stream_names"])))
    return pieces, streams


# --------------------------------------------------------------------------------------------
# 3. learning: one group


def learn_group(name: str, folder: str, rows: Sequence[dict[str, Any]], config: dict[str, Any], output: str,
                fingerprint: str, *, estep: Callable[[list[np.ndarray]], Any] | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Learn the dictionary of one group, reconstruct its pieces, write its outputs; its summary.

    ``estep`` runs the E-step elsewhere (Ray actors holding shards); in this process by default.
    Writes every file of ``<output>/groups/<folder>/`` and ``summary.json`` last.
    """
    from musicwords.discover import discover  # noqa: PLC0415
    from musicwords.em import learn_dictionary  # noqa: PLC0415
    from musicwords.report import (  # noqa: PLC0415
        dictionary_table,
        note_coverage,
        occurrences_table,
        pattern_midi,
        piece_table,
        plot_history,
        plot_piece,
        usage_table,
        words_midi,
        words_table,
    )

    t0 = time.time()
    cfg = discover_config(config)
    top = int(config["top_words"])
    pieces, streams = to_pieces(rows)
    result = discover(pieces, cfg, streams=streams, progress=progress,
                      learn=lambda ts, alphabet: learn_dictionary(ts, alphabet, cfg.em, progress=progress, estep=estep))
    d = result.dictionary
    base = storage.join(output, "groups", folder)
    words = dictionary_table(result)
    all_words = words_table(result)
    per_piece = piece_table(result)
    top_ids = [p.word for p in result.patterns[:top]]
    cover_top = note_coverage(result, top_ids)
    cover_all = note_coverage(result)
    per_piece = per_piece.append_column("coverage_top", _pa_floats(cover_top))
    per_piece = per_piece.append_column("coverage_all", _pa_floats(cover_all))
    n_notes = np.array([len(n) for n in pieces])
    storage.write_table(storage.join(base, "dictionary.parquet"), words)
    storage.write_table(storage.join(base, "words.parquet"), all_words)
    storage.write_table(storage.join(base, "occurrences.parquet"), occurrences_table(result))
    storage.write_table(storage.join(base, "pieces.parquet"), per_piece)
    storage.write_table(storage.join(base, "usage.parquet"), usage_table(result))
    for row in words.to_pylist()[:top]:
        storage.write_bytes(storage.join(base, "words", f"w{row['word_id']}.mid"),
                            pattern_midi(row["onset"], row["interval"], row["duration"], name=f"word {row['word_id']}"))
    with tempfile.TemporaryDirectory() as tmp:
        plot_history(d.rounds, os.path.join(tmp, "history.png"), title=f"{name}: code length per round")
        storage.write_bytes(storage.join(base, "history.png"), _read(os.path.join(tmp, "history.png")))
        piece = None
        if result.patterns:
            score = np.where(n_notes >= 8, cover_top, -1.0)
            i = int(np.argmax(score))
            plot_piece(result, os.path.join(tmp, "piece.png"), piece=i, top=top)
            storage.write_bytes(storage.join(base, "piece.png"), _read(os.path.join(tmp, "piece.png")))
            storage.write_bytes(storage.join(base, "piece.words.mid"), words_midi(result, piece=i))
            ratio = per_piece.column("compression_ratio")[i].as_py()
            piece = {"piece_id": pieces[i].piece_id, "index": i, "coverage": float(cover_top[i]), "compression_ratio": ratio,
                     "img": "piece.png", "midi": "piece.words.mid"}
    summary = {
        "group": name, "folder": folder, "status": "ok", "error": None, "fingerprint": fingerprint,
        "n_pieces": len(pieces), "n_notes": int(n_notes.sum()), "n_tokens": int(result.tokens.n_tokens),
        "n_words": int(len(d.words) - d.n_literals), "n_reported": len(result.patterns),
        "base_bits": float(d.history[0]), "code_length_bits": float(d.code_length), "dictionary_bits": float(d.dict_bits),
        "data_bits": float(d.data_bits), "compression_ratio": float(d.history[0] / d.code_length) if d.code_length else None,
        "coverage_top": float((cover_top * n_notes).sum() / max(n_notes.sum(), 1)),
        "coverage_all": float((cover_all * n_notes).sum() / max(n_notes.sum(), 1)),
        "history": [float(h) for h in d.history], "rounds": d.rounds, "top_words": [int(w) for w in top_ids],
        "piece": piece, "sharded": estep is not None, "config": config, "seconds": round(time.time() - t0, 2),
    }
    document = {**summary, "alphabet": d.alphabet.to_json(), "words": all_words.to_pylist()}
    storage.write_bytes(storage.join(base, "dictionary.json"), json.dumps(document, indent=1).encode())
    storage.write_bytes(storage.join(base, "summary.json"), json.dumps(summary, indent=1).encode())
    return summary


def _pa_floats(values: np.ndarray) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.array(np.asarray(values, dtype=float))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class GroupLearner:
    """Ray actor of the group pool: learns one group per call (music21, numba warmed up once).

    ``yield_cpu``: while a sharded group runs beside the pool (see :func:`_learn_groups`), run at
    Linux's ``SCHED_IDLE`` priority (only on a core nothing else wants), else ``nice`` +
    :data:`POOL_NICE_BESIDE_SHARDS`."""

    def __init__(self, yield_cpu: bool = False) -> None:
        if not yield_cpu:
            return
        try:  # SCHED_IDLE: run only on a core nothing else wants
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):  # not on this system: a lower nice, or the same numbers more slowly
            with contextlib.suppress(AttributeError, OSError):
                os.nice(POOL_NICE_BESIDE_SHARDS)

    def learn(self, name: str, folder: str, rows: list[dict[str, Any]], config: dict[str, Any], output: str,
              fingerprint: str) -> dict[str, Any]:
        return learn_group(name, folder, rows, config, output, fingerprint)


class ShardActor:
    """Ray actor holding a contiguous range of E-step blocks of one group (a LocalEStep)."""

    def __init__(self, blocks: list[np.ndarray]) -> None:
        from musicwords.em import LocalEStep  # noqa: PLC0415

        self.local = LocalEStep(blocks)

    def build(self, key: int, words: list[tuple[int, ...]], n_literals: int) -> None:
        self.local.build(key, words, n_literals)

    def restrict(self, key: int, source: int, new_id: np.ndarray) -> None:
        self.local.restrict(key, source, new_id)

    def expected_counts(self, key: int, logp: np.ndarray) -> list[tuple[np.ndarray, float]]:
        return self.local.expected_counts(key, logp)

    def best_words(self, key: int, logp: np.ndarray) -> list[np.ndarray]:
        return self.local.best_words(key, logp)

    def release(self, key: int) -> None:
        self.local.release(key)


class ShardLost(RuntimeError):
    """An E-step shard whose actor died more often than :class:`RayEStep` replaces it."""


class RayEStep:
    """The E-step of :mod:`musicwords.em` sharded over Ray actors: each holds a contiguous range
    of blocks (balanced by tokens) and returns one result per block; the driver adds them up.

    A shard whose actor dies (killed, out of memory, node lost) is replaced, up to
    ``max_restarts`` times per shard: a new actor gets the same blocks (kept in the object
    store by the driver), rebuilds every lattice still in use from how it was made (a
    ``build`` from its words, or a ``restrict`` of another lattice, made first if it was
    released since), and the call is made again. Lattices are a pure function of the blocks
    and the words, so the numbers are those of a run without the failure. Past
    ``max_restarts`` a call raises :class:`ShardLost` (the job gives the group an error row).
    """

    def __init__(self, blocks: list[np.ndarray], n_shards: int, *, num_cpus: float = 1.0, max_restarts: int = 3) -> None:
        import ray  # noqa: PLC0415

        ranges = balanced_ranges([len(b) for b in blocks], n_shards)
        self._actor: Any = ray.remote(num_cpus=num_cpus, max_restarts=0)(ShardActor)  # an actor class: typed by its use
        self._blocks = [ray.put(blocks[a:b]) for a, b in ranges]
        self.actors: list[Any] = [self._actor.remote(part) for part in self._blocks]
        self.shards = [b - a for a, b in ranges]
        self.max_restarts = max_restarts
        self.restarts = [0] * len(ranges)
        self._recipes: dict[int, tuple[Any, ...]] = {}  # key -> ("build", words, n_literals) | ("restrict", source, new_id)
        self._live: set[int] = set()

    def _all(self, method: str, *args: Any, again: bool = True) -> list[Any]:
        """``method(*args)`` on every shard, results in shard order. A shard that dies is replaced
        (its lattices rebuilt) and, when ``again``, asked again; the state-changing calls need
        not be, the rebuild already did what they do."""
        import ray  # noqa: PLC0415

        refs = [getattr(a, method).remote(*args) for a in self.actors]
        out = []
        for i, ref in enumerate(refs):
            while True:
                try:
                    out.append(ray.get(ref))
                    break
                except ray.exceptions.RayActorError as e:
                    self._replace(i, e)
                    if not again:
                        out.append(None)
                        break
                    ref = getattr(self.actors[i], method).remote(*args)
        return out

    def _replace(self, i: int, error: BaseException) -> None:
        """A new actor for shard ``i``, holding every live lattice again."""
        import ray  # noqa: PLC0415

        while True:
            self.restarts[i] += 1
            if self.restarts[i] > self.max_restarts:
                raise ShardLost(f"E-step shard {i + 1} of {len(self.actors)} lost: its actor died {self.restarts[i]} "
                                f"time(s), {self.max_restarts} replacement(s) allowed; last: {_died(error)}") from error
            print(f"words: E-step shard {i + 1} of {len(self.actors)}: its actor died ({_died(error)}); a new actor "
                  f"rebuilds its {len(self._live)} lattice(s)", file=sys.stderr)
            ray.kill(self.actors[i])
            actor = self.actors[i] = self._actor.remote(self._blocks[i])
            order = self._rebuild_order()  # (calls from one caller to an actor run in the order made)
            refs = [actor.build.remote(key, *self._recipes[key][1:]) if self._recipes[key][0] == "build"
                    else actor.restrict.remote(key, *self._recipes[key][1:]) for key in order]
            refs += [actor.release.remote(key) for key in order if key not in self._live]
            try:
                ray.get(refs)
                return
            except ray.exceptions.RayActorError as e:  # the new one died too
                error = e

    def _rebuild_order(self) -> list[int]:
        """The live lattices and those they are restricted from, each after its source."""
        order: list[int] = []
        for key in sorted(self._live):
            chain: list[int] = []
            while key not in order and key not in chain:
                chain.append(key)
                recipe = self._recipes[key]
                if recipe[0] != "restrict":
                    break
                key = recipe[1]
            order += reversed(chain)
        return order

    def _forget(self) -> None:
        """Drop the recipes no live lattice depends on."""
        needed = set(self._rebuild_order())
        self._recipes = {k: v for k, v in self._recipes.items() if k in needed}

    def build(self, key: int, words: Sequence[tuple[int, ...]], n_literals: int) -> None:
        import ray  # noqa: PLC0415

        self._recipes[key] = ("build", ray.put(list(words)), n_literals)
        self._live.add(key)
        self._all("build", key, self._recipes[key][1], n_literals, again=False)

    def restrict(self, key: int, source: int, new_id: np.ndarray) -> None:
        self._recipes[key] = ("restrict", source, np.array(new_id, copy=True))
        self._live.add(key)
        self._all("restrict", key, source, new_id, again=False)

    def expected_counts(self, key: int, logp: np.ndarray) -> list[tuple[np.ndarray, float]]:
        return [part for shard in self._all("expected_counts", key, logp) for part in shard]

    def best_words(self, key: int, logp: np.ndarray) -> list[np.ndarray]:
        return [part for shard in self._all("best_words", key, logp) for part in shard]

    def release(self, key: int) -> None:
        self._live.discard(key)
        self._all("release", key, again=False)
        self._forget()

    def close(self) -> None:
        import ray  # noqa: PLC0415

        for a in self.actors:
            ray.kill(a)
        self.actors = []
        self._blocks, self._recipes, self._live = [], {}, set()


def balanced_ranges(sizes: Sequence[int], n: int) -> list[tuple[int, int]]:
    """At most ``n`` contiguous, non-empty ranges of items whose sizes add up to about equal shares
    (each cut where the running total comes closest to ``k/n`` of the whole).

    Examples
    --------
    >>> balanced_ranges([5, 5, 5, 5, 1], 2)
    [(0, 2), (2, 5)]
    >>> balanced_ranges([9, 1, 1, 1], 2)
    [(0, 1), (1, 4)]
    """
    m = len(sizes)
    n = max(1, min(n, m))
    prefix = np.concatenate([[0.0], np.cumsum(np.asarray(sizes, dtype=float))])
    cuts = [0]
    for k in range(1, n):
        lo, hi = cuts[-1] + 1, m - (n - k)  # leave at least one item to each range still to come
        j = lo + int(np.argmin(np.abs(prefix[lo : hi + 1] - prefix[-1] * k / n)))
        cuts.append(j)
    cuts.append(m)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


# --------------------------------------------------------------------------------------------
# the driver


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    inputs = list_inputs(args.input, args.group_by)
    done = parsed_rows(args.output)
    todo = [r for r in inputs if r["id"] not in done][: args.limit]
    groups: dict[str, int] = {}
    for r in inputs:
        groups[r["group"]] = groups.get(r["group"], 0) + 1
    return {"files": len(inputs), "would_parse": len(todo), "already_parsed": len(inputs) - len(todo),
            "groups": groups, "outputs": {"report": storage.join(args.output, "index.html"),
                                          "groups": storage.join(args.output, "groups")}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray  # noqa: PLC0415

    started = time.time()
    config = job_config(args)
    storage.write_bytes(storage.join(args.output, "config.json"), json.dumps(config, indent=1).encode())
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = args.workers or max(1, cpus - 1)
    per_actor = min(1.0, max(0.25, (cpus - 0.25) / workers))  # on a small machine the driver needs a little room too

    # 1. list
    inputs = list_inputs(args.input, args.group_by)
    if not inputs:
        raise JobError(f"--input {storage.redact_url(args.input)}: no scores ({', '.join(SUFFIXES)})")
    # 2. parse
    done = parsed_rows(args.output)
    todo = [r for r in inputs if r["id"] not in done]
    if args.limit is not None:
        todo = todo[: args.limit]
    t_parse = time.time()
    new_rows = _parse(todo, args, workers, per_actor) if todo else []
    parse_seconds = time.time() - t_parse
    for r in new_rows:
        done[r["id"]] = r
    rows = [{**done[r["id"]], "group": r["group"]} for r in inputs if r["id"] in done]
    ok = [r for r in rows if r["status"] == "ok"]
    print(f"words: {len(rows)} of {len(inputs)} inputs parsed ({len(rows) - len(ok)} errors), "
          f"{sum(r['n_notes'] for r in ok):,} notes", file=sys.stderr)

    # 3. learn, per group (+ the whole corpus when there are several)
    by_group: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        by_group.setdefault(r["group"], []).append(r)
    names = sorted(by_group)
    if len(names) > 1:
        by_group[CORPUS] = ok
        names.append(CORPUS)
    folders = _folders(names)
    summaries: dict[str, dict[str, Any]] = {}
    todo_groups = []
    for name in names:
        fingerprint = _fingerprint(config, [r["id"] for r in by_group[name]])
        old = _stored_summary(args.output, folders[name])
        if old is not None and old.get("fingerprint") == fingerprint:
            summaries[name] = {**old, "reused": True}
        else:
            todo_groups.append((name, fingerprint))
    t_learn = time.time()
    for summary in _learn_groups(todo_groups, by_group, folders, config, args, workers, per_actor):
        summaries[summary["group"]] = summary
        _log_group(summary, args.output)
    learn_seconds = time.time() - t_learn

    # 4. report
    table_url = storage.join(args.output, "groups.parquet")
    _write_groups_table(table_url, [summaries[n] for n in names])
    report_url = _report(args, names, folders, summaries, rows)
    good = [s for s in summaries.values() if s["status"] == "ok"]
    notes = sum(r["n_notes"] for r in ok)
    return {
        "inputs": len(inputs), "parsed": len(rows), "parse_errors": len(rows) - len(ok),
        "parsed_now": len(new_rows), "processed": len(new_rows), "errors": sum(r["status"] != "ok" for r in new_rows),
        "notes": notes, "groups": len(names), "groups_ok": len(good),
        "groups_error": len(names) - len(good), "groups_reused": sum(bool(s.get("reused")) for s in summaries.values()),
        "groups_sharded": sum(bool(s.get("sharded")) and not s.get("reused") for s in summaries.values()),
        "workers": workers, "parse_seconds": round(parse_seconds, 2), "learn_seconds": round(learn_seconds, 2),
        "seconds": round(time.time() - started, 2),
        "notes_per_second": round(notes / max(time.time() - started, 1e-9), 1),
        "outputs": {"report": report_url, "groups": table_url, "pieces": storage.join(args.output, "pieces")},
    }


def _parse(todo: list[dict[str, str]], args: argparse.Namespace, workers: int, per_actor: float) -> list[dict[str, Any]]:
    import ray  # noqa: PLC0415

    # small blocks and one file per call: one score can take a hundred times another (a string
    # quartet in MusicXML against a folk tune), so big dispatch units leave a worker idle at the end
    ds = ray.data.from_items(todo, override_num_blocks=min(len(todo), 64 * workers))
    parsed = ds.map_batches(
        Parser, fn_constructor_kwargs={"voices": args.voices, "max_voices": args.max_voices,
                                       "input_time_limit": args.input_time_limit}, batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=per_actor,
    )
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for item in parsed.iter_rows():
        pending.append(dict(item["row"]))
        if len(pending) >= args.flush:
            _write_part(args.output, pending)
            rows.extend(pending)
            pending = []
    missing = {r["id"] for r in todo} - {r["id"] for r in rows + pending}
    pending += [_error_row(r["id"], r["uri"], r["group"], "no result came back from the parsing workers", 0.0)
                for r in todo if r["id"] in missing]  # never lose an input silently
    if pending:
        _write_part(args.output, pending)
        rows.extend(pending)
    return rows


def _learn_groups(todo: list[tuple[str, str]], by_group: dict[str, list[dict[str, Any]]], folders: dict[str, str],
                  config: dict[str, Any], args: argparse.Namespace, workers: int, per_actor: float) -> Any:
    """Yield one summary per group, as each is done: small groups in an actor pool, and beside it, in
    a driver thread, the big ones (largest first) with a sharded E-step.

    Big: more than ``--shard-tokens`` tokens and more than :data:`SHARD_ABOVE_SHARE` times a
    worker's fair share of all the groups' tokens (their sum / ``workers``). Such a group, learned
    by one pool actor, would still be running long after the others are done; a group up to about
    its fair share fits in the pool, where it costs no driver time and no E-step calls. Sharding
    saves at most the group's excess over the fair share (the pool's makespan cannot fall below
    it) and costs the driver's serial work (candidates, M-step, pruning) and a call per E-step,
    so a group at its fair share is learned faster in one actor: the whole-corpus group, which
    holds exactly half of all tokens when every piece is in one composer group, stays in the pool
    with 2 workers and is sharded from 3 on.

    Why beside, not after: a sharded group leaves cores idle whenever its driver works alone (M-step,
    candidates, pruning, reconstruction, plots), and the pool's last groups leave cores idle at its
    end; run together, each fills the other's gaps. The shards then ask Ray for a sliver of a CPU
    (:data:`SHARD_CPUS_BESIDE_POOL`): the cores are shared in time, and Ray's count only places them;
    the pool's actors run at the idle priority (``SCHED_IDLE``; else ``nice``), so that the sharded
    group, the longest one, runs as if alone and the pool takes the time its driver leaves idle.
    The numbers do not depend on the schedule (the sharded E-step gives one process's result).
    """
    import threading  # noqa: PLC0415
    from collections import deque  # noqa: PLC0415

    import ray  # noqa: PLC0415

    from jobs.runtime import _reason  # noqa: PLC0415

    size = {name: sum(r["n_tokens"] for r in by_group[name]) for name, _ in todo}
    share = sum(size.values()) / workers  # a worker's fair share of the learning, in tokens
    big = sorted((t for t in todo
                  if workers > 1 and size[t[0]] > args.shard_tokens and size[t[0]] > SHARD_ABOVE_SHARE * share),
                 key=lambda t: -size[t[0]])
    small = sorted((t for t in todo if t not in big), key=lambda t: -size[t[0]])  # largest first: a balanced pool
    shard_cpus = SHARD_CPUS_BESIDE_POOL if small else per_actor
    done_big: deque[dict[str, Any]] = deque()  # appended by the thread, taken here (deque: thread-safe)
    big_over = threading.Event()

    def learn_big() -> None:
        try:
            for name, fingerprint in big:
                done_big.append(_learn_sharded(name, fingerprint, size[name], by_group, folders, config, args, workers,
                                               shard_cpus))
        finally:
            big_over.set()

    thread = threading.Thread(target=learn_big, name="words-sharded-groups", daemon=True)
    if big:
        thread.start()
    else:
        big_over.set()
    if small:
        # No Ray restarts: a dead actor is replaced here, so that every group gets the same one more try
        # (GROUP_TRIES in all), and the driver says so, whatever actor it lands on.
        learner = ray.remote(num_cpus=per_actor, max_restarts=0)(GroupLearner)
        made: list[Any] = [learner.remote(bool(big)) for _ in range(min(workers, len(small)))]
        queue = list(small)
        tries: dict[str, int] = {}
        running: dict[Any, tuple[Any, str, str]] = {}

        def submit(actor: Any) -> None:
            name, fingerprint = queue.pop(0)
            tries[name] = tries.get(name, 0) + 1
            ref = actor.learn.remote(name, folders[name], by_group[name], config, args.output, fingerprint)
            running[ref] = (actor, name, fingerprint)

        for actor in made[: len(queue)]:
            submit(actor)
        while running:
            while done_big:
                yield done_big.popleft()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            if not ready:
                continue
            actor, name, fingerprint = running.pop(ready[0])
            summary: dict[str, Any] | None
            try:
                summary = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:  # its process died (killed, out of memory, node lost)
                actor = learner.remote(bool(big))  # a new actor takes the dead one's place in the pool
                made.append(actor)
                if tries[name] < GROUP_TRIES:
                    print(f"words: {name}: the learning actor died ({_died(e)}); learning the group again", file=sys.stderr)
                    queue.insert(0, (name, fingerprint))
                    summary = None
                else:
                    summary = _group_error(name, folders[name], fingerprint, by_group[name],
                                           f"group {name!r}: the learning actor died {tries[name]} times; last: {_died(e)}")
            except ray.exceptions.RayError as e:  # learn_group raised: the same input would raise again
                summary = _group_error(name, folders[name], fingerprint, by_group[name], _reason(e))
            if queue:
                submit(actor)  # before the caller logs this result: the actor never waits on the driver
            if summary is not None:
                yield summary
        for actor in made:
            ray.kill(actor)
    while not big_over.wait(timeout=1.0) or done_big:
        while done_big:
            yield done_big.popleft()
    if big:
        thread.join()


# a group is sharded when it holds more than this many fair shares of the learning (see _learn_groups):
# measured at e2b8c1f with 2 workers, the whole corpus (one fair share) took 63 s sharded beside the
# pool and 53 s in one pool actor; any factor between 1 and 1.5 splits 2 workers (1.0: pool) from 3
# (1.5: sharded) for the whole-corpus group, and 1.25 is the middle
SHARD_ABOVE_SHARE = 1.25
# Ray CPUs asked by an E-step shard while the small groups' pool runs beside it (see _learn_groups)
SHARD_CPUS_BESIDE_POOL = 0.05
# niceness added to the pool's actors beside a sharded group where SCHED_IDLE is not allowed: the
# sharded group is the longest job (the whole corpus), so its shards go first wherever both want a
# core (nice 15 -> 19 under Ray: a 36 : 15 share of a core)
POOL_NICE_BESIDE_SHARDS = 4


def _learn_sharded(name: str, fingerprint: str, tokens: int, by_group: dict[str, list[dict[str, Any]]],
                   folders: dict[str, str], config: dict[str, Any], args: argparse.Namespace, workers: int,
                   shard_cpus: float) -> dict[str, Any]:
    """One big group, learned here with its E-step over ``workers`` shard actors; its summary or error summary."""
    shards: list[RayEStep] = []

    def estep(blocks: list[np.ndarray]) -> RayEStep:
        shards.append(RayEStep(blocks, workers, num_cpus=shard_cpus))
        return shards[-1]

    def progress(line: str) -> None:
        print(f"  {name}: {line}", file=sys.stderr)

    print(f"words: {name}: {tokens:,} tokens, E-step sharded over {workers} actors", file=sys.stderr)
    try:
        return learn_group(name, folders[name], by_group[name], config, args.output, fingerprint, estep=estep,
                           progress=progress)
    except Exception as e:  # one group's failure must not lose the others; say what happened
        return _group_error(name, folders[name], fingerprint, by_group[name], f"{type(e).__name__}: {e}")
    finally:
        for s in shards:
            s.close()


def _died(e: BaseException) -> str:
    """One short line on an actor's death (Ray's message goes on about causes for many lines)."""
    from jobs.runtime import _reason  # noqa: PLC0415

    return re.sub(r"\s*Worker exit detail:.*", "", _reason(e))[:300]


GROUP_TRIES = 2  # a group whose learning actor dies is learned once more on a new actor, then gets an error row


def _group_error(name: str, folder: str, fingerprint: str, rows: list[dict[str, Any]], error: str) -> dict[str, Any]:
    return {"group": name, "folder": folder, "status": "error", "error": error, "fingerprint": fingerprint,
            "n_pieces": len(rows), "n_notes": int(sum(r["n_notes"] for r in rows)), "history": [], "rounds": []}


def _folders(names: list[str]) -> dict[str, str]:
    """A file-name-safe, unique folder per group."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        folder = CORPUS_FOLDER if name == CORPUS else (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "group")
        if folder in used or (folder == CORPUS_FOLDER and name != CORPUS):
            folder = f"{folder}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"
        used.add(folder)
        out[name] = folder
    return out


def _fingerprint(config: dict[str, Any], ids: list[str]) -> str:
    text = json.dumps({"config": config, "pieces": sorted(ids)}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def _stored_summary(output: str, folder: str) -> dict[str, Any] | None:
    url = storage.join(output, "groups", folder, "summary.json")
    if not storage.exists(url):
        return None
    data: dict[str, Any] = json.loads(storage.read_bytes(url))
    return data


def _log_group(summary: dict[str, Any], output: str) -> None:
    """One nested MLflow run per group: config, code length per round, final figures, artifacts."""
    import mlflow  # noqa: PLC0415
    from mlflow.entities import Metric  # noqa: PLC0415

    from jobs.tracking import safe_params  # noqa: PLC0415

    parent = mlflow.active_run()
    experiment = parent.info.experiment_id if parent else None  # the job's experiment, not the default one
    with mlflow.start_run(run_name=f"group {summary['group']}", nested=True, experiment_id=experiment,
                          tags={"job": "words", "group": summary["group"], "status": summary["status"]}) as run:
        params = {"group": summary["group"], "n_pieces": summary["n_pieces"], "sharded": summary.get("sharded", False)}
        params.update(summary.get("config") or {})
        mlflow.log_params(safe_params(params))
        # (code_length_bits: its last step is the final figure); one batch, not one write per step
        keys = ("n_notes", "n_tokens", "n_words", "n_reported", "base_bits", "dictionary_bits",
                "data_bits", "compression_ratio", "coverage_top", "coverage_all", "seconds")
        now = int(time.time() * 1000)
        metrics = [Metric("code_length_bits", float(bits), now, step) for step, bits in enumerate(summary.get("history", []))]
        metrics += [Metric("round_bits", float(r["bits"]), now, int(r["round"])) for r in summary.get("rounds", [])]
        metrics += [Metric(k, float(summary[k]), now, 0) for k in keys if summary.get(k) is not None]
        client = mlflow.MlflowClient()
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics per batch
            client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
        if summary["status"] != "ok":
            mlflow.log_text(summary["error"] or "", "error.txt")
            return
        base = storage.join(output, "groups", summary["folder"])
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("summary.json", "dictionary.json", "dictionary.parquet", "history.png", "piece.png"):
                url = storage.join(base, name)
                if storage.exists(url):
                    with open(os.path.join(tmp, name), "wb") as f:
                        f.write(storage.read_bytes(url))
            mlflow.log_artifacts(tmp)


def _write_groups_table(url: str, summaries: list[dict[str, Any]]) -> None:
    import pyarrow as pa  # noqa: PLC0415

    fields = [("group", pa.string()), ("folder", pa.string()), ("status", pa.string()), ("error", pa.string()),
              ("n_pieces", pa.int64()), ("n_notes", pa.int64()), ("n_tokens", pa.int64()), ("n_words", pa.int64()),
              ("n_reported", pa.int64()), ("base_bits", pa.float64()), ("code_length_bits", pa.float64()),
              ("dictionary_bits", pa.float64()), ("data_bits", pa.float64()), ("compression_ratio", pa.float64()),
              ("coverage_top", pa.float64()), ("coverage_all", pa.float64()), ("sharded", pa.bool_()), ("seconds", pa.float64())]
    rows = [{k: s.get(k) for k, _ in fields} for s in summaries]
    storage.write_table(url, pa.Table.from_pylist(rows, schema=pa.schema(fields)))


# --------------------------------------------------------------------------------------------
# 4. the report


STATISTIC = ("weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) of the group "
             "against all other groups, the prior being each word's count in the whole corpus; "
             "shown: z > 1.96, highest first")


def _report(args: argparse.Namespace, names: list[str], folders: dict[str, str], summaries: dict[str, dict[str, Any]],
            rows: list[dict[str, Any]]) -> str:
    from musicwords.compare import Z_THRESHOLD, distinctive_words, shared_words  # noqa: PLC0415
    from musicwords.page import render_page  # noqa: PLC0415
    from musicwords.report import pattern_midi  # noqa: PLC0415

    out = args.output
    top = args.top_words
    cards: dict[str, dict[str, Any]] = {}
    for name in names:
        s = summaries[name]
        folder = folders[name]
        card: dict[str, Any] = {"name": name, "anchor": f"group-{folder}", "n_pieces": s["n_pieces"], "n_notes": s["n_notes"],
                                "error": s.get("error") if s["status"] != "ok" else None}
        if s["status"] == "ok":
            base = f"groups/{folder}"
            reported = {r["word_id"]: r for r in storage.read_table(storage.join(out, base, "dictionary.parquet")).to_pylist()}
            words = []
            for w in s["top_words"]:
                r = reported[w]
                words.append({**r, "midi": f"{base}/words/w{w}.mid"})
            piece = dict(s["piece"]) if s.get("piece") else None
            if piece:
                piece.update(img=f"{base}/{piece['img']}", midi=f"{base}/{piece['midi']}")
            card.update({k: s[k] for k in ("n_tokens", "n_words", "n_reported", "base_bits", "code_length_bits",
                                           "dictionary_bits", "compression_ratio", "coverage_top", "coverage_all")})
            card.update(words=words, piece=piece, history_img=f"{base}/history.png")
        cards[name] = card

    shared = None
    corpus = summaries.get(CORPUS)
    if corpus is not None and corpus["status"] == "ok" and len(names) > 1:  # (--group-by none: the corpus alone)
        base = f"groups/{folders[CORPUS]}"
        vocabulary = {r["word_id"]: r for r in storage.read_table(storage.join(out, base, "words.parquet")).to_pylist()}
        group_of = {r["id"]: r["group"] for r in rows}
        counts: dict[str, dict[int, int]] = {n: {} for n in names if n != CORPUS}
        for u in storage.read_table(storage.join(out, base, "usage.parquet")).to_pylist():
            g = counts[group_of[u["piece_id"]]]
            g[u["word_id"]] = g.get(u["word_id"], 0) + u["count"]

        def card_of(w: int, **extra: Any) -> dict[str, Any]:
            r = vocabulary[w]
            midi = f"{base}/words/w{w}.mid"
            if r["onset"] and not storage.exists(storage.join(out, midi)):
                data = pattern_midi(r["onset"], r["interval"], r["duration"], name=f"word {w}")
                storage.write_bytes(storage.join(out, midi), data)
            return {**r, **extra, "midi": midi if r["onset"] else None}

        for name in counts:
            found = [x for x in distinctive_words(counts, name) if x["z"] > Z_THRESHOLD][:8]
            cards[name]["distinctive"] = [card_of(x["word"], z=x["z"], count=x["count"], rate=x["rate"], rest_rate=x["rest_rate"])
                                          for x in found]
        shared = [card_of(x["word"], groups=x["groups"], min_rate=x["min_rate"], count=x["count"])
                  for x in shared_words(counts, top=top)]
    overview = _overview_png(out, [summaries[n] for n in names])
    errors = [{"id": r["id"], "error": r["error"]} for r in rows if r["status"] != "ok"]
    page = render_page({
        "title": f"Music-words of {storage.redact_url(args.input)}",
        "subtitle": f"{len(rows)} inputs, {len(errors)} not read; {len(names)} groups ({args.group_by}); settings: "
                    + ", ".join(f"{k}={v}" for k, v in job_config(args).items()) + f"; written {time.strftime('%Y-%m-%d %H:%M')}",
        "statistic": STATISTIC, "groups": [cards[n] for n in names if n != CORPUS],
        "corpus": cards.get(CORPUS), "shared": shared, "overview_img": overview, "errors": errors,
    })
    url = storage.join(out, "index.html")
    storage.write_bytes(url, page.encode())
    return url


def _overview_png(out: str, summaries: list[dict[str, Any]]) -> str | None:
    """``report/overview.png``: compression ratio and top-word coverage per group."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    ok = [s for s in summaries if s["status"] == "ok"]
    if not ok:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.8 + 0.28 * len(ok)), dpi=100, squeeze=False)
    labels = [s["group"] for s in ok]
    axes[0, 0].barh(labels, [s["compression_ratio"] for s in ok], color="#4477aa")
    axes[0, 0].set_xlabel("compression ratio (code length without words / with)")
    axes[0, 1].barh(labels, [100 * s["coverage_top"] for s in ok], color="#228833")
    axes[0, 1].set_xlabel("notes covered by the top words (%)")
    for ax in axes.flat:
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "overview.png")
        fig.savefig(path)
        plt.close(fig)
        storage.write_bytes(storage.join(out, "report", "overview.png"), _read(path))
    return "report/overview.png"
