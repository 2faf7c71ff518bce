"""The corpus report: one static HTML page that opens from the output folder, no server needed.

:func:`render_page` turns a plain dict (built by ``jobs/words.py`` from the per-group tables)
into HTML. Links and images are relative to the page, so the folder can be copied or synced
from S3 and opened with a browser. The small piano rolls of words are inline SVG (one per word,
drawn from the word's notes: time in beats across, pitch relative to the first note up); larger
pictures (a piece with its occurrences, code length per round) are PNGs beside the page.

Sections: an overview table (per group: pieces, notes, words, code length before and after,
compression ratio, share of the notes the top words cover), one ``<section class="group">``
per composer (top words with counts and MIDI links, its motifs, distinctive words, code length per round,
a piece view with the occurrences highlighted), the words shared across composers, and the
inputs that could not be read.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_page", "roll_svg"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:2px solid #4477aa}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f6fa}
.words{display:flex;flex-wrap:wrap;gap:10px}.word{border:1px solid #ccd;border-radius:4px;padding:6px;width:170px;font-size:12px}
.word svg{display:block;background:#fafafa;margin-bottom:4px}
.stmt{display:flex;align-items:center;gap:8px;margin:2px 0}.stmt svg{background:#fafafa;border:1px solid #eee}
.tok{font-family:monospace;font-size:11px;color:#555;word-break:break-all}
.notes{font-family:monospace;font-size:11px;color:#333}
.note{color:#666;font-size:12px}img.wide{max-width:100%;border:1px solid #ddd}.err{color:#a33}
"""


def roll_svg(onset: Sequence[float], interval: Sequence[int], duration: Sequence[float], *,
             width: int = 160, height: int = 64, colour: str = "#4477aa",
             frame: tuple[float, float, int, int] | None = None) -> str:
    """A small piano roll of one word as inline SVG.

    Parameters
    ----------
    onset : sequence of float
        Note onsets in beats, relative to the first note.
    interval : sequence of int
        Pitches in semitones relative to the first note.
    duration : sequence of float
        Durations in beats.
    frame : (first beat, last beat, lowest, highest interval), optional
        The time and pitch range drawn (by default the word's own), so that several rolls share
        one scale.
    """
    if not len(onset):
        return f'<svg width="{width}" height="{height}" role="img"></svg>'
    ends = [o + max(d, 1e-3) for o, d in zip(onset, duration, strict=True)]
    t0, t1, lo, hi = frame or (min(onset), max(ends), min(interval), max(interval))
    span_t = max(t1 - t0, 1e-3)
    rows = hi - lo + 1
    pad = 3
    sx = (width - 2 * pad) / span_t
    sy = (height - 2 * pad) / max(rows, 6)
    rects = []
    for o, p, d in zip(onset, interval, duration, strict=True):
        x = pad + (o - t0) * sx
        y = height - pad - (p - lo + 1) * sy
        w = max(max(d, 1e-3) * sx - 1, 1.5)
        rects.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(sy - 1, 1.5):.1f}" fill="{colour}"/>')
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<title>{len(onset)} notes over {span_t:g} beats, {rows - 1} semitones</title>{"".join(rects)}</svg>')


def statements_html(statements: Sequence[Mapping[str, Any]]) -> str:
    """A word's statements (:func:`musicwords.report.statements`) as rolls on one time and pitch
    scale, one row each, every one from its own first note, labelled with its kind, place and notes."""
    if not statements:
        return ""
    t0 = min(min(s["onset"]) for s in statements)
    t1 = max(o + max(d, 1e-3) for s in statements for o, d in zip(s["onset"], s["duration"], strict=True))
    lo = min(min(s["interval"]) for s in statements)
    hi = max(max(s["interval"]) for s in statements)
    rows = []
    for s in statements:
        where = f', bar {s["bar"]} beat {s["beat"]:g}' if s.get("bar") is not None else ""
        where += f' · {" ".join(s["spelling"])}' if s.get("spelling") else ""
        colour = "#4477aa" if s["kind"] == "exact" else "#cc6677"
        roll = roll_svg(s["onset"], s["interval"], s["duration"], width=240, height=48, colour=colour, frame=(t0, t1, lo, hi))
        rows.append(f'<div class="stmt" data-kind="{_e(s["kind"])}">{roll}'
                    f'<span class="note">{_e(s["kind"])}: {_e(s["piece_id"])}{_e(where)}</span></div>')
    return '<div class="statements">' + "".join(rows) + "</div>"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, fmt: str = ",.0f") -> str:
    if x is None:
        return "&ndash;"
    return format(x, fmt)


