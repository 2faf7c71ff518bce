"""``words`` step 4: the per-group MLflow runs, ``groups.parquet`` and the HTML report.

See :mod:`jobs.words` for the job as a whole.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from jobs import storage
from jobs.words_learn import read_file
from jobs.words_parse import CORPUS


def log_group(summary: dict[str, Any], output: str) -> None:
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


def write_groups_table(url: str, summaries: list[dict[str, Any]]) -> None:
    import pyarrow as pa  # noqa: PLC0415

    fields = [("group", pa.string()), ("folder", pa.string()), ("status", pa.string()), ("error", pa.string()),
              ("n_pieces", pa.int64()), ("n_notes", pa.int64()), ("n_tokens", pa.int64()), ("n_words", pa.int64()),
              ("n_reported", pa.int64()), ("base_bits", pa.float64()), ("code_length_bits", pa.float64()),
              ("dictionary_bits", pa.float64()), ("data_bits", pa.float64()), ("compression_ratio", pa.float64()),
              ("coverage_top", pa.float64()), ("coverage_all", pa.float64()), ("sharded", pa.bool_()), ("seconds", pa.float64())]
    rows = [{k: s.get(k) for k, _ in fields} for s in summaries]
    storage.write_table(url, pa.Table.from_pylist(rows, schema=pa.schema(fields)))


STATISTIC = ("weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) of the group "
             "against all other groups, the prior being each word's count in the whole corpus; "
             "shown: words whose one-sided p-value survives Benjamini-Hochberg at a 5 % false discovery rate over "
             "the words the group uses, and used in 2 pieces of the group or more; highest z first")


def write_report(args: argparse.Namespace, names: list[str], folders: dict[str, str], summaries: dict[str, dict[str, Any]],
                 rows: list[dict[str, Any]]) -> str:
    """``<output>/index.html``: a card per group and the composers compared; returns its URL."""
    from jobs.words import job_config  # noqa: PLC0415
    from musicwords.compare import distinctive_words, is_distinctive, shared_words  # noqa: PLC0415
    from musicwords.page import render_page  # noqa: PLC0415
    from musicwords.report import word_midi, word_musicxml  # noqa: PLC0415

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
                words.append({**r, "midi": f"{base}/words/w{w}.mid", "musicxml": f"{base}/words/w{w}.musicxml"})
            motifs_url = storage.join(out, base, "motifs.parquet")
            motifs = storage.read_table(motifs_url).to_pylist()[:top] if storage.exists(motifs_url) else []
            card["motifs"] = [{**m, "midi": f"{base}/words/m{m['word_id']}.mid",
                               "musicxml": f"{base}/words/m{m['word_id']}.musicxml"} for m in motifs]
            piece = dict(s["piece"]) if s.get("piece") else None
            if piece:
                piece.update(img=f"{base}/{piece['img']}", midi=f"{base}/{piece['midi']}")
            card.update({k: s[k] for k in ("n_tokens", "n_words", "n_reported", "base_bits", "code_length_bits",
                                           "dictionary_bits", "compression_ratio", "coverage_top", "coverage_all")})
            card.update(words=words, piece=piece, history_img=f"{base}/history.png", top_motif=s.get("top_motif"))
        cards[name] = card

    shared = None
    corpus = summaries.get(CORPUS)
    if corpus is not None and corpus["status"] == "ok" and len(names) > 1:  # (--group-by none: the corpus alone)
        base = f"groups/{folders[CORPUS]}"
        vocabulary = {r["word_id"]: r for r in storage.read_table(storage.join(out, base, "words.parquet")).to_pylist()}
        group_of = {r["id"]: r["group"] for r in rows}
        counts: dict[str, dict[int, int]] = {n: {} for n in names if n != CORPUS}
        pieces: dict[str, dict[int, int]] = {n: {} for n in counts}  # pieces of the group using the word
        for u in storage.read_table(storage.join(out, base, "usage.parquet")).to_pylist():
            group = group_of[u["piece_id"]]
            counts[group][u["word_id"]] = counts[group].get(u["word_id"], 0) + u["count"]
            pieces[group][u["word_id"]] = pieces[group].get(u["word_id"], 0) + 1

        def card_of(w: int, **extra: Any) -> dict[str, Any]:
            r = vocabulary[w]
            midi, xml = f"{base}/words/w{w}.mid", f"{base}/words/w{w}.musicxml"
            if r["onset"] and not storage.exists(storage.join(out, midi)):
                storage.write_bytes(storage.join(out, midi), word_midi(r, f"word {w}"))
            if r["onset"] and not storage.exists(storage.join(out, xml)):
                storage.write_bytes(storage.join(out, xml), word_musicxml(r, f"word {w}"))
            return {**r, **extra, "midi": midi if r["onset"] else None, "musicxml": xml if r["onset"] else None}

        for name in counts:
            found = [x for x in distinctive_words(counts, name, pieces=pieces) if is_distinctive(x)][:8]
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
        storage.write_bytes(storage.join(out, "report", "overview.png"), read_file(path))
    return "report/overview.png"
