"""``python -m jobs report``: one HTML page of what the demo did, readable from disk with no server.

Per video that got a soundtrack: the timeline of the original and of the generated version (key
frames, transitions, beats; green cuts have a beat within 0.1 s), their metrics side by side, and
a player for the muxed video (copied next to the page). A table of the means, a link to the
music-words report when one is given, and what the numbers mean. Timelines are drawn in
parallel Ray tasks; the page and its files are written atomically.
"""

from __future__ import annotations

import argparse
import html
import posixpath
import time
from typing import Any

from jobs import incremental, storage
from jobs.runtime import JobError, ray_results

DESCRIPTION = "write the demo's HTML report: timelines, original vs generated metrics, players, music-words link"
EXAMPLES = """examples:
  python -m jobs report --scores work/scores --generated work/generated --words work/words --output work/report
"""
METRICS = (("cut_beat_hit", "cuts with a beat within 0.1 s"), ("tbiou_tight", "cut/beat IoU at 0.1 s"),
           ("tbiou", "the paper's TBIoU (0.5 s)"), ("cut_beat_align", "mean exp(-d²/2σ²), σ = 50 ms"),
           ("bas", "Bailando beat-align score"), ("tempo_bpm", "tempo (BPM)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", required=True, help="output folder of the score job (the original videos)")
    parser.add_argument("--generated", required=True, help="output folder of the generate job")
    parser.add_argument("--words", default=None, help="output folder of the words job (its index.html is linked)")
    parser.add_argument("--output", required=True, help="report folder: index.html, timelines/, media/")
    parser.add_argument("--videos", type=int, default=12, help="videos shown (default: %(default)s)")


def check(args: argparse.Namespace) -> None:
    if args.videos < 1:
        raise JobError(f"--videos must be at least 1, got {args.videos}")
    try:
        for name in ("scores", "generated"):
            if not storage.exists(storage.join(getattr(args, name), name)):
                raise JobError(f"--{name} {storage.redact_url(getattr(args, name))}: no {name}/ folder (run that job first)")
        storage.check_writable(args.output)
    except storage.StorageError as e:
        raise JobError(str(e)) from e


def dry_run(args: argparse.Namespace) -> dict[str, Any]:
    table = incremental.read_latest(storage.join(args.generated, "generated"), columns=["id", "status"])
    ok = sorted(r["id"] for r in (table.to_pylist() if table is not None else []) if r["status"] == "ok")
    return {"would_show": ok[: args.videos], "outputs": {"report": storage.join(args.output, "index.html")}}


def _timeline(uri: str, title: str, target: str) -> str:
    from vem.explain import timeline_png  # noqa: PLC0415

    storage.write_bytes(target, timeline_png(storage.read_bytes(uri), title=title))
    return target


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if value > 2 else f"{value:.3f}"
    return str(value)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray  # noqa: PLC0415

    started = time.time()
    originals = {r["id"]: r for r in (incremental.read_latest(storage.join(args.scores, "scores")) or _empty()).to_pylist()}
    generated = [r for r in (incremental.read_latest(storage.join(args.generated, "generated")) or _empty()).to_pylist()]
    shown = sorted((r for r in generated if r["status"] == "ok"), key=lambda r: r["id"])[: args.videos]
    failed = [r for r in generated if r["status"] != "ok"]
    out = args.output
    timeline = ray.remote(num_cpus=1)(_timeline)
    refs, names = [], []
    for r in shown:
        name = r["video_uri"].rsplit("/", 1)[-1].removesuffix(".mp4")
        for kind, uri in (("generated", r["video_uri"]), ("original", r["source_uri"])):
            refs.append(timeline.remote(uri, f"{r['id']}: {kind}", storage.join(out, "timelines", f"{name}-{kind}.png")))
            names.append((name, kind))
    drawn = {names[i]: err for i, _, err in ray_results(refs, desc="timelines", unit="timeline")}
    for r in shown:  # the player's file sits next to the page
        name = r["video_uri"].rsplit("/", 1)[-1]
        storage.write_bytes(storage.join(out, "media", name), storage.read_bytes(r["video_uri"]))
    words_link = None
    if args.words and storage.exists(storage.join(args.words, "index.html")):
        words_link = _relative(storage.join(args.words, "index.html"), out)
    page = _page(shown, originals, failed, drawn, words_link)
    storage.write_bytes(storage.join(out, "index.html"), page.encode())
    return {"videos": len(shown), "failed_generations": len(failed), "seconds": round(time.time() - started, 2),
            "outputs": {"report": storage.join(out, "index.html")}}


def _empty() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.table({"id": pa.array([], pa.string())})


def _relative(target: str, start: str) -> str:
    """A link from the page in ``start`` to ``target`` (both local or both on one store)."""
    import os  # noqa: PLC0415

    if "://" in target or "://" in start:
        return target if target.split("://")[0] != start.split("://")[0] else posixpath.relpath(
            target.split("://", 1)[1], start.split("://", 1)[1])
    return os.path.relpath(os.path.abspath(target), os.path.abspath(start))


def _page(shown: list[dict[str, Any]], originals: dict[str, dict[str, Any]], failed: list[dict[str, Any]],
          drawn: dict[tuple[str, str], str | None], words_link: str | None) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>VeM demo report</title><style>",
             "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}",
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
             "th:first-child,td:first-child{text-align:left}img{max-width:100%}section{margin:2em 0}",
             "</style></head><body><h1>VeM demo report</h1>",
             f"<p>{len(shown)} videos with a generated soundtrack"
             f"{f'; {len(failed)} generations failed (listed at the end)' if failed else ''}.</p>"]
    parts.append("<h2>Means: original soundtrack vs generated</h2><table><tr><th>metric</th><th>original</th>"
                 "<th>generated</th><th>meaning</th></tr>")
    for key, meaning in METRICS:
        orig = [originals[r["id"]].get(key) for r in shown if r["id"] in originals]
        gen = [r.get(key) for r in shown]
        parts.append(f"<tr><td>{key}</td><td>{_fmt(_mean(orig))}</td><td>{_fmt(_mean(gen))}</td><td>{esc(meaning)}</td></tr>")
    parts.append("</table>")
    for r in shown:
        name = r["video_uri"].rsplit("/", 1)[-1].removesuffix(".mp4")
        o = originals.get(r["id"], {})
        parts.append(f"<section class='video' id='{esc(name)}'><h2>{esc(r['id'])}</h2>")
        parts.append(f"<video controls width='480' src='media/{esc(name)}.mp4'></video>")
        parts.append("<table><tr><th>metric</th><th>original</th><th>generated</th></tr>")
        for key, _ in METRICS:
            parts.append(f"<tr><td>{key}</td><td>{_fmt(o.get(key))}</td><td>{_fmt(r.get(key))}</td></tr>")
        parts.append("</table>")
        for kind in ("original", "generated"):
            err = drawn.get((name, kind), "not drawn")
            if err is None:
                parts.append(f"<p><img alt='{kind} timeline' src='timelines/{esc(name)}-{kind}.png'></p>")
            else:
                parts.append(f"<p>{kind} timeline not drawn: {esc(err)}</p>")
        parts.append("</section>")
    parts.append("<section id='words'><h2>Music-words</h2>")
    parts.append(f"<p><a href='{esc(words_link)}'>The music-words report</a>: per composer, the recurring patterns "
                 "found by EM under minimum code length.</p>" if words_link else "<p>No music-words run was given.</p>")
    parts.append("</section><section id='meaning'><h2>What these numbers mean</h2><ul>"
                 "<li><b>cut_beat_hit</b>: the share of the video's cuts with a musical beat within 0.1 s. "
                 "An editor who cuts on the beat gets close to 1; music unrelated to the picture gets the chance rate "
                 "(about 0.2 s of every beat period, 0.3-0.4 at 100-120 BPM).</li>"
                 "<li><b>tbiou_tight</b>: cuts and beats matched one to one within 0.1 s, over all cuts and beats; "
                 "it is also low when there are many more beats than cuts.</li>"
                 "<li><b>tbiou</b>: the same at the paper's 0.5 s, for comparison with published numbers. At ordinary "
                 "tempi every cut is within 0.5 s of some beat, so it cannot tell sync from chance.</li>"
                 "<li><b>cut_beat_align</b>, <b>bas</b>: continuous versions (a Gaussian of the distance).</li>"
                 "<li>Timelines: key frames over time; green cuts have a beat within 0.1 s, red ones do not; "
                 "grey ticks are beats.</li></ul></section>")
    if failed:
        parts.append("<section id='failed'><h2>Failed</h2><ul>")
        parts += [f"<li>{esc(str(r['id']))}: {esc(str(r['error']))}</li>" for r in failed]
        parts.append("</ul></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _mean(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else None
