"""``python -m jobs words``: music-words at corpus scale, per composer and for the whole corpus.

Steps (numbers as in :func:`run`; each in its module: ``words_parse`` lists and parses,
``words_learn`` learns, ``words_report`` reports):

1. *list* the scores under ``--input`` (MIDI, MusicXML, kern, abc) or the ``id``/``uri`` rows of a
   Parquet manifest, each with its group (``--group-by composer``: the first folder under the
   prefix, or the manifest's ``composer``/``group`` column; ``folder``: the whole folder;
   ``none``: one group);
2. *parse* them in a Ray Data actor pool into Notes and monophonic voices: one row per file in
   ``<output>/pieces/part-*.parquet`` (error rows name the file and the reason);
3. *learn* one dictionary per group (plus one for the whole corpus when there are several
   groups, the common vocabulary the composers are compared in). Groups run in parallel in an
   actor pool, one EM per actor, largest first; a group of more than ``--shard-tokens`` tokens
   and well over a worker's fair share of all the groups' tokens (see :func:`jobs.words_learn.learn_groups`)
   runs on the driver (in a thread, beside the pool, largest first) with its E-step sharded over
   ``--workers`` actors that each hold a contiguous range of the E-step blocks (see
   :mod:`musicwords.em`: same blocks, same sums, same numbers as one process). A dead worker
   loses nothing: a group whose actor dies is learned once more on a new actor, then gets an
   error row naming it and why; a dead E-step shard is replaced, its
   lattices rebuilt, and the call made again (same numbers). Per group, under
   ``<output>/groups/<group>/``: ``dictionary.parquet`` + ``.json``, ``motifs.parquet`` (the motif
   layer, same columns), ``words.parquet`` (every word), ``occurrences.parquet``,
   ``pieces.parquet`` (code length and compression ratio per piece), ``usage.parquet``, MIDI of
   the top words, PNGs, and ``summary.json`` last (a rerun with the same pieces and options
   skips the group); one nested MLflow run per group under the
   job's run;
4. *report*: ``<output>/index.html`` (open it from the folder, no server), built by
   :mod:`musicwords.page`, and ``<output>/groups.parquet``, one row per group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from jobs import incremental, sandbox, storage
from jobs.rows import add_row_arguments, map_rows, row_options
from jobs.runtime import JobError
from jobs.words_learn import learn_groups
from jobs.words_parse import CORPUS, SUFFIXES, PieceParser, error_row, list_inputs, parse_schema, parsed_rows
from jobs.words_report import log_group, write_groups_table, write_report

DESCRIPTION = "discover music-words per composer and for the corpus: dictionaries, occurrences, code lengths, an HTML report"
EXAMPLES = """examples:
  python -m jobs words --input work/sample/midi --output work/words
  python -m jobs words --input work/sample/midi.parquet --output s3://corpus/words --workers 8
  python -m jobs words --input s3://corpus/scores/ --output s3://corpus/words --group-by folder --preset debug
