"""``words`` step 3: learn one group's dictionary, in a pool actor or with its E-step sharded over actors.

See :mod:`jobs.words` for the job as a whole.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobs import storage
from jobs.words_parse import to_pieces


def discover_config(config: dict[str, Any]) -> Any:
    """The :class:`~musicwords.discover.DiscoverConfig` of a job config."""
    import dataclasses  # noqa: PLC0415

    from musicwords.discover import DiscoverConfig  # noqa: PLC0415
    from musicwords.em import EMConfig  # noqa: PLC0415

    em = EMConfig.debug() if config["preset"] == "debug" else EMConfig()
    em = dataclasses.replace(em, block_tokens=int(config["block_tokens"]))
    return DiscoverConfig(voices=config["voices"], max_voices=int(config["max_voices"]), em=em, extend=config["extend"],
                          null=config.get("null", "unigram"), top_patterns=int(config["max_patterns"]) or None,
                          motif_voices=None if config["motif_voices"] == "none" else config["motif_voices"],
                          motif_bars=config.get("motif_bars"))  # None (and a run before the option): as found


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
        piece_table,
        plot_history,
        plot_piece,
        statements,
        usage_table,
        word_midi,
        word_musicxml,
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
    motifs = dictionary_table(result, motifs=True)
    storage.write_table(storage.join(base, "motifs.parquet"), motifs)
    storage.write_table(storage.join(base, "words.parquet"), all_words)
    storage.write_table(storage.join(base, "occurrences.parquet"), occurrences_table(result))
    storage.write_table(storage.join(base, "pieces.parquet"), per_piece)
    storage.write_table(storage.join(base, "usage.parquet"), usage_table(result))
    # words/w<id>.*: the top words; words/m<id>.*: the top motifs (ids of the motif layer's dictionary)
    shown = [("w", "word", row) for row in words.to_pylist()[:top]] + [("m", "motif", row) for row in motifs.to_pylist()[:top]]
    for prefix, kind, row in shown:
        stem, label = f"{prefix}{row['word_id']}", f"{kind} {row['word_id']}"
        storage.write_bytes(storage.join(base, "words", f"{stem}.mid"), word_midi(row, label))
        storage.write_bytes(storage.join(base, "words", f"{stem}.musicxml"), word_musicxml(row, label))
    with tempfile.TemporaryDirectory() as tmp:
        plot_history(d.rounds, os.path.join(tmp, "history.png"), title=f"{name}: code length per round")
        storage.write_bytes(storage.join(base, "history.png"), read_file(os.path.join(tmp, "history.png")))
        piece = None
        if result.patterns:
            score = np.where(n_notes >= 8, cover_top, -1.0)
            i = int(np.argmax(score))
            plot_piece(result, os.path.join(tmp, "piece.png"), piece=i, top=top)
            storage.write_bytes(storage.join(base, "piece.png"), read_file(os.path.join(tmp, "piece.png")))
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
        "top_motif": {"word_id": int(result.motifs[0].word), "count": len(result.motifs[0].occurrences),
                      "statements": statements(result, result.motifs[0])} if result.motifs else None,
    }
    document = {**summary, "alphabet": d.alphabet.to_json(), "words": all_words.to_pylist()}
    storage.write_bytes(storage.join(base, "dictionary.json"), json.dumps(document, indent=1).encode())
    storage.write_bytes(storage.join(base, "summary.json"), json.dumps(summary, indent=1).encode())
    return summary


def _pa_floats(values: np.ndarray) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.array(np.asarray(values, dtype=float))


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class GroupLearner:
    """Ray actor of the group pool: learns one group per call (music21, numba warmed up once).

    ``yield_cpu``: while a sharded group runs beside the pool (see :func:`learn_groups`), run at
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

    def extend(self, key: int, source: int, new_words: list[tuple[int, ...]], first_id: int) -> None:
        self.local.extend(key, source, new_words, first_id)

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
    ``build`` from its words, or a ``restrict`` or ``extend`` of another lattice, made first if it was
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
        # key -> ("build", words, n_literals) | ("restrict", source, new_id) | ("extend", source, new_words, first_id)
        self._recipes: dict[int, tuple[Any, ...]] = {}
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
                                f"time(s), {self.max_restarts} replacement(s) allowed; last: {died(error)}") from error
            print(f"words: E-step shard {i + 1} of {len(self.actors)}: its actor died ({died(error)}); a new actor "
                  f"rebuilds its {len(self._live)} lattice(s)", file=sys.stderr)
            ray.kill(self.actors[i])
            actor = self.actors[i] = self._actor.remote(self._blocks[i])
            order = self._rebuild_order()  # (calls from one caller to an actor run in the order made)
            refs = [getattr(actor, self._recipes[key][0]).remote(key, *self._recipes[key][1:]) for key in order]
            refs += [actor.release.remote(key) for key in order if key not in self._live]
            try:
                ray.get(refs)
                return
            except ray.exceptions.RayActorError as e:  # the new one died too
                error = e

    def _rebuild_order(self) -> list[int]:
        """The live lattices and those they are made from, each after its source."""
        order: list[int] = []
        for key in sorted(self._live):
            chain: list[int] = []
            while key not in order and key not in chain:
                chain.append(key)
                recipe = self._recipes[key]
                if recipe[0] == "build":
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

    def extend(self, key: int, source: int, new_words: Sequence[tuple[int, ...]], first_id: int) -> None:
        import ray  # noqa: PLC0415

        self._recipes[key] = ("extend", source, ray.put(list(new_words)), first_id)
        self._live.add(key)
        self._all("extend", key, source, self._recipes[key][2], first_id, again=False)

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


