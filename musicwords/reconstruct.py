"""Stage 2: reconstructing every stream as a sequence of words, and the patterns this reveals.

- :func:`find_occurrences`: the Viterbi segmentation of every stream under the dictionary;
  each use of a multi-token word becomes an :class:`Occurrence`, mapped back to its notes, time
  span (beats) and pitch range; so do the words it is made of (its spelling in shorter words),
  recursively: a theme's occurrence is also an occurrence of its motifs.
- :func:`rank_words`: words ranked by the bits they save: ``count * (bits of their notes under
  the base token model - bits as one word) - bits of their dictionary entry``.
- :func:`patterns`: a word with all its occurrences, as point sets ``(onset, pitch)``: the
  word's translations in time and pitch. With ``extend="repeating"`` an occurrence also takes
  the notes of other streams that sound during it *and* recur, with the same translation, in
  at least ``min_share`` of the word's other occurrences (the accompaniment that repeats with a
  theme), which is how a melodic word becomes a polyphonic pattern. With ``extend="maximal"``
  (the default of :class:`~musicwords.discover.DiscoverConfig`) it also grows in time while the
  notes at the next onset before or after it recur the same way: the maximal translatable
  pattern around the word, as in SIA (Meredith, Lemström and Wiggins 2002), so a word that is
  only one part of a varied phrase reports the part all the phrase's statements share.
- :func:`motifs`: the motif layer, chosen by another criterion: the words whose occurrences
  describe the most notes for the least description (COSIATEC's compression ratio), counted
  over the notes no motif chosen before holds. Where :func:`patterns` reports what saves the
  most bits (themes and repeated sections), this reports the short units that recur many times.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from musicwords.em import Dictionary
from musicwords.idiom import IdiomModel
from musicwords.lattice import build_lattice, viterbi
from musicwords.notes import Notes
from musicwords.tokens import TokenStreams
from musicwords.variants import VariantFinder
from musicwords.voices import Streams

__all__ = ["LEVELS", "Occurrence", "Pattern", "check_significance", "fill_bars", "find_occurrences", "level_of", "motifs",
           "patterns", "rank_words", "word_parts"]

LEVELS = ("motif", "phrase", "section")


@dataclass(frozen=True)
class Occurrence:
    piece: int  # index into TokenStreams.piece_ids
    word: int
    stream: int
    notes: np.ndarray  # note indices into the piece's Notes, in onset order
    start: float  # beats: onset of the first note
    end: float  # beats: latest note end
    pitch_lo: int
    pitch_hi: int
    token: int = -1  # index of its first token in the TokenStreams (-1: not known)
    depth: int = 0  # 0: a word of the stream's segmentation; k: a part of a part ... (k levels) of one


@dataclass(frozen=True)
class Pattern:
    """A word and its occurrences as note sets (indices into each piece's Notes)."""

    word: int
    bits_saved: float
    occurrences: tuple[tuple[int, np.ndarray], ...]  # (piece, note indices)
    level: str = "motif"  # see level_of
    parts: tuple[int, ...] = ()  # the multi-token words it is spelled in (word_parts)
    variants: tuple[str, ...] = ()  # kinds of the last len(variants) occurrences: varied statements (musicwords.variants)


def word_parts(d: Dictionary, w: int) -> tuple[int, ...]:
    """The multi-token words of ``w``'s spelling in shorter words, in order (literals left out)."""
    return tuple(part for _, part in d.spelling(w) if part >= d.n_literals)


def level_of(d: Dictionary, w: int, memo: dict[int, int] | None = None) -> str:
    """``"motif"``, ``"phrase"`` or ``"section"``: the height of ``w`` in the dictionary's grammar.

    A word spelled in literals only is a motif; a word with a motif among its parts is a phrase;
    a word with a phrase (or section) among its parts is a section. So the level comes from how
    the dictionary spells words in words, not from a length cut-off: a long run of notes that
    recurs only as a whole is a motif of the dictionary, and a four-note word made of two
    two-note words is a phrase.

    Examples
    --------
    >>> import numpy as np
    >>> from musicwords.em import Dictionary
    >>> from musicwords.tokens import Alphabet
    >>> words = [(0,), (1,), (0, 1), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1, 0, 1)]
    >>> d = Dictionary(Alphabet(), words, np.log(np.full(5, 0.2)), np.ones(5), 2, np.ones(2), 100)
    >>> [level_of(d, w) for w in (2, 3, 4)]
    ['motif', 'phrase', 'section']
    """
    memo = {} if memo is None else memo
    return LEVELS[min(_height(d, w, memo), len(LEVELS)) - 1]


def _height(d: Dictionary, w: int, memo: dict[int, int]) -> int:
    if w not in memo:
        memo[w] = 1 + max((_height(d, part, memo) for part in word_parts(d, w)), default=0)
    return memo[w]


def find_occurrences(d: Dictionary, streams: TokenStreams, pieces: list[Notes]) -> list[Occurrence]:
    """Occurrences of multi-token words in the best segmentation of every stream (each word of the
    path, then the words it is spelled in, depth first)."""
    lattice = build_lattice(streams.tokens, d.words, d.n_literals)
    path, _ = viterbi(lattice, d.logp)
    spellings: dict[int, list[tuple[int, int]]] = {}
    words: list[int] = []
    starts: list[int] = []
    depths: list[int] = []
    for k in path.tolist():
        w = int(lattice.word[k])
        if w < d.n_literals:
            continue
        todo = [(w, int(lattice.start[k]), 0)]
        while todo:  # depth first, parts in order: a word made of words has its parts occur here too
            w, s, depth = todo.pop()
            words.append(w)
            starts.append(s)
            depths.append(depth)
            if w not in spellings:
                spellings[w] = [(o, part) for o, part in d.spelling(w) if part >= d.n_literals]
            todo.extend((part, s + o, depth + 1) for o, part in reversed(spellings[w]))
    if not words:
        return []
    # every occurrence's notes: the note its first token leaves, then the note each token arrives at
    s_arr = np.array(starts, dtype=np.int64)
    n = np.fromiter((len(d.words[w]) for w in words), dtype=np.int64, count=len(words)) + 1
    first = np.cumsum(n) - n
    j = np.arange(int(n.sum())) - np.repeat(first, n)
    s_rep = np.repeat(s_arr, n)
    idx = np.where(j == 0, streams.prev_note[s_rep], streams.note[np.maximum(s_rep + j - 1, 0)]).astype(np.int64)
    piece = streams.piece[s_arr].astype(np.int64)
    offset = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    flat = offset[np.repeat(piece, n)] + idx  # into the pieces' notes laid end to end
    onset = np.concatenate([p.onset for p in pieces])[flat]
    pitch = np.concatenate([p.pitch for p in pieces])[flat]
    end = onset + np.concatenate([p.duration for p in pieces])[flat]
    lo_t, hi_t = np.minimum.reduceat(onset, first), np.maximum.reduceat(end, first)
    lo_p, hi_p = np.minimum.reduceat(pitch, first), np.maximum.reduceat(pitch, first)
    stream = streams.stream[s_arr]
    return [
        Occurrence(piece=p, word=w, stream=st, notes=notes, start=a, end=b, pitch_lo=c, pitch_hi=e, token=t, depth=k)
        for p, w, st, notes, a, b, c, e, t, k in zip(
            piece.tolist(), words, stream.tolist(), np.split(idx, first[1:]), lo_t.tolist(), hi_t.tolist(),
            lo_p.tolist(), hi_p.tolist(), starts, depths, strict=True)
    ]


def rank_words(d: Dictionary, occurrences: list[Occurrence], null: IdiomModel | None = None) -> list[tuple[int, float, int]]:
    """``(word, bits_saved, count)`` for every used word, most saving first.

    ``count`` is every occurrence, nested ones included (a motif inside three statements of a
    theme is heard three times). The saving counts each use once: a word saves
    ``(base - bits)`` per use, where its uses are its occurrences in the segmentation of the
    streams (depth 0) plus its uses in the spellings of the other used words, once per word
    spelled (in the dictionary), not once per occurrence of that word: the notes of a nested
    occurrence are already paid for by the word that holds them, so counting them again would
    count the same bits twice (the motif saves them once, where the dictionary spells the theme).
    ``base`` is the bits of the word's tokens under a null model: by default the base (unigram)
    token model of the dictionary; with ``null`` (:class:`~musicwords.idiom.IdiomModel` of the
    same token streams), the mean over its occurrences of their tokens in context, under the
    Markov model of the rest of the music.
    """
    starts: dict[int, list[int]] = {}
    top: dict[int, int] = {}
    for occ in occurrences:
        starts.setdefault(occ.word, []).append(occ.token)
        top[occ.word] = top.get(occ.word, 0) + (occ.depth == 0)
    refs: dict[int, int] = {}
    for w in starts:
        for part in word_parts(d, w):
            refs[part] = refs.get(part, 0) + 1
    ranked = []
    costs = d.word_costs()
    for w, at in starts.items():
        if null is None:
            base = float(d.base_bits[list(d.words[w])].sum())
        elif min(at) < 0:
            raise ValueError("a null model needs occurrences with their token index (from find_occurrences)")
        else:
            base = null.word_bits(at, len(d.words[w])) / len(at)
        uses = top.get(w, 0) + refs.get(w, 0)
        saved = uses * (base + d.logp[w] / np.log(2.0)) - costs[w]
        ranked.append((w, float(saved), len(at)))
    ranked.sort(key=lambda r: (-r[1], r[0]))
    return ranked


def patterns(
    d: Dictionary,
    occurrences: list[Occurrence],
    pieces: list[Notes],
    *,
    top: int | None = None,
    min_notes: int = 4,
    extend: str = "repeating",
    min_share: float = 0.5,
    max_overlap: float = 0.8,
    coverage: float = 1.0,
    select: str = "coverage",
    significance: float | None = None,
    null: IdiomModel | None = None,
    variants: VariantFinder | None = None,
) -> list[Pattern]:
    """The top words as patterns (see the module docstring), most saving first.

    Parameters
    ----------
    top : int, optional
        At most this many patterns; all by default.
    min_notes : int
        Shortest word (notes) reported: shorter ones are cells rather than patterns.
    extend : {"repeating", "maximal", "none"}
        Whether occurrences take the recurring notes of other streams (see above);
        ``"maximal"`` also grows each occurrence in time, onset by onset before and after it,
        while some note at the next onset recurs under the same translation in the other
        occurrences (``min_share`` of them): the maximal translatable pattern around the word
        (as in SIA), so a word that is one part of a varied phrase reports the part of the
        phrase that all its statements share.
    min_share : float
        For ``"repeating"``: share of the other occurrences a note must recur in.
    select : {"new_bits", "coverage"}
        Which of the words that save bits are reported, most saving first:

        - ``"new_bits"``, a conditional code length: a word is reported when the
          notes of its occurrences that no more-saving reported pattern already holds save more
          bits than its own dictionary entry costs. Each occurrence saves ``base - bits`` (its
          tokens under the base model minus one use of the word), counted in proportion to
          the share of its notes that are new. So a repeated section does not hide the motifs
          that also recur outside it, and a part of a section that recurs only inside the
          section's occurrences (already explained by it) is not reported again.
        - ``"coverage"`` (default): report until the patterns make ``coverage`` of the bits saved by
          all, leaving out a pattern whose notes lie, to ``max_overlap`` or more, inside the
          notes of the patterns reported before it (more saving ones): a motif the sections
          already hold, even when no one section holds all its occurrences.
    max_overlap : float
        For ``"coverage"``: see above.
    coverage : float
        For ``"coverage"``: share of the bits saved (1.0: every pattern that saves bits).
    significance : float, optional
        Report only words that save more than ``log2(n_words / significance)`` bits, where
        ``n_words`` counts the multi-token words of the dictionary. By the no-hypercompression
        inequality, a code chosen in advance beats the base token model by ``k`` bits or more with
        probability at most ``2**-k`` when the notes come from the base model; choosing the best of
        ``n_words`` words costs ``log2(n_words)`` more (a union bound). So, with ``significance``
        0.05, the chance that any reported word is a chance recurrence in music without patterns
        is at most 5 %. ``None``: every word that saves bits.
    variants : VariantFinder, optional
        A finder over the token streams the occurrences come from (``VariantFinder.of``). When
        given, every reported pattern also takes the varied statements of its word (another
        rhythm, a few other notes, a note more or fewer: :mod:`musicwords.variants`) whose notes
        are in none of its occurrences, after its exact ones, with their kinds in
        ``Pattern.variants``. They add occurrences only: which words are reported is chosen on
        the exact occurrences alone.
    null : IdiomModel, optional
        The null model the savings are counted against (see :func:`rank_words`);
        :func:`~musicwords.discover.discover` passes the order-k Markov model of
        :mod:`musicwords.idiom`, so the bound above is against music that is only idiom (scale
        runs, repeated notes, figuration), not against notes drawn one by one.
    """
    if extend not in ("repeating", "maximal", "none"):
        raise ValueError(f"extend must be 'repeating', 'maximal' or 'none', got {extend!r}")
    if select not in ("new_bits", "coverage"):
        raise ValueError(f"select must be 'new_bits' or 'coverage', got {select!r}")
    by_word: dict[int, list[Occurrence]] = {}
    for occ in occurrences:
        by_word.setdefault(occ.word, []).append(occ)
    out = []
    check_significance(significance)
    n_words = len(d.words) - d.n_literals
    min_saved = 0.0 if significance is None else math.log2(max(n_words, 1) / significance)
    ranked = [r for r in rank_words(d, occurrences, null)
              if len(d.words[r[0]]) + 1 >= min_notes and r[2] >= 2 and r[1] > min_saved]
    total = sum(r[1] for r in ranked)
    reported = 0.0
    costs = d.word_costs()
    heights: dict[int, int] = {}
    held: set[tuple[int, int]] = set()  # notes of the patterns reported so far
    for w, saved, count in ranked:
        if select == "coverage" and reported >= coverage * total - 1e-9:
            break
        reported += saved
        occs = sorted(by_word[w], key=lambda o: (o.piece, o.start))
        sets = [(o.piece, o.notes) for o in occs]
        if extend != "none":
            sets = _extend(occs, pieces, min_share, grow=extend == "maximal")
        covered = {(pc, int(i)) for pc, idx in sets for i in idx}
        if select == "new_bits":
            per_use = (saved + costs[w]) / count  # bits one occurrence saves
            new = sum(sum((pc, int(i)) not in held for i in idx) / len(idx) for pc, idx in sets)
            if new * per_use <= costs[w]:
                continue  # what it would add is already explained by patterns that save more
        elif len(covered & held) >= max_overlap * len(covered):
            continue  # (nearly) all of it is inside patterns that save more: its bits count as reported
        held |= covered
        varied = [] if variants is None else _variant_sets(d, w, variants, sets)
        sets += [(pc, idx) for pc, idx, _ in varied]
        out.append(Pattern(word=w, bits_saved=saved, occurrences=tuple(sets), level=level_of(d, w, heights),
                           parts=word_parts(d, w), variants=tuple(k for _, _, k in varied)))
        if top is not None and len(out) >= top:
            break
    return out


def fill_bars(found: list[Pattern], pieces: list[Notes], streams: list[Streams], bars: float = 1.0) -> list[Pattern]:
    """The motifs ``found`` with each statement filled out to ``bars`` measures where a motif is shorter.

    A motif's word is where its statements agree; where it ends, a listener's unit often does
    not: a motif is commonly a bar or two of its metre, with the notes that close its figure.
    So a motif whose statements span (first onset to last end, their median) less than ``bars``
    measures of the metre they start in (:meth:`~musicwords.notes.Notes.bar_length`) has each
    statement go on along its stream (``streams``: the voices the motif layer read, one per
    piece) with every following note that ends within ``bars`` measures of the statement's
    start, up to the motif's next statement. A piece without measures (a note CSV) and a
    statement across streams are left as they are.

    Examples
    --------
    >>> from musicwords.voices import separate_voices
    >>> n = Notes.from_arrays("x", onset=[0, 1, 2, 3, 4], pitch=[60, 62, 64, 65, 67], duration=[1] * 5, bars=[0, 4])
    >>> short = Pattern(word=9, bits_saved=1.0, occurrences=((0, np.array([0, 1])),))
    >>> fill_bars([short], [n], [separate_voices(n, method="skyline")])[0].occurrences[0][1].tolist()  # to the bar's end
    [0, 1, 2, 3]
    """
    lines: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # piece -> each note's stream (-1: none) and place in it

    def line_of(piece: int) -> tuple[np.ndarray, np.ndarray]:
        if piece not in lines:
            stream, place = np.full(len(pieces[piece]), -1), np.zeros(len(pieces[piece]), dtype=np.int64)
            for k, s in enumerate(streams[piece].streams):
                stream[s], place[s] = k, np.arange(len(s))
            lines[piece] = stream, place
        return lines[piece]

    out = []
    for pattern in found:
        places = []
        for piece, idx in pattern.occurrences:
            notes = pieces[piece]
            start = float(notes.onset[idx].min())
            length = notes.bar_length(start)
            span = math.inf if length is None else float((notes.onset[idx] + notes.duration[idx]).max() - start) / length
            places.append((start, length, span))
        if not places or float(np.median([span for *_, span in places])) >= bars:
            out.append(pattern)
            continue
        taken: dict[int, set[int]] = {}
        for piece, idx in pattern.occurrences:
            taken.setdefault(piece, set()).update(idx.tolist())
        filled = []
        for (piece, idx), (start, length, _) in zip(pattern.occurrences, places, strict=True):
            notes = pieces[piece]
            stream, place = line_of(piece)
            if length is None or len(set(stream[idx].tolist())) != 1 or stream[idx[0]] < 0:
                filled.append((piece, idx))
                continue
            line = streams[piece].streams[int(stream[idx[0]])]
            last = int(place[idx].max())
            cut = int(np.searchsorted(notes.onset[line], start + bars * length + 1e-9, side="right"))  # a line's onsets rise
            after = line[last + 1:max(cut, last + 1)]
            within = [bool(notes.onset[i] + notes.duration[i] <= start + bars * length + 1e-9) and int(i) not in taken[piece]
                      for i in after]
            filled.append((piece, np.concatenate([idx, after[np.cumprod(within).astype(bool)] if within else after[:0]])))
        out.append(dataclasses.replace(pattern, occurrences=tuple(filled)))
    return out


def motifs(
    d: Dictionary,
    occurrences: list[Occurrence],
    *,
    min_notes: int = 4,
    max_notes: int | None = None,
    min_ratio: float = 2.0,
    significance: float | None = None,
    null: IdiomModel | None = None,
    variants: VariantFinder | None = None,
    texture: bool = True,
    idiom: IdiomModel | None = None,
    melody: list[np.ndarray] | None = None,
    held: set[tuple[int, int]] | None = None,
) -> list[Pattern]:
    """The motif layer: words chosen by compression ratio over the notes no motif holds yet.

    A word with ``k`` occurrences of ``L`` notes describes ``k * L`` notes with ``L + k`` numbers
    (its notes once, then where each occurrence starts): its compression ratio
    ``k * L / (L + k)``, the criterion of COSIATEC (Meredith 2013). A section heard twice has a
    ratio under 2 however long it is; a four-note cell heard twenty times has 3.3. So, greedily,
    the word with the best ratio over the notes no motif holds yet is taken (its occurrences that
    share no note with each other or with an earlier motif, in time order), until the best ratio
    is under ``min_ratio`` (2.0: the motif's description at most halves what it describes).
    The motif then also reports its word's other statements, those that share a note with an
    earlier motif (and none with its own statements): motifs overlap in music (a motif's last
    notes begin another's), and its statements are where its word is heard; they take no note
    from the motifs chosen after it, whose ratio counts only notes no motif holds.

    The candidates are the dictionary's words as :func:`find_occurrences` finds them (the words
    of the segmentation and the words they are spelled in), with ``min_notes`` to ``max_notes``
    notes (a motif is short: a longer word that recurs is a phrase or a section),
    that recur and pass the same significance bound as :func:`patterns` (against ``null``):
    music without repeats has no motifs either. With ``idiom`` (an
    :class:`~musicwords.idiom.IdiomModel` of the same streams), a word must also be heard more
    often than the idiom predicts (:func:`heard_more_than_idiom`, Bonferroni over the words
    tested): candidates proposed by frequency alone (:mod:`musicwords.merges`) include the
    commonest turns of phrase. With ``texture``, figuration (:func:`in_place`: repeated notes,
    trills, tremolos, Alberti basses, a pedal alternating with a moving line) is no motif.
    With ``melody`` (per piece, whether each note is heard as melody:
    :func:`musicwords.voices.in_melody`), a motif is heard as melody at least once: one of its
    statements has half its notes or more there. Motifs are thematic; a figure only ever heard
    under the melody of a keyboard texture is accompaniment. With ``variants``, each motif also
    takes its varied statements among the notes no motif holds (see :func:`patterns`). ``held``
    (``(piece, note index)`` pairs) are the notes that motifs chosen before, among another
    dictionary's candidates, hold: they are taken from the start, and the notes this call's motifs
    take are added to it.
    """
    import heapq  # noqa: PLC0415

    check_significance(significance)
    n_words = len(d.words) - d.n_literals
    min_saved = 0.0 if significance is None else math.log2(max(n_words, 1) / significance)
    longest = max_notes if max_notes is not None else math.inf
    saved = {w: s for w, s, count in rank_words(d, occurrences, null)
             if min_notes <= len(d.words[w]) + 1 <= longest and count >= 2 and s > min_saved
             and not (texture and in_place(d, w))}
    if melody is not None:
        heard = {occ.word for occ in occurrences if occ.word in saved and melody[occ.piece][occ.notes].mean() >= 0.5}
        saved = {w: s for w, s in saved.items() if w in heard}
    if idiom is not None and significance is not None:
        starts: dict[int, set[int]] = {}
        for occ in occurrences:
            if occ.word in saved:
                starts.setdefault(occ.word, set()).add(occ.token)
        tested = len(saved)
        saved = {w: s for w, s in saved.items()
                 if heard_more_than_idiom(idiom, sorted(starts[w]), len(d.words[w]), d.n_tokens, significance / tested)}
    by_word: dict[int, list[Occurrence]] = {}
    for occ in occurrences:
        if occ.word in saved:
            by_word.setdefault(occ.word, []).append(occ)
    taken: set[tuple[int, int]] = held if held is not None else set()

    def free(w: int) -> list[tuple[int, np.ndarray]]:
        kept: list[tuple[int, np.ndarray]] = []
        used: set[tuple[int, int]] = set()
        for o in sorted(by_word[w], key=lambda o: (o.piece, o.start)):
            notes = {(o.piece, int(i)) for i in o.notes}
            if notes.isdisjoint(taken) and notes.isdisjoint(used):
                kept.append((o.piece, o.notes))
                used |= notes
        return kept

    def ratio(sets: list[tuple[int, np.ndarray]]) -> float:
        k, n = len(sets), sum(len(idx) for _, idx in sets)
        return n / (n / k + k) if k >= 2 else 0.0

    # lazy greedy: a word's ratio falls as notes are taken, so a popped word whose ratio,
    # recomputed, still beats the next one in the heap is the best. (It can rise when a motif takes
    # an occurrence that overlapped two others of the word, which are then both free: such a word
    # is only taken later than the exact greedy order would take it.)
    heap = [(-ratio(free(w)), w) for w in sorted(by_word)]
    heapq.heapify(heap)
    heights: dict[int, int] = {}
    out = []
    while heap:
        _, w = heapq.heappop(heap)
        sets = free(w)
        r = ratio(sets)
        if r < min_ratio:
            continue
        if heap and r < -heap[0][0]:
            heapq.heappush(heap, (-r, w))
            continue
        own = {(pc, int(i)) for pc, idx in sets for i in idx}
        taken |= own
        stated = ([(o.piece, o.notes) for o in sorted(by_word[w], key=lambda o: (o.piece, o.start))] if variants is None
                  else variants.exact(d.words[w]))
        for piece, idx in stated:  # its statements that share notes with earlier motifs (none with its own)
            notes = {(piece, int(i)) for i in idx}
            if notes.isdisjoint(own):
                sets.append((piece, idx))
                own |= notes
        sets.sort(key=lambda s: (s[0], int(s[1][0])))
        varied = [] if variants is None else _variant_sets(d, w, variants, sets, taken)
        taken |= {(pc, int(i)) for pc, idx, _ in varied for i in idx}
        sets += [(pc, idx) for pc, idx, _ in varied]  # the varied statements last (Pattern.variants)
        out.append(Pattern(word=w, bits_saved=saved[w], occurrences=tuple(sets), level=level_of(d, w, heights),
                           parts=word_parts(d, w), variants=tuple(k for _, _, k in varied)))
    return out


def heard_more_than_idiom(idiom: IdiomModel, starts: list[int], length: int, n_tokens: int, alpha: float) -> bool:
    """Whether ``len(starts)`` statements of a passage of ``length`` tokens are more than the idiom
    of the music predicts, at level ``alpha``.

    The idiom model of the music without these statements gives each its probability in its
    context; their mean, times the ``n_tokens`` places a statement could start, is the count
    expected by chance, and the count heard is tested against a Poisson law of that mean (one
    sided). A turn of phrase the music makes anyway is expected often; a motif is heard far more
    often than its steps, taken one by one, would have it.

    Examples
    --------
    >>> import numpy as np
    >>> from musicwords.idiom import IdiomModel
    >>> steps = np.random.default_rng(0).integers(0, 3, 2000)  # three steps, at random
    >>> idiom = IdiomModel(steps, 3)
    >>> common = [i for i in range(len(steps) - 3) if list(steps[i:i + 3]) == [0, 1, 2]][::2]
    >>> heard_more_than_idiom(idiom, common, 3, len(steps), 0.01)  # as often as chance has it
    False
    """
    from scipy.stats import poisson  # noqa: PLC0415

    bits = idiom.word_bits(starts, length) / len(starts)
    expected = n_tokens * 2.0 ** -bits
    return bool(poisson.sf(len(starts) - 1, expected) < alpha)


def in_place(d: Dictionary, w: int) -> bool:
    """Whether word ``w`` is figuration: a cell stated in place, or two lines in alternation.

    A cell stated in place: the word's tokens, give or take one at either end, repeat with a
    period ``p`` (``t[i] == t[i + p]``) over at least four notes and two cells (``2p`` notes),
    and one period's pitch steps sum to zero: repeated notes, a trill or tremolo, an Alberti or
    drum bass. Two lines in alternation: every step, give or take one at either end, leaps (a
    third or more), over at least five notes, and one of the two lines (every other note) holds
    within a step or each note is within a step of the note two before: a pedal note alternating
    with a moving line, broken octaves, a murky bass. That is the texture a passage is played
    in, and no motif: the word's boundaries are wherever a window of the run was cut.
    A run that goes somewhere (a scale, a rising arpeggio) is not figuration, nor are three
    repeated notes and another (a cell stated twice over only three notes).

    Examples
    --------
    >>> from musicwords.tokens import Alphabet, TokenConfig
    >>> a = Alphabet(symbols=[(0, 3), (-3, 3), (3, 3), (2, 3), (-4, 6)])
    >>> def word(*tokens, alphabet=a):
    ...     n = len(alphabet.symbols)
    ...     return Dictionary(alphabet=alphabet, words=[(t,) for t in range(n)] + [tokens], logp=np.zeros(n + 1),
    ...                       counts=np.zeros(n + 1), n_literals=n, base_bits=np.zeros(n), n_tokens=0)
    >>> [in_place(word(*t), 5) for t in [(0, 0, 0), (1, 2, 1), (0, 0, 0, 4), (3, 3, 3), (0, 0, 4), (1, 2, 3)]]
    [True, True, True, False, False, False]
    >>> steps = Alphabet(config=TokenConfig(pitch="diatonic"), symbols=[(-4, 3), (4, 3), (-3, 3), (3, 3), (2, 3)])
    >>> [in_place(word(*t, alphabet=steps), 5) for t in [(0, 1, 2, 3, 0), (3, 3, 3, 3, 3)]]  # a pedal; an arpeggio
    [True, False]
    """
    tokens = d.words[w]
    parts = [p for p in (tokens, tokens[1:], tokens[:-1], tokens[1:-1]) if len(p) >= 3]
    if any(_repeats_in_place(part, d) for part in parts):
        return True
    pitch = d.alphabet.config.pitch
    if pitch == "absolute":
        return False
    leap, step = (2, 1) if pitch == "diatonic" else (3, 2)  # a third; a second (scale steps or semitones)
    return any(_alternates(tuple(d.alphabet.symbols[t][0] for t in part), leap, step) for part in parts)


def _repeats_in_place(tokens: tuple[int, ...], d: Dictionary) -> bool:
    k = len(tokens)  # k + 1 notes
    for p in range(1, (k + 1) // 2 + 1):
        if all(tokens[i] == tokens[i + p] for i in range(k - p)):
            if d.alphabet.config.pitch == "absolute":  # the pitches themselves repeat
                return True
            return sum(d.alphabet.symbols[t][0] for t in tokens[:p]) == 0
    return False


def _alternates(steps: tuple[int, ...], leap: int, step: int) -> bool:
    """Two lines in alternation: at least four steps, all leaps, and one line holds (a pedal:
    its notes within a step of each other) or both move by step (each note within a step of the
    note two before)."""
    if len(steps) < 4 or any(abs(s) < leap for s in steps):
        return False
    heights = np.concatenate([[0], np.cumsum(steps)])
    return (any(np.ptp(heights[k::2]) <= step for k in (0, 1))
            or all(abs(a + b) <= step for a, b in zip(steps, steps[1:], strict=False)))


def check_significance(significance: float | None) -> None:
    """Raise ``ValueError`` unless ``significance`` is ``None`` or in (0, 1] (see :func:`patterns`)."""
    if significance is not None and not 0 < significance <= 1:
        raise ValueError(f"significance must be in (0, 1] or None, got {significance}")


def _variant_sets(d: Dictionary, w: int, variants: VariantFinder, sets: list[tuple[int, np.ndarray]],
                  held: set[tuple[int, int]] | None = None) -> list[tuple[int, np.ndarray, str]]:
    """The varied statements of word ``w`` that share no note with ``sets``, ``held`` or each
    other (the earlier one kept), as ``(piece, note indices, kind)``."""
    taken = {(pc, int(i)) for pc, idx in sets for i in idx}
    held = held or set()
    out = []
    for piece, idx, kind in variants.statements(d.words[w]):
        notes = {(piece, int(i)) for i in idx}
        if notes.isdisjoint(taken) and notes.isdisjoint(held):
            taken |= notes
            out.append((piece, idx, kind))
    return out


def _extend(occs: list[Occurrence], pieces: list[Notes], min_share: float, *, grow: bool = False) -> list[tuple[int, np.ndarray]]:
    """Add to each occurrence the co-sounding notes that recur under the same translation (and,
    with ``grow``, the recurring notes of the onsets before and after it, while there are some)."""
    anchors = [(pieces[o.piece].onset[o.notes[0]], int(pieces[o.piece].pitch[o.notes[0]])) for o in occs]
    lookups = []
    for o in occs:
        n = pieces[o.piece]
        lookups.append({(round(float(t), 3), int(p)): i for i, (t, p) in enumerate(zip(n.onset, n.pitch, strict=True))})
    onsets = {p: np.unique(pieces[p].onset) for p in {o.piece for o in occs}}
    out = []
    for i, o in enumerate(occs):
        n = pieces[o.piece]
        others = [j for j in range(len(occs)) if j != i]

        def recurs(note: int, i: int = i, n: Notes = n, others: list[int] = others) -> bool:
            dt = float(n.onset[note]) - anchors[i][0]
            dp = int(n.pitch[note]) - anchors[i][1]
            hits = sum((round(anchors[j][0] + dt, 3), anchors[j][1] + dp) in lookups[j] for j in others)
            return bool(others) and hits >= min_share * len(others)

        lo, hi = float(n.onset[o.notes].min()), float(n.onset[o.notes].max())
        span = np.flatnonzero((n.onset >= lo) & (n.onset <= hi))
        keep = [note for note in np.setdiff1d(span, o.notes).tolist() if recurs(note)]
        if grow and others:
            times = onsets[o.piece]
            for step in (1, -1):  # after the occurrence, then before it
                k = int(np.searchsorted(times, hi if step == 1 else lo)) + step
                while 0 <= k < len(times):
                    found = [note for note in np.flatnonzero(n.onset == times[k]).tolist() if recurs(note)]
                    if not found:
                        break
                    keep += found
                    k += step
        out.append((o.piece, np.unique(np.concatenate([o.notes, np.array(keep, dtype=np.int64)]))))
    return out