"""
CORPUS_FOLDER = "_corpus"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from musicwords.discover import DiscoverConfig, motif_bars_arg  # noqa: PLC0415
    from musicwords.em import EMConfig  # noqa: PLC0415
    from musicwords.voices import METHODS  # noqa: PLC0415

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
    cfg.add_argument("--voices", choices=METHODS, default=DiscoverConfig.voices,
                     help="voice separation of polyphonic parts (musicwords.voices) (default: %(default)s)")
    cfg.add_argument("--max-voices", type=int, default=4, help="lines per part (default: %(default)s)")
    cfg.add_argument("--extend", choices=("none", "repeating", "maximal"), default="none",
                     help="repeating: occurrences take the co-sounding notes that recur with them (polyphonic patterns); "
                          "maximal: and grow in time while the notes around them recur (what `python -m musicwords "
                          "evaluate` measures); both quadratic in a word's occurrences, slow on big groups "
                          "(default: %(default)s)")
    cfg.add_argument("--null", choices=("unigram", "markov"), default="unigram",
                     help="the null model savings and significance are counted against (musicwords.idiom) "
                          "(default: %(default)s)")
    cfg.add_argument("--motif-voices", choices=(*METHODS, "none"), default=DiscoverConfig.motif_voices,
                     help="streams of the motif layer's dictionary: the top line of each part, other lines too, or "
                          "none: the patterns' streams (a fugue's inner entries need lines or outer) (default: %(default)s)")
    cfg.add_argument("--motif-bars", type=motif_bars_arg, default=DiscoverConfig.motif_bars,
                     help="a motif shorter than this many measures has its statements filled out to it along their "
                          "line (musicwords.reconstruct.fill_bars), or 'none': as found (default: %(default)s)")
    cfg.add_argument("--max-patterns", type=int, default=300,
                     help="report at most this many patterns per group, 0 for all (default: %(default)s)")
    cfg.add_argument("--block-tokens", type=int, default=EMConfig().block_tokens,
                     help="E-step block size in tokens, the unit of sharding; part of the result (default: %(default)s)")
    cfg.add_argument("--shard-tokens", type=int, default=200_000,
                     help="a group with more tokens (and over 1.25/--workers of all groups' tokens) runs its E-step "
                          "sharded over --workers actors (default: %(default)s)")
    cfg.add_argument("--top-words", type=int, default=12, help="words per group shown in the report (default: %(default)s)")
    add_row_arguments(parser, block_inputs=8)  # one score can take a hundred times another (a quartet against a folk tune)
    incremental.add_arguments(parser)
    sandbox.add_argument(parser)


def check(args: argparse.Namespace) -> None:
    for name in ("limit", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise JobError(f"--{name} must be at least 1, got {value}")
    if args.max_patterns < 0:
        raise JobError(f"--max-patterns must be at least 0 (0: all), got {args.max_patterns}")
    for name in ("max_voices", "block_tokens", "shard_tokens", "top_words"):
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
            "extend": args.extend, "null": args.null, "max_patterns": args.max_patterns, "block_tokens": args.block_tokens,
            "top_words": args.top_words, "motif_voices": args.motif_voices, "motif_bars": args.motif_bars}


# --------------------------------------------------------------------------------------------
# 1. listing


# --------------------------------------------------------------------------------------------
# 2. parsing


# --------------------------------------------------------------------------------------------
# 3. learning: one group


# --------------------------------------------------------------------------------------------
# the driver


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    inputs = list_inputs(args.input, args.group_by)
    work = incremental.plan(inputs, incremental.done_table(storage.join(args.output, "pieces")),
                            incremental=args.incremental, limit=args.limit)
    groups: dict[str, int] = {}
    for r in inputs:
        groups[r["group"]] = groups.get(r["group"], 0) + 1
    return {"files": len(inputs), "plan": work.describe(), "would_parse": len(work.todo),
            "already_parsed": len(inputs) - len(work.todo),
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
    # 2. parse (the new and changed inputs; a rerun retries those storage could not read or whose worker died)
    pieces = storage.join(args.output, "pieces")
    work = incremental.plan(inputs, incremental.done_table(pieces), incremental=args.incremental, limit=args.limit)
    t_parse = time.time()
    new_rows = map_rows(
        work.take_todo(), PieceParser, folder=pieces, schema=parse_schema(), workers=workers,
        lost_row=lambda r, reason: error_row(r["id"], r["uri"], r["group"], reason, 0.0), num_cpus=per_actor,
        worker_kwargs={"voices": args.voices, "max_voices": args.max_voices, **sandbox.limits(args)},
        carry=("group",), keep=lambda r: {"status": r["status"]}, **row_options(args))
    parse_seconds = time.time() - t_parse
    print(f"words: {work.describe(errors=new_rows.errors)}", file=sys.stderr)
    done = parsed_rows(args.output, retried=True)
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
        fingerprint = _fingerprint(config, by_group[name])
        old = _stored_summary(args.output, folders[name])
        if old is not None and old.get("fingerprint") == fingerprint:
            summaries[name] = {**old, "reused": True}
        else:
            todo_groups.append((name, fingerprint))
    t_learn = time.time()
    for summary in learn_groups(todo_groups, by_group, folders, config, args, workers, per_actor):
        summaries[summary["group"]] = summary
        log_group(summary, args.output)
    learn_seconds = time.time() - t_learn

    # 4. report
    table_url = storage.join(args.output, "groups.parquet")
    write_groups_table(table_url, [summaries[n] for n in names])
    report_url = write_report(args, names, folders, summaries, rows)
    good = [s for s in summaries.values() if s["status"] == "ok"]
    notes = sum(r["n_notes"] for r in ok)
    return {
        "inputs": len(inputs), "parsed": len(rows), "parse_errors": len(rows) - len(ok),
        "parsed_now": new_rows.rows, "processed": new_rows.rows, "errors": new_rows.errors,
        **work.counts(),
        "notes": notes, "groups": len(names), "groups_ok": len(good),
        "groups_error": len(names) - len(good), "groups_reused": sum(bool(s.get("reused")) for s in summaries.values()),
        "groups_sharded": sum(bool(s.get("sharded")) and not s.get("reused") for s in summaries.values()),
        "workers": workers, "parse_seconds": round(parse_seconds, 2), "learn_seconds": round(learn_seconds, 2),
        "seconds": round(time.time() - started, 2),
        "notes_per_second": round(notes / max(time.time() - started, 1e-9), 1),
        "outputs": {"report": report_url, "groups": table_url, "pieces": storage.join(args.output, "pieces")},
    }


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


def _fingerprint(config: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """What a group's result depends on: the settings and its pieces' ids and content versions."""
    pieces = sorted([str(r["id"]), str(r.get("version"))] for r in rows)
    text = json.dumps({"config": config, "pieces": pieces}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def _stored_summary(output: str, folder: str) -> dict[str, Any] | None:
    url = storage.join(output, "groups", folder, "summary.json")
    if not storage.exists(url):
        return None
    data: dict[str, Any] = json.loads(storage.read_bytes(url))
    return data


# --------------------------------------------------------------------------------------------
# 4. the report