def learn_groups(todo: list[tuple[str, str]], by_group: dict[str, list[dict[str, Any]]], folders: dict[str, str],
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

    from jobs.runtime import failure_reason  # noqa: PLC0415

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
                    print(f"words: {name}: the learning actor died ({died(e)}); learning the group again", file=sys.stderr)
                    queue.insert(0, (name, fingerprint))
                    summary = None
                else:
                    summary = group_error(name, folders[name], fingerprint, by_group[name],
                                           f"group {name!r}: the learning actor died {tries[name]} times; last: {died(e)}")
            except ray.exceptions.RayError as e:  # learn_group raised: the same input would raise again
                summary = group_error(name, folders[name], fingerprint, by_group[name], failure_reason(e))
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


# a group is sharded when it holds more than this many fair shares of the learning (see learn_groups):
# measured at e2b8c1f with 2 workers, the whole corpus (one fair share) took 63 s sharded beside the
# pool and 53 s in one pool actor; any factor between 1 and 1.5 splits 2 workers (1.0: pool) from 3
# (1.5: sharded) for the whole-corpus group, and 1.25 is the middle
SHARD_ABOVE_SHARE = 1.25


# Ray CPUs asked by an E-step shard while the small groups' pool runs beside it (see learn_groups)
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

    def estep(blocks: list[np.ndarray]) -> RayEStep:  # one per dictionary (the motif layer's is learnt after)
        for done in shards:  # a dictionary's learning is over when the next begins: free its actors' CPUs
            done.close()
        shards.append(RayEStep(blocks, workers, num_cpus=shard_cpus))
        return shards[-1]

    def progress(line: str) -> None:
        print(f"  {name}: {line}", file=sys.stderr)

    print(f"words: {name}: {tokens:,} tokens, E-step sharded over {workers} actors", file=sys.stderr)
    try:
        return learn_group(name, folders[name], by_group[name], config, args.output, fingerprint, estep=estep,
                           progress=progress)
    except Exception as e:  # one group's failure must not lose the others; say what happened
        return group_error(name, folders[name], fingerprint, by_group[name], f"{type(e).__name__}: {e}")
    finally:
        for s in shards:
            s.close()


def died(e: BaseException) -> str:
    """One short line on an actor's death (Ray's message goes on about causes for many lines)."""
    from jobs.runtime import failure_reason  # noqa: PLC0415

    return re.sub(r"\s*Worker exit detail:.*", "", failure_reason(e))[:300]


GROUP_TRIES = 2  # a group whose learning actor dies is learned once more on a new actor, then gets an error row


def group_error(name: str, folder: str, fingerprint: str, rows: list[dict[str, Any]], error: str) -> dict[str, Any]:
    return {"group": name, "folder": folder, "status": "error", "error": error, "fingerprint": fingerprint,
            "n_pieces": len(rows), "n_notes": int(sum(r["n_notes"] for r in rows)), "history": [], "rounds": []}