def _tokens(text: str, limit: int = 12) -> str:
    """The first ``limit`` tokens of a word's spelling (long words are whole sections)."""
    parts = text.split()
    return " ".join(parts[:limit]) + (f" … ({len(parts)} tokens)" if len(parts) > limit else "")


def _word_card(w: Mapping[str, Any], extra: str = "", kind: str = "word") -> str:
    link = f' &middot; <a href="{_e(w["midi"])}">MIDI</a>' if w.get("midi") else ""
    link += f' &middot; <a href="{_e(w["musicxml"])}">MusicXML</a>' if w.get("musicxml") else ""
    link = (f' ({_e(w["variants"])} varied)' if w.get("variants") else "") + link
    return (f'<div class="word" data-word="{_e(w["word_id"])}">{roll_svg(w["onset"], w["interval"], w["duration"])}'
            f'<b>{kind} {_e(w["word_id"])}</b>: {_e(w["n_notes"])} notes, {_e(w["count"])}&times;{link}{extra}'
            f'{_names(w.get("spelling"))}'
            f'<div class="tok" title="{_e(w["tokens"])}">{_e(_tokens(w["tokens"]))}</div></div>')


def _names(spelling: Sequence[str] | None, limit: int = 12) -> str:
    """The first statement's notes as the score spells them (rows written before: nothing)."""
    if not spelling:
        return ""
    more = f" … ({len(spelling)} notes)" if len(spelling) > limit else ""
    return f'<div class="notes">{_e(" ".join(spelling[:limit]) + more)}</div>'


def _group_section(g: Mapping[str, Any], statistic: str) -> str:
    out = [f'<section class="group" id="{_e(g["anchor"])}" data-group="{_e(g["name"])}">',
           f'<h2>{_e(g["name"])}</h2>']
    if g.get("error"):
        out.append(f'<p class="err">No dictionary: {_e(g["error"])}</p></section>')
        return "\n".join(out)
    out.append(
        f'<p>{g["n_pieces"]:,} pieces, {g["n_notes"]:,} notes, {g["n_tokens"]:,} tokens; '
        f'{g["n_words"]:,} words in the dictionary, {g["n_reported"]:,} reported. '
        f'Code length {_num(g["base_bits"])} bits as single notes &rarr; {_num(g["code_length_bits"])} bits with the '
        f'dictionary ({_num(g["dictionary_bits"])} for the dictionary itself): compression ratio '
        f'<b>{_num(g["compression_ratio"], ".2f")}</b>. The top {len(g["words"])} words cover '
        f'<b>{_num(100 * g["coverage_top"], ".1f")} %</b> of the notes; all reported words '
        f'{_num(100 * g["coverage_all"], ".1f")} %.</p>')
    out.append(f'<h3>Top words</h3><p class="note">Ranked by bits saved; counts are occurrences in {_e(g["name"])}.</p>')
    out.append('<div class="words">' + "".join(
        _word_card(w, f' &middot; {_num(w["bits_saved"])} bits saved') for w in g["words"]) + "</div>")
    if g.get("motifs"):
        out.append('<h3>Motifs</h3><p class="note">The motif layer: short words heard many times, best compression '
                   'ratio first (each chosen by the notes no motif before it holds), from a dictionary of scale steps '
                   '(a sequence states one motif); counts include varied statements.</p>')
        out.append('<div class="words motifs">' + "".join(_word_card(w, kind="motif") for w in g["motifs"]) + "</div>")
    top = g.get("top_motif")
    if top and top.get("statements"):
        out.append(f'<h4>Motif {_e(top["word_id"])}: {len(top["statements"])} of its {_e(top["count"])} statements, each '
                   'from its first note on one scale (blue: exact; red: varied, with its kind)</h4>')
        out.append(statements_html(top["statements"]))
    if g.get("distinctive") is not None:
        out.append(f'<h3>Distinctive words</h3><p class="note">Words of the corpus dictionary that {_e(g["name"])} uses '
                   f'more than the other groups: {_e(statistic)}. Rate: per 1,000 word occurrences.</p>')
        if g["distinctive"]:
            out.append('<div class="words">' + "".join(
                _word_card(w, f'<br>z = {w["z"]:.2f}; rate {w["rate"]:.1f} vs {w["rest_rate"]:.1f}') for w in g["distinctive"])
                + "</div>")
        else:
            out.append("<p>None above the threshold.</p>")
    if g.get("history_img"):
        out.append(f'<h3>Code length per round</h3><img class="wide" src="{_e(g["history_img"])}" '
                   f'alt="code length per EM round, {_e(g["name"])}">')
    piece = g.get("piece")
    if piece:
        midi = f' <a href="{_e(piece["midi"])}">MIDI, one track per word</a>.' if piece.get("midi") else ""
        out.append(f'<h3>A piece: {_e(piece["piece_id"])}</h3><p class="note">The piece where the top words cover the '
                   f'largest share of the notes ({_num(100 * piece["coverage"], ".0f")} %; compression ratio '
                   f'{_num(piece["compression_ratio"], ".2f")}); every note in grey, occurrences of the top words in colour '
                   f'with their boxes.{midi}</p>'
                   f'<img class="wide" src="{_e(piece["img"])}" alt="piano roll of {_e(piece["piece_id"])}">')
    out.append("</section>")
    return "\n".join(out)


