"""Stage 1: learning the dictionary of music-words by EM under minimum code length (MDL).

The model is a unigram language model over words (as in SentencePiece's unigram trainer):
a stream is a sequence of words drawn independently with probabilities ``p(w)``; the words
include every token on its own (the *literals*), so any stream can be spelled.

Code length (bits), the objective
---------------------------------
``L = L(dictionary) + L(data | dictionary)`` where

- ``L(data | dictionary) = -log2 P(data)``, the probability of all streams summed over all
  their segmentations (forward algorithm): the length of an arithmetic code that transmits the
  streams word by word, literals included;
- ``L(dictionary) = sum over multi-token words w of [ spell(w) + gamma(|w|) + 1/2 log2 N ]``:
  each word spelled as its best segmentation into *shorter* words of the dictionary (literals
  included) at their current code lengths, so a word made of words costs a few pointers, not
  all its notes again (the dictionary is a grammar: motif → phrase → theme → section); its
  length in Elias-gamma code; and its probability to the precision that ``N`` (the number of
  tokens) supports. The literals are the alphabet, sent once whatever the dictionary, so they
  add a constant and are left out.

The loop (each round):

1. *candidates*: in the first round, frequent token n-grams (hashed counts, up to
   ``max_ngram``) scored by ``(count - 1) * length``; later rounds, runs of consecutive words
   of the current best segmentation that recur at least ``min_count`` times (pairs up to whole
   sections), so words are built from words (motif → phrase → theme → section);
2. *E-step*: forward-backward over every segmentation of every stream → expected counts;
3. *M-step*: ``p(w) ∝ exp(ψ(c_w + a_w))`` (variational Bayes) with a sparse Dirichlet prior
   ``a_w = prior`` on words (rarely used words fade) and ``a_w = 1`` on literals (every token
   stays spellable at a fair price, so a word is never kept only because its tokens alone
   became too expensive);
4. *prune*: drop words whose estimated saving ``c_w * (bits of their best spelling without
   them - bits as one word) - L(w)`` is not positive, a share at a time with the counts
   re-estimated in between (by EM, or where the dropped words were hardly used by handing
   their counts to their spellings), then an E-step gives the code length (words it shows
   not paying are dropped in the next round, and after the last round until none is left);
5. *accept* the round if the total code length fell; otherwise restore the previous dictionary
   and go on with the better-scored half of the candidates. A round that shortens the code by
   no more than the share ``tol`` (a rejected round included) is a *stall*; stop after
   ``patience`` stalls in a row (convergence). An accepted small gain is kept: the gains of
   later rounds are not smaller in general (runs of new words make longer words possible), so
   stopping does not hang on whether one round's gain lands just above or below ``tol``.

So the code length never rises across accepted rounds, and :attr:`Dictionary.history` records
it after every accepted step.

Where the E-step runs
---------------------
The streams are cut into *blocks* of whole streams (about ``block_tokens`` tokens each, see
:func:`split_blocks`). Every pass over the corpus (lattice building, forward-backward,
Viterbi) runs block by block behind the :class:`EStep` interface and returns one result per
block; the driver adds them up in block order and runs candidates, M-step and pruning. The
default :class:`LocalEStep` holds every block in this process; ``jobs/words.py`` gives each of
several Ray actors a contiguous range of blocks. The blocks and the order of the sums are the
same either way, so a sharded run gives exactly the numbers of a single process.

Examples
--------
>>> import numpy as np
>>> from musicwords.notes import Notes
>>> from musicwords.voices import separate_voices
>>> from musicwords.tokens import Alphabet, tokenize
>>> rng = np.random.default_rng(0)
>>> motif = np.array([0, 4, 7, 12, 7, 4])
>>> parts = [np.concatenate([rng.integers(55, 75, 5), 60 + k + motif]) for k in rng.integers(-5, 6, 20)]
>>> pitch = np.concatenate(parts)
>>> n = Notes.from_arrays("demo", onset=np.arange(len(pitch)), pitch=pitch, duration=np.ones(len(pitch)))
>>> alphabet = Alphabet()
>>> d = learn_dictionary(tokenize([(n, separate_voices(n))], alphabet), alphabet, EMConfig.debug())
>>> d.history == sorted(d.history, reverse=True)
True
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numba
import numpy as np
from scipy.special import digamma

from musicwords.lattice import _MIX, Lattice, WordIndex, build_lattice, extend_lattice, forward_backward, viterbi
from musicwords.tokens import SEPARATOR, Alphabet, TokenStreams

__all__ = ["Dictionary", "EMConfig", "EStep", "LocalEStep", "learn_dictionary", "split_blocks"]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class EMConfig:
    """Settings of the dictionary learner; one configuration serves every corpus."""

    max_ngram: int = 16  # longest seed candidate (tokens); longer words come from merges
    max_word_tokens: int = 512  # merges stop here: a long repeated section, not a whole piece
    min_count: int = 2  # a word must recur to be worth a dictionary entry
    seed_candidates: int = 3000  # frequent n-grams proposed in the first round
    merge_candidates: int = 1000  # adjacent word pairs proposed per later round
    em_iterations: int = 2  # E/M steps per round on the new candidates (they start at p ∝ their count: a warm start)
    prior: float = 0.05  # Dirichlet pseudo-count of the VB M-step; < 1 favours sparse dictionaries
    max_rounds: int = 40
    tol: float = 1e-3  # a round shortening the code by no more than this share (0.1 %) is a stall
    prune_fraction: float = 0.5  # share of the non-paying words dropped per pruning pass
    handover_share: float = 0.01  # a pruning pass whose words held more of the expected word uses re-estimates by EM
    patience: int = 2  # stop after this many stalls in a row (convergence)
    block_tokens: int = 1 << 15  # E-step block size (tokens, whole streams): the unit of sharding; results add up in block order

    def __post_init__(self) -> None:
        if self.min_count < 2:
            raise ValueError(f"min_count must be >= 2 (a word used once never pays for itself), got {self.min_count}")
        if not 0 < self.prior:
            raise ValueError(f"prior must be > 0, got {self.prior}")
        if self.max_ngram < 2 or self.max_word_tokens < self.max_ngram:
            raise ValueError("need 2 <= max_ngram <= max_word_tokens")
        if self.block_tokens < 1:
            raise ValueError(f"block_tokens must be >= 1, got {self.block_tokens}")

    @classmethod
    def debug(cls) -> EMConfig:
        """Fewer candidates and rounds: seconds on a test corpus."""
        return cls(seed_candidates=500, merge_candidates=200, max_rounds=10)


@dataclass
class Dictionary:
    """Words (token tuples; ids below ``n_literals`` are the literals), their statistics and history."""

    alphabet: Alphabet
    words: list[tuple[int, ...]]
    logp: np.ndarray  # (n_words,) natural log
    counts: np.ndarray  # (n_words,) expected counts at the last E-step
    n_literals: int
    base_bits: np.ndarray  # (n_literals,) -log2 q(t), the base model of word spellings
    n_tokens: int
    history: list[float] = field(default_factory=list)  # total code length (bits) after each accepted step
    data_bits: float = 0.0
    dict_bits: float = 0.0
    rounds: list[dict[str, float]] = field(default_factory=list)  # every round tried, accepted or not
    _index: tuple[list[tuple[int, ...]], int, dict[tuple[int, ...], int], list[int]] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def code_length(self) -> float:
        return self.data_bits + self.dict_bits

    @property
    def word_ids(self) -> np.ndarray:
        """Ids of the multi-token words."""
        return np.arange(self.n_literals, len(self.words))

    def spelling(self, w: int) -> list[tuple[int, int]]:
        """Parts ``(token offset, word id)`` of word ``w`` in shorter words (a literal spells itself)."""
        if w < self.n_literals:
            return [(0, w)]
        index, lengths = self._word_index()
        return _best_spelling(self.words[w], index, lengths, self.logp, exclude=w)[1]

    def _word_index(self) -> tuple[dict[tuple[int, ...], int], list[int]]:
        """Word → id, and the word lengths in use; kept while ``words`` is the same list (rebuilding
        it for every :meth:`spelling` made reconstruction quadratic in the dictionary's size)."""
        cached = self._index
        if cached is None or cached[0] is not self.words or cached[1] != len(self.words):
            cached = self._index = (self.words, len(self.words), {word: i for i, word in enumerate(self.words)},
                                    sorted({len(word) for word in self.words}))
        return cached[2], cached[3]

    def word_costs(self) -> np.ndarray:
        """Bits to put each word in the dictionary (0 for literals; see the module docstring)."""
        costs = np.zeros(len(self.words))
        if len(self.words) == self.n_literals:
            return costs
        alive = np.ones(len(self.words), dtype=bool)
        alt, _ = _Spellings(self.words, self.n_literals).spell(alive, -self.logp / LN2)
        param = 0.5 * math.log2(max(self.n_tokens, 2))
        for w in range(self.n_literals, len(self.words)):
            costs[w] = alt[w] + _gamma_bits(len(self.words[w])) + param
        return costs

    def describe(self, w: int) -> str:
        return " ".join(self.alphabet.describe(t) for t in self.words[w])


def _gamma_bits(n: int) -> float:
    return float(2 * math.floor(math.log2(n)) + 1)


class EStep(Protocol):
    """Where the passes over the corpus run: one result per block, in block order.

    A lattice (all matches of a dictionary's words in the blocks) is kept under an integer
    ``key`` chosen by the caller, so that the accepted and the trial dictionary can be held at
    once. :class:`LocalEStep` is the single-process implementation; ``jobs.words`` shards the
    blocks across Ray actors behind the same methods.
    """

    def build(self, key: int, words: Sequence[tuple[int, ...]], n_literals: int) -> None:
        """Build the lattice of ``words`` (ids below ``n_literals`` are the literals) in every block."""

    def restrict(self, key: int, source: int, new_id: np.ndarray) -> None:
        """The lattice of lattice ``source`` without the words whose ``new_id`` is negative."""

    def extend(self, key: int, source: int, new_words: Sequence[tuple[int, ...]], first_id: int) -> None:
        """The lattice of lattice ``source`` with ``new_words`` added as words ``first_id``, ... ."""

    def expected_counts(self, key: int, logp: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Per block: expected word counts over all segmentations, and the log-probability (nats)."""

    def best_words(self, key: int, logp: np.ndarray) -> list[np.ndarray]:
        """Per block: the words of the most probable segmentation, ``SEPARATOR`` between streams."""

    def release(self, key: int) -> None:
        """Forget lattice ``key``."""


def split_blocks(tokens: np.ndarray, block_tokens: int) -> list[np.ndarray]:
    """Cut a concatenated token array (every stream ends with ``SEPARATOR``) into blocks of whole
    streams, each closed as soon as it holds ``block_tokens`` entries or more.

    Examples
    --------
    >>> [b.tolist() for b in split_blocks(np.array([3, 4, -1, 5, -1, 6, 7, -1]), 3)]
    [[3, 4, -1], [5, -1, 6, 7, -1]]
    """
    ends = np.flatnonzero(tokens == SEPARATOR) + 1
    if len(ends) == 0 or ends[-1] != len(tokens):
        ends = np.append(ends, len(tokens))
    blocks = []
    lo = 0
    for e in ends.tolist():
        if e - lo >= block_tokens or e == len(tokens):
            blocks.append(tokens[lo:e])
            lo = e
    return [b for b in blocks if len(b)]


class LocalEStep:
    """The E-step over blocks held in this process (see :class:`EStep`)."""

    def __init__(self, blocks: Sequence[np.ndarray]) -> None:
        self.blocks = [np.asarray(b, dtype=np.int64) for b in blocks]
        self.lattices: dict[int, list[Lattice]] = {}

    def build(self, key: int, words: Sequence[tuple[int, ...]], n_literals: int) -> None:
        index = WordIndex(words)  # once for all blocks
        self.lattices[key] = [build_lattice(b, words, n_literals, index) for b in self.blocks]

    def restrict(self, key: int, source: int, new_id: np.ndarray) -> None:
        self.lattices[key] = [lat.restricted(new_id) for lat in self.lattices[source]]

    def extend(self, key: int, source: int, new_words: Sequence[tuple[int, ...]], first_id: int) -> None:
        index = WordIndex(new_words)
        self.lattices[key] = [extend_lattice(lat, b, new_words, first_id, index)
                              for lat, b in zip(self.lattices[source], self.blocks, strict=True)]

    def expected_counts(self, key: int, logp: np.ndarray) -> list[tuple[np.ndarray, float]]:
        return [forward_backward(lat, logp) for lat in self.lattices[key]]

    def best_words(self, key: int, logp: np.ndarray) -> list[np.ndarray]:
        out = []
        for lat in self.lattices[key]:
            path, _ = viterbi(lat, logp)
            words = lat.word[path]
            # a separator wherever the path crosses from one stream to the next
            breaks = np.flatnonzero(lat.end[path][:-1] != lat.start[path][1:]) + 1
            out.append(np.insert(words, breaks, SEPARATOR))
        return out

    def release(self, key: int) -> None:
        self.lattices.pop(key, None)


def learn_dictionary(
    streams: TokenStreams,
    alphabet: Alphabet,
    config: EMConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    estep: Callable[[list[np.ndarray]], EStep] | None = None,
) -> Dictionary:
    """Learn a dictionary of music-words for ``streams`` (see the module docstring).

    Parameters
    ----------
    streams : TokenStreams
        The corpus, tokenised with ``alphabet``.
    alphabet : Alphabet
    config : EMConfig, optional
    progress : callable, optional
        Called with a one-line status after each round.
    estep : callable, optional
        Given the blocks of the corpus (:func:`split_blocks`), returns the :class:`EStep` that
        runs the passes over them; :class:`LocalEStep` (this process) by default. The result
        does not depend on it.

    Returns
    -------
    Dictionary
        With ``history`` (code length after each accepted step, never rising) and ``rounds``.
    """
    cfg = config or EMConfig()
    tokens = streams.tokens
    A = len(alphabet)
    real = tokens[tokens != SEPARATOR]
    if len(real) == 0:
        raise ValueError("no tokens: every stream has fewer than two notes")
    freq = np.bincount(real, minlength=A).astype(float)
    base_bits = -np.log2(np.maximum(freq, 0.5) / freq.sum())
    d = Dictionary(
        alphabet=alphabet, words=[(t,) for t in range(A)], logp=np.log(np.maximum(freq, 0.5) / freq.sum()),
        counts=freq, n_literals=A, base_bits=base_bits, n_tokens=len(real),
    )
    blocks = split_blocks(tokens, cfg.block_tokens)
    backend = (estep or LocalEStep)(blocks)
    keys = iter(range(1 << 62))
    lattice = next(keys)  # key of the lattice of the accepted dictionary
    backend.build(lattice, d.words, A)
    _evaluate(d, backend, lattice)
    d.history.append(d.code_length)
    d.rounds.append({"round": 0, "words": 0, "bits": d.code_length, "accepted": 1.0, "seconds": 0.0})

    batch: int | None = None  # candidates per round; halved after each rejected round
    stalls = 0  # consecutive rounds that shortened the code by no more than the share tol
    for r in range(1, cfg.max_rounds + 1):
        t0 = time.time()
        # 1. candidates
        known = set(d.words)
        cands: list[tuple[tuple[int, ...], int]]
        if len(d.history) == 1:
            cands = _ngram_candidates(tokens, cfg, known)
        else:
            cands = _merge_candidates(d, _word_sequence(backend.best_words(lattice, d.logp)), cfg, known)
        cands = cands[:batch] if batch else cands
        if not cands:
            break
        trial = _with_words(d, cands)
        trial_lattice = next(keys)
        backend.extend(trial_lattice, lattice, [w for w, _ in cands], len(d.words))
        # 2-3. E-step and M-step
        _em(trial, backend, trial_lattice, cfg, cfg.em_iterations)
        # 4. prune, worst first, re-estimating in between
        trial_lattice, costs, log_z = _prune(trial, backend, trial_lattice, cfg, keys)
        trial.data_bits, trial.dict_bits = -log_z / LN2, float(costs.sum())
        # 5. accept only if the total code length fell
        accepted = trial.code_length < d.code_length
        stalled = trial.code_length >= d.code_length * (1.0 - cfg.tol)
        info = {
            "round": float(r), "candidates": float(len(cands)), "words": float(len(trial.words) - A),
            "bits": trial.code_length, "accepted": float(accepted), "seconds": time.time() - t0,
        }
        d.rounds.append(info)
        if progress:
            progress(f"round {r}: {len(cands)} candidates, {len(trial.words) - A} words, "
                     f"{trial.code_length:,.0f} bits ({'accepted' if accepted else 'rejected'})")
        if accepted:
            trial.rounds, trial.history = d.rounds, d.history
            backend.release(lattice)
            d, lattice = trial, trial_lattice
            d.history.append(d.code_length)
        else:
            backend.release(trial_lattice)
            batch = max(1, len(cands) // 2)  # the same kind of round again with the better-scored half
        stalls = stalls + 1 if stalled else 0
        if stalls >= cfg.patience:
            break
    # a round's pruning ends at one E-step, whose counts may show words that no longer pay (the
    # next round drops them); after the last round they are dropped here, until none is left
    t0 = time.time()
    final = Dictionary(alphabet=d.alphabet, words=d.words, logp=d.logp, counts=d.counts, n_literals=A,
                       base_bits=d.base_bits, n_tokens=d.n_tokens, history=d.history, rounds=d.rounds)
    final_lattice, costs, log_z = _prune(final, backend, lattice, cfg, keys, settle=True)
    final.data_bits, final.dict_bits = -log_z / LN2, float(costs.sum())
    if final.code_length < d.code_length:
        d = final
        d.history.append(d.code_length)
        d.rounds.append({"round": float(len(d.rounds)), "candidates": 0.0, "words": float(len(d.words) - A),
                         "bits": d.code_length, "accepted": 1.0, "seconds": time.time() - t0})
    backend.release(lattice)
    backend.release(final_lattice)
    return d


# --------------------------------------------------------------------------------------------
# steps


def _with_words(d: Dictionary, new: list[tuple[tuple[int, ...], int]]) -> Dictionary:
    """``d`` plus candidate words, each starting with a probability proportional to its count."""
    words = d.words + [w for w, _ in new]
    counts = np.array([c for _, c in new], dtype=float)
    logp = np.concatenate([d.logp, np.log(counts / max(d.n_tokens, 1))])
    logp -= np.log(np.exp(logp).sum())
    return Dictionary(
        alphabet=d.alphabet, words=words, logp=logp, counts=np.concatenate([d.counts, counts]),
        n_literals=d.n_literals, base_bits=d.base_bits, n_tokens=d.n_tokens, history=list(d.history),
        rounds=list(d.rounds),
    )


def _expect(backend: EStep, lattice: int, logp: np.ndarray) -> tuple[np.ndarray, float]:
    """E-step: expected counts and log-probability of all streams, summed over blocks in block order."""
    parts = backend.expected_counts(lattice, logp)
    counts = parts[0][0].copy()
    log_z = parts[0][1]
    for c, z in parts[1:]:
        counts += c
        log_z += z
    return counts, float(log_z)


def _word_sequence(parts: list[np.ndarray]) -> np.ndarray:
    """The blocks' best word sequences joined, with a separator between blocks."""
    out = [parts[0]]
    for seq in parts[1:]:
        out += [np.array([SEPARATOR], dtype=seq.dtype), seq]
    return np.concatenate(out)


def _em(d: Dictionary, backend: EStep, lattice: int, cfg: EMConfig, iterations: int) -> None:
    """EM iterations on a lattice built for ``d.words``."""
    for _ in range(iterations):
        d.counts = _expect(backend, lattice, d.logp)[0]  # E-step
        _m_step(d, cfg)


def _m_step(d: Dictionary, cfg: EMConfig) -> None:
    """M-step (variational Bayes) from ``d.counts``: a sparse prior on words, a Laplace prior on
    the literals so that every token stays cheap enough to spell what the words do not cover."""
    pseudo = np.full(len(d.counts), cfg.prior)
    pseudo[: d.n_literals] = 1.0
    weights = np.exp(digamma(d.counts + pseudo))
    d.logp = np.log(np.maximum(weights, 1e-300)) - np.log(weights.sum())


def _evaluate(d: Dictionary, backend: EStep, lattice: int) -> None:
    """Counts and both parts of the code length of ``d`` (``lattice`` built for ``d.words``)."""
    counts, log_z = _expect(backend, lattice, d.logp)
    d.counts = counts
    d.data_bits = -log_z / LN2
    d.dict_bits = float(d.word_costs().sum())


def _prune(d: Dictionary, backend: EStep, lattice: int, cfg: EMConfig, keys: Iterator[int],
           settle: bool = False) -> tuple[int, np.ndarray, float]:
    """Drop multi-token words that do not pay for their dictionary entry, worst first.

    A word's saving is ``(c_w + r_w) * (bits of its best spelling without it - bits as one
    word) - L(w)``, where ``r_w`` counts its uses in the spellings of other words (a motif
    that longer words are made of is used by them too). Only the worst ``prune_fraction`` of
    the non-paying words goes in one pass, then the counts are re-estimated: a word whose uses
    were shared with near-duplicates (the motif plus one note of context) gets them back once
    the duplicates are gone, instead of being pruned with them.

    Re-estimating by EM costs a pass over the corpus, and most passes drop a few words that
    were hardly used (the tail of a round's pruning, and words left without the longer words
    spelled with them). So a pass whose words held at most ``handover_share`` of the expected
    word uses hands each dropped word's count to the words of its best spelling in the words
    left (as SentencePiece's pruning estimates a piece's loss from its alternative
    segmentation) and re-estimates by an M-step alone; a larger pass runs an EM step over the
    corpus (its uses may go to words that overlap it, not only to its parts). When no word is
    left to drop, an E-step over the corpus gives the exact code length of the dictionary left.
    Its counts may show words that no longer pay: with ``settle`` pruning goes on from them until
    such an E-step finds every word paying; without, they are left to the next round's pruning
    (one pass over the corpus where settling took about four).

    The passes run on ``lattice`` (built for ``d.words``) with the dropped words at probability
    0; the lattice of the pruned dictionary is made once at the end. Returns its key
    (``lattice`` is then released), the word costs and the log-probability (nats) of all
    streams under ``d`` as left.
    """
    param = 0.5 * math.log2(max(d.n_tokens, 2))
    A = d.n_literals
    words0 = list(d.words)  # ids below are positions in this list, fixed during pruning
    spellings = _Spellings(words0, A)
    lengths0 = np.array([_gamma_bits(len(w)) for w in words0])
    alive = np.ones(len(words0), dtype=bool)
    log_z: float | None = None  # of an E-step at the current probabilities, once checked
    while True:
        current = np.flatnonzero(alive)  # d.words == [words0[i] for i in current]
        bits0 = np.full(len(words0), np.inf)
        bits0[current] = -d.logp / LN2
        counts0 = np.zeros(len(words0))
        counts0[current] = d.counts
        multi = current[current >= A]
        alt, refs = spellings.spell(alive, bits0)  # refs: uses of a word in the spellings of other words
        gains = (counts0[multi] + refs[multi]) * (alt[multi] - bits0[multi]) - (alt[multi] + lengths0[multi] + param)
        bad = np.flatnonzero(gains <= 0)
        if log_z is not None and (len(bad) == 0 or not settle):
            break
        if len(bad) == 0:
            logp0 = np.full(len(words0), -np.inf)
            logp0[current] = d.logp
            counts, log_z = _expect(backend, lattice, logp0)  # the check
            d.counts = counts[current]
            continue
        n_drop = max(1, math.ceil(len(bad) * cfg.prune_fraction))
        dropped = multi[bad[np.argsort(gains[bad], kind="stable")[:n_drop]]]
        alive[dropped] = False
        bits0[dropped] = np.inf
        moved = counts0[dropped].sum() / counts0.sum()
        spellings.hand_over(alive, bits0, dropped, counts0)
        d.words = [words0[i] for i in np.flatnonzero(alive)]
        d.counts = counts0[alive]
        _m_step(d, cfg)
        log_z = None
        if moved > cfg.handover_share:  # too much moved to trust the estimate: an EM step over the corpus
            logp0 = np.full(len(words0), -np.inf)
            logp0[alive] = d.logp
            d.counts = _expect(backend, lattice, logp0)[0][alive]
            _m_step(d, cfg)
    # the pruned dictionary's word costs (Dictionary.word_costs), from the spellings at hand
    live = np.flatnonzero(alive)
    costs = np.where(live >= A, alt[live] + lengths0[live] + param, 0.0)
    if alive.all():
        return lattice, costs, log_z
    new_id = np.full(len(words0), -1)
    new_id[alive] = np.arange(len(live))
    restricted = next(keys)
    backend.restrict(restricted, lattice, new_id)
    backend.release(lattice)
    return restricted, costs, log_z


class _Spellings:
    """Every match of a dictionary word inside each multi-token word (found with the lattice
    machinery on the words laid end to end), to spell words in shorter words quickly."""

    def __init__(self, words: list[tuple[int, ...]], n_literals: int) -> None:
        multi = words[n_literals:]
        self.n_literals = n_literals
        self.lengths = np.array([len(w) for w in multi], dtype=np.int64)
        starts = np.cumsum(self.lengths + 1) - (self.lengths + 1)
        concat = np.full(int(self.lengths.sum() + len(multi)), SEPARATOR, dtype=np.int64)
        for st, w in zip(starts.tolist(), multi, strict=True):
            concat[st : st + len(w)] = w
        lat = build_lattice(concat, words, n_literals)  # edges sorted by end: grouped by owner word
        owner = np.searchsorted(starts, lat.start, side="right") - 1
        keep = lat.word != owner + n_literals  # not the word itself
        # by owner, then end, then the shortest match first (ties go to the shortest last part)
        order = np.lexsort(((lat.end - lat.start)[keep], lat.end[keep], owner[keep]))
        self.owner = owner[keep][order]
        self.start = (lat.start - starts[owner])[keep][order]
        self.end = (lat.end - starts[owner])[keep][order]
        self.word = lat.word[keep][order]
        self.ptr = np.searchsorted(self.owner, np.arange(len(multi) + 1)).astype(np.int64)

    def spell(self, alive: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bits of the cheapest spelling of every live word in other live words (``bits`` per word,
        inf when dead), and how often each word is used by those spellings."""
        return _spell_all(self.n_literals, self.ptr, self.start, self.end, self.word, self.lengths, alive, bits)

    def hand_over(self, alive: np.ndarray, bits: np.ndarray, dropped: np.ndarray, counts: np.ndarray) -> None:
        """Add the count of each ``dropped`` word (dead in ``alive``) to the words of its cheapest
        spelling in live words, and set its own to 0 (``counts`` per word, changed in place)."""
        _hand_over(self.n_literals, self.ptr, self.start, self.end, self.word, self.lengths, alive, bits,
                   dropped.astype(np.int64), counts)


@numba.njit(cache=True)
def _spell_one(i, ptr, start, end, word, n, alive, bits):  # pragma: no cover - compiled
    """Cheapest spelling of multi-token word ``i`` (``n`` tokens) in other live words: bits per
    prefix length and back pointers (start of the last part, its word)."""
    best = np.full(n + 1, np.inf)
    back_start = np.full(n + 1, -1)
    back_word = np.full(n + 1, -1)
    best[0] = 0.0
    for k in range(ptr[i], ptr[i + 1]):
        u = word[k]
        if alive[u]:
            v = best[start[k]] + bits[u]
            if v < best[end[k]]:
                best[end[k]] = v
                back_start[end[k]] = start[k]
                back_word[end[k]] = u
    return best, back_start, back_word


@numba.njit(cache=True)
def _spell_all(n_literals, ptr, start, end, word, lengths, alive, bits):  # pragma: no cover - compiled
    n_words = len(alive)
    alt = np.zeros(n_words)
    refs = np.zeros(n_words)
    for i in range(len(lengths)):
        w = n_literals + i
        if not alive[w]:
            continue
        n = lengths[i]
        best, back_start, back_word = _spell_one(i, ptr, start, end, word, n, alive, bits)
        alt[w] = best[n]
        e = n
        while e > 0 and back_start[e] >= 0:
            refs[back_word[e]] += 1
            e = back_start[e]
    return alt, refs


@numba.njit(cache=True)
def _hand_over(n_literals, ptr, start, end, word, lengths, alive, bits, dropped, counts):  # pragma: no cover - compiled
    for w in dropped:
        i = w - n_literals
        n = lengths[i]
        _, back_start, back_word = _spell_one(i, ptr, start, end, word, n, alive, bits)
        e = n
        while e > 0 and back_start[e] >= 0:
            counts[back_word[e]] += counts[w]
            e = back_start[e]
        counts[w] = 0.0


def _best_spelling(
    word: tuple[int, ...], index: dict[tuple[int, ...], int], lengths: list[int], logp: np.ndarray, exclude: int
) -> tuple[float, list[tuple[int, int]]]:
    """Bits and parts ``(token offset, word id)`` of the best segmentation of ``word`` into other words."""
    n = len(word)
    best = np.full(n + 1, np.inf)
    back = np.full(n + 1, -1, dtype=np.int64)
    part = np.full(n + 1, -1, dtype=np.int64)
    best[0] = 0.0
    for e in range(1, n + 1):
        for length in lengths:
            s = e - length
            if s < 0:
                break
            w = index.get(word[s:e])
            if w is None or w == exclude:
                continue
            v = best[s] - logp[w] / LN2
            if v < best[e]:
                best[e], back[e], part[e] = v, s, w
    parts = []
    e = n
    while e > 0 and back[e] >= 0:
        parts.append((int(back[e]), int(part[e])))
        e = int(back[e])
    return float(best[n]), parts[::-1]


def _repeated_windows(symbols: np.ndarray, min_count: int, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(length, first start, count)`` arrays of every window of 2..``max_length`` symbols that
    recurs ``min_count`` times or more without crossing a separator (``SEPARATOR`` entries),
    shortest first, by first start within a length.

    A window can only recur where the window one symbol shorter at the same start recurs, so each
    length looks only at the starts where the previous length found a recurring window.
    """
    from musicwords.lattice import _BASE, _prefix_hash, _values  # noqa: PLC0415

    n = len(symbols)
    sep_prefix = np.concatenate([[0], np.cumsum(symbols == SEPARATOR)])
    prefix = _prefix_hash(_values(symbols))
    cand = np.flatnonzero(symbols != SEPARATOR)  # starts of windows that may recur
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    power = _BASE
    for length in range(2, min(max_length, n) + 1):
        with np.errstate(over="ignore"):
            power = power * _BASE
            cand = cand[cand + length <= n]
            cand = cand[(sep_prefix[cand + length] - sep_prefix[cand]) == 0]
            if len(cand) == 0:
                break
            windows = prefix[cand + length] - prefix[cand] * power
        first, inverse, count = _group(windows)  # distinct windows in order of first start
        frequent = count >= min_count
        if not frequent.any():
            break  # no longer window can recur either
        out.append((np.full(int(frequent.sum()), length), cand[first[frequent]], count[frequent]))
        cand = cand[frequent[inverse]]
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate([part[i] for part in out]).astype(np.int64) for i in range(3))  # type: ignore[return-value]


@numba.njit(cache=True)
def _group(keys):  # pragma: no cover - compiled
    """Distinct values of ``keys`` (uint64) in order of first appearance: the index of each one's
    first appearance, each key's group and each group's size (a hash table: linear time, where
    ``np.unique`` sorts)."""
    n = len(keys)
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    size = 1 << bits
    shift = np.uint64(64 - bits)
    table_key = np.zeros(size, dtype=np.uint64)
    table_id = np.full(size, -1, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    m = 0
    for i in range(n):
        h = keys[i]
        slot = np.int64((h * _MIX) >> shift)
        while table_id[slot] != -1 and table_key[slot] != h:
            slot = (slot + 1) & (size - 1)
        if table_id[slot] == -1:
            table_key[slot] = h
            table_id[slot] = m
            first[m] = i
            m += 1
        g = table_id[slot]
        inverse[i] = g
        count[g] += 1
    return first[:m], inverse, count[:m]


@numba.njit(cache=True)
def _one_window_per_repeat(start, n_words, count, n, limit):  # pragma: no cover - compiled
    """Positions (into the ranked runs given) of the first ``limit`` runs whose first statement
    ``start .. start + n_words`` overlaps no first statement of a run taken before with the
    same count."""
    taken = numba.typed.Dict.empty(key_type=numba.types.int64, value_type=numba.types.boolean)  # count * n + position
    out = np.empty(min(limit, len(start)), dtype=np.int64)
    m = 0
    for i in range(len(start)):
        if m == limit:
            break
        base = count[i] * n
        clash = False
        for p in range(start[i], start[i] + n_words[i]):
            if base + p in taken:
                clash = True
                break
        if clash:
            continue
        for p in range(start[i], start[i] + n_words[i]):
            taken[base + p] = True
        out[m] = i
        m += 1
    return out[:m]


def _ngram_candidates(tokens: np.ndarray, cfg: EMConfig, known: set[tuple[int, ...]]) -> list[tuple[tuple[int, ...], int]]:
    """Token n-grams that recur, most promising first (``(count - 1) * length``, then by first
    start, length and count)."""
    length, start, count = _repeated_windows(tokens, cfg.min_count, cfg.max_ngram)
    out: list[tuple[tuple[int, ...], int]] = []
    for i in np.lexsort((count, length, start, -(count - 1) * length)).tolist():
        a, n = int(start[i]), int(length[i])
        word = tuple(tokens[a : a + n].tolist())
        if word not in known:
            out.append((word, int(count[i])))
            if len(out) >= cfg.seed_candidates:
                break
    return out


def _merge_candidates(
    d: Dictionary, seq: np.ndarray, cfg: EMConfig, known: set[tuple[int, ...]]
) -> list[tuple[tuple[int, ...], int]]:
    """Runs of 2 or more consecutive words of the best segmentation ``seq`` (word ids, with
    ``SEPARATOR`` between streams) that recur, as new words.

    A repeated section is a long run of words that recurs as a whole; proposing whole runs
    (not only pairs) lets MDL take it in one step, which pairwise merges cannot when each
    single merge costs more than it saves. Its shorter windows recur as often as it does, and
    where it is longer than ``max_word_tokens`` (a piece that is in the corpus twice) every
    window of the longest allowed length does: a run is skipped when its first statement
    overlaps that of a better-scored run of the same count (see :func:`_one_window_per_repeat`),
    or one repeat would fill a round's candidates with windows that EM then shares out among
    themselves (all of them pruned) and leave no room for other words.
    """
    word_len = np.array([len(w) for w in d.words], dtype=np.int64)
    token_len = np.where(seq < 0, 0, word_len[np.maximum(seq, 0)])
    len_prefix = np.concatenate([[0], np.cumsum(token_len)])
    n_words, start, count = _repeated_windows(seq, cfg.min_count, len(seq))
    length = len_prefix[start + n_words] - len_prefix[start]
    ok = length <= cfg.max_word_tokens
    n_words, start, count, length = n_words[ok], start[ok], count[ok], length[ok]
    order = np.lexsort((count, n_words, start, -(count - 1) * length))
    # Many runs spell the same tokens (or a known word): compare them by the hash of their
    # token string (as the lattice does) and spell out only the first new ones, in order.
    from musicwords.lattice import _BASE, _prefix_hash, _values, _word_hashes  # noqa: PLC0415

    # the tokens the sequence spells (a gather from the words laid end to end)
    flat = np.fromiter(itertools.chain.from_iterable(d.words), dtype=np.int64, count=int(word_len.sum()))
    used = seq[seq >= 0]
    n_used = word_len[used]
    within = np.arange(int(n_used.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_used) - n_used, n_used)
    tokens = flat[np.repeat((np.cumsum(word_len) - word_len)[used], n_used) + within]
    prefix = _prefix_hash(_values(tokens))
    power = np.ones(int(length.max(initial=0)) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(1, len(power)):
            power[k] = power[k - 1] * _BASE
        a = len_prefix[start[order]]
        hashes = prefix[a + length[order]] - prefix[a] * power[length[order]]
    known_list = list(known)
    known_hashes = _word_hashes(
        np.fromiter(itertools.chain.from_iterable(known_list), dtype=np.int64, count=sum(map(len, known_list))),
        np.fromiter(map(len, known_list), dtype=np.int64, count=len(known_list)))
    new = np.flatnonzero(~np.isin(hashes, known_hashes))
    _, first = np.unique(hashes[new], return_index=True)
    ranked = order[new[np.sort(first)]]
    picked = ranked[_one_window_per_repeat(start[ranked], n_words[ranked], count[ranked], len(seq), cfg.merge_candidates)]
    return [(tuple(t for w in seq[int(start[i]) : int(start[i] + n_words[i])].tolist() for t in d.words[w]), int(count[i]))
            for i in picked.tolist()]