def render_page(report: Mapping[str, Any]) -> str:
    """The HTML of the corpus report (see the module docstring for what ``report`` holds).

    ``report`` keys: ``title``, ``subtitle``, ``statistic`` (how distinctive words are chosen),
    ``groups`` (one dict per composer, in display order), ``corpus`` (the same for the whole
    corpus, or None), ``shared`` (word dicts with ``groups`` and ``min_rate``), ``overview_img``
    (or None) and ``errors`` (``id``, ``error`` of inputs that could not be read).
    """
    groups: list[Mapping[str, Any]] = list(report["groups"])
    corpus = report.get("corpus")
    rows = []
    for g in groups + ([corpus] if corpus else []):
        if g.get("error"):
            rows.append(f'<tr><td><a href="#{_e(g["anchor"])}">{_e(g["name"])}</a></td><td colspan="7" class="err">'
                        f'{_e(g["error"])}</td></tr>')
            continue
        rows.append(
            f'<tr><td><a href="#{_e(g["anchor"])}">{_e(g["name"])}</a></td><td>{g["n_pieces"]:,}</td><td>{g["n_notes"]:,}</td>'
            f'<td>{g["n_reported"]:,}</td><td>{_num(g["base_bits"])}</td><td>{_num(g["code_length_bits"])}</td>'
            f'<td>{_num(g["compression_ratio"], ".2f")}</td><td>{_num(100 * g["coverage_top"], ".1f")} %</td></tr>')
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_e(report['title'])}</title>",
        f"<style>{_CSS}</style></head><body>", f"<h1>{_e(report['title'])}</h1>",
        f'<p class="note">{_e(report.get("subtitle", ""))}</p>',
        "<h2>Overview</h2><table><tr><th>group</th><th>pieces</th><th>notes</th><th>words reported</th>"
        "<th>bits, single notes</th><th>bits, with words</th><th>compression</th><th>top words cover</th></tr>",
        *rows, "</table>",
    ]
    if report.get("overview_img"):
        parts.append(f'<img class="wide" src="{_e(report["overview_img"])}" alt="compression ratio per group">')
    parts += [_group_section(g, report.get("statistic", "")) for g in groups]
    shared = report.get("shared")
    if shared is not None:
        parts.append('<section class="shared" id="shared"><h2>Words shared across composers</h2>'
                     '<p class="note">Words of the corpus dictionary used by several groups, ranked by how many use '
                     'them, then by their smallest rate (per 1,000 word occurrences) among those groups.</p>')
        parts.append('<div class="words">' + "".join(
            _word_card(w, f'<br>{w["groups"]} groups; lowest rate {w["min_rate"]:.1f}') for w in shared) + "</div>")
        if not shared:
            parts.append("<p>No word is used by two groups or more.</p>")
        parts.append("</section>")
    if corpus:
        parts.append(_group_section(corpus, report.get("statistic", "")).replace('class="group"', 'class="corpus"', 1))
    errors = report.get("errors") or []
    parts.append(f'<h2 id="errors">Inputs not read ({len(errors)})</h2>')
    if errors:
        parts.append("<table><tr><th>input</th><th>reason</th></tr>" + "".join(
            f'<tr><td>{_e(r["id"])}</td><td class="err" style="text-align:left">{_e(r["error"])}</td></tr>' for r in errors)
            + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
