"""One call from notes to music-words: voices → tokens → dictionary (stage 1) → patterns (stage 2).

Examples
--------
>>> from musicwords.synthetic import planted_corpus
>>> corpus = planted_corpus(seed=0, n_pieces=4, n_motifs=2)
>>> result = discover(corpus.pieces, DiscoverConfig.debug())
>>> len(result.patterns) >= 2
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from musicwords.em import Dictionary, EMConfig, learn_dictionary
from musicwords.idiom import IdiomModel
from musicwords.merges import counting_dictionary, frequent_merges
from musicwords.notes import Notes, NotesError
from musicwords.reconstruct import Occurrence, Pattern, check_significance, fill_bars, find_occurrences, motifs, patterns
from musicwords.tokens import Alphabet, TokenConfig, TokenStreams, tokenize
from musicwords.variants import VariantFinder
from musicwords.voices import METHODS, Streams, in_melody, separate_voices

__all__ = ["MOTIF_WORDS", "DiscoverConfig", "DiscoverResult", "discover", "joined", "motif_bars_arg"]

MOTIF_WORDS = ("both", "mdl", "merges")  # where the motif layer's candidates come from (DiscoverConfig.motif_words)


@dataclass(frozen=True)
class DiscoverConfig:
    """Every setting of the pipeline, with defaults used for all corpora alike."""

    voices: str = "lines"  # "lines" (line-following separation) | "skyline"
    max_voices: int = 4  # lines per part
    tokens: TokenConfig = field(default_factory=TokenConfig)
    em: EMConfig = field(default_factory=EMConfig)
    min_pattern_notes: int = 5  # shorter words are cells, not reported as patterns
    extend: str = "maximal"  # occurrences take the notes that recur with them: co-sounding, and before/after (SIA's MTP)
    min_share: float = 1.0  # ... in every other occurrence (a translatable pattern, as in SIA)
    top_patterns: int | None = None  # report at most this many (None: every word that saves bits)
    select: str = "coverage"  # which patterns are reported (see reconstruct.patterns); "new_bits": by conditional code length
    coverage: float = 1.0  # for select="coverage": the patterns that together make this share of the bits saved
    significance: float | None = 0.05  # report a word only if its saving is this unlikely by chance (see reconstruct.patterns)
    null: str = "unigram"  # savings over: "unigram" (the base token model) | "markov" (musicwords.idiom)
    variants: bool = True  # patterns also take their word's varied statements (musicwords.variants)
    motif_ratio: float | None = 2.0  # the motif layer: words down to this compression ratio (reconstruct.motifs); None: none
    min_motif_notes: int = 4  # shortest motif (notes)
    max_motif_notes: int | None = 16  # longest motif (notes): a motif is short (None: no bound)
    texture: bool = True  # the motif layer leaves out figuration: a cell in place, lines alternating (reconstruct.in_place)
    # a motif is heard as melody at least once (voices.in_melody: on top of the texture, or in a
    # part that is one line): figures only ever heard under a keyboard melody are accompaniment
    motif_in_melody: bool = True
    # the motif layer's streams: "skyline", the top line of each part (a motif is heard in the
    # line a listener follows; the accompaniment's lines are figuration), or another voices
    # method; None: the patterns' streams
    motif_voices: str | None = "skyline"
    # the motif layer's candidate words: "mdl", a dictionary learnt like the patterns' (its words
    # are cut where the shortest description cuts the music, but its long words hide the motifs
    # inside them); "merges", the commonest adjacent pair merged while it is heard 3 times or
    # more, into words of at most max_motif_notes (musicwords.merges: every unit heard often, at
    # every length; each must then be heard more often than the idiom of the music predicts); or
    # "both": the motifs among the MDL dictionary's words first, then those among the merges in
    # the notes they leave
    motif_words: str = "both"
    # the motif layer's candidates are made of these tokens: scale steps, so that a sequence or a
    # tonal answer states the same motif (sections recur literally: the patterns keep `tokens`);
    # None: the patterns' tokens (and with motif_words="mdl", motif_voices=None, their dictionary)
    motif_tokens: TokenConfig | None = field(default_factory=lambda: TokenConfig(pitch="diatonic"))
    # a motif shorter than this many measures of its metre has each statement filled out along
    # its stream to that length (reconstruct.fill_bars: a motif is a bar or so, with the notes
    # that close its figure); pieces without measures are left as they are. None: as found
    motif_bars: float | None = 1.0

    def __post_init__(self) -> None:
        check_significance(self.significance)
        if self.null not in ("markov", "unigram"):
            raise ValueError(f"null must be 'markov' or 'unigram', got {self.null!r}")
        if self.motif_ratio is not None and not self.motif_ratio > 1:
            raise ValueError(f"motif_ratio must be > 1 (a motif shortens what it describes) or None, got {self.motif_ratio}")
        if self.motif_bars is not None and not self.motif_bars > 0:
            raise ValueError(f"motif_bars must be > 0 (measures) or None, got {self.motif_bars}")
        if self.min_motif_notes < 2:
            raise ValueError(f"min_motif_notes must be >= 2, got {self.min_motif_notes}")
        if self.max_motif_notes is not None and self.max_motif_notes < self.min_motif_notes:
            raise ValueError(f"max_motif_notes must be >= min_motif_notes ({self.min_motif_notes}) or None, "
                             f"got {self.max_motif_notes}")
        if self.motif_words not in MOTIF_WORDS:
            raise ValueError(f"motif_words must be one of {MOTIF_WORDS}, got {self.motif_words!r}")
        if self.voices not in METHODS:
            raise ValueError(f"voices must be one of {METHODS}, got {self.voices!r}")
        if self.motif_voices is not None and self.motif_voices not in METHODS:
            raise ValueError(f"motif_voices must be one of {METHODS} or None, got {self.motif_voices!r}")

    @classmethod
    def debug(cls) -> DiscoverConfig:
        return cls(em=EMConfig.debug())


@dataclass
class DiscoverResult:
    pieces: list[Notes]
    streams: list[Streams]
    tokens: TokenStreams
    dictionary: Dictionary
    occurrences: list[Occurrence]
    patterns: list[Pattern]  # what saves the most bits: themes, phrases, repeated sections (reconstruct.patterns)
    motifs: list[Pattern] = field(default_factory=list)  # the motif layer (reconstruct.motifs)
    motif_dictionary: Dictionary | None = None  # the dictionary of the motifs' words, where not ``dictionary``

    @property
    def motif_words(self) -> Dictionary:
        """The dictionary the motifs' word ids refer to."""
        return self.motif_dictionary or self.dictionary


def motif_bars_arg(text: str) -> float | None:
    """``--motif-bars`` on a command line: a number of measures (> 0), or ``none``."""
    import argparse  # noqa: PLC0415

    try:
        value = None if text.lower() == "none" else float(text)
        DiscoverConfig(motif_bars=value)  # its own check
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def discover(pieces: list[Notes], config: DiscoverConfig | None = None, *,
             progress: Callable[[str], None] | None = None,
             learn: Callable[[TokenStreams, Alphabet], Dictionary] | None = None,
             streams: list[Streams] | None = None) -> DiscoverResult:
    """Learn one dictionary over ``pieces`` and reconstruct each of them with it (and the motif
    layer's own dictionary, on ``config.motif_tokens``).

    ``learn`` replaces stage 1 (EM under MDL) with another dictionary builder, so that baselines
    run through the same voices, tokens, reconstruction and reporting (and a job can run the
    E-step elsewhere); the motif layer uses it for its MDL dictionary (``config.motif_words``
    ``"mdl"`` or ``"both"``). ``streams``, one per piece, are voices separated beforehand (with
    the settings of ``config``); by default they are separated here.
    """
    cfg = config or DiscoverConfig()
    if not pieces:
        raise ValueError("no pieces given")
    if streams is None:
        streams = [separate_voices(n, method=cfg.voices, max_voices=cfg.max_voices) for n in pieces]
    elif len(streams) != len(pieces):
        raise ValueError(f"streams: got {len(streams)} for {len(pieces)} pieces; give one Streams per piece")
    alphabet = Alphabet(config=cfg.tokens)
    tokens = tokenize(list(zip(pieces, streams, strict=True)), alphabet)
    if tokens.n_tokens == 0:
        names = ", ".join(n.piece_id for n in pieces[:5])
        raise NotesError(f"{names}: too few notes to find patterns (every voice has fewer than two notes)")

    def learned(tokens: TokenStreams, alphabet: Alphabet, say: Callable[[str], None] | None, merged: bool = False,
                beside: _Layer | None = None) -> _Layer:
        """A dictionary of ``tokens`` and what the reporting needs of it (the variant finder and the
        idiom model of the same streams taken from ``beside``, another dictionary's layer, where given)."""
        if merged:  # frequency merges: every unit heard 3 times or more, the idiom's among them
            longest = None if cfg.max_motif_notes is None else max(cfg.max_motif_notes - 1, 2)  # tokens: notes - 1
            d = counting_dictionary(tokens.tokens, alphabet, frequent_merges(tokens.tokens, min_count=3, max_length=longest))
        elif learn is None:
            d = learn_dictionary(tokens, alphabet, cfg.em, progress=say)
        else:
            d = learn(tokens, alphabet)
        # savings over the null of config.null; frequency-merged words instead save over the base
        # token model and must be heard more often than the idiom predicts (reconstruct.motifs)
        counted = merged and cfg.significance is not None  # the count test runs at the significance level
        idiom = (beside.null or beside.idiom) if beside else None
        if idiom is None and (cfg.null == "markov" or counted):
            idiom = IdiomModel(tokens.tokens, len(alphabet))
        variants = beside.variants if beside else VariantFinder.of(tokens, alphabet) if cfg.variants else None
        return _Layer(d, find_occurrences(d, tokens, pieces), None if merged or cfg.null != "markov" else idiom,
                      variants, idiom if merged else None)

    main = learned(tokens, alphabet, progress)
    found = patterns(main.dictionary, main.occurrences, pieces, top=cfg.top_patterns, min_notes=cfg.min_pattern_notes,
                     extend=cfg.extend, min_share=cfg.min_share, coverage=cfg.coverage, select=cfg.select,
                     significance=cfg.significance, null=main.null, variants=main.variants)
    layer: list[Pattern] = []
    own: Dictionary | None = None
    if cfg.motif_ratio is not None:
        min_ratio = cfg.motif_ratio
        motif_tokens = cfg.motif_tokens or cfg.tokens
        motif_streams = streams
        if cfg.motif_voices not in (None, cfg.voices):
            motif_streams = [separate_voices(n, method=cfg.motif_voices, max_voices=cfg.max_voices) for n in pieces]
        same = motif_tokens == cfg.tokens and motif_streams is streams  # the patterns' token streams
        motif_alphabet = alphabet if same else Alphabet(config=motif_tokens)
        heard = tokens if same else tokenize(list(zip(pieces, motif_streams, strict=True)), motif_alphabet)
        say = (lambda line: progress(f"motif dictionary: {line}")) if progress else None
        melody = [in_melody(n) for n in pieces] if cfg.motif_in_melody else None
        held: set[tuple[int, int]] = set()  # the notes the motifs chosen so far take

        def chosen(on: _Layer) -> list[Pattern]:
            return motifs(on.dictionary, on.occurrences, min_notes=cfg.min_motif_notes, max_notes=cfg.max_motif_notes,
                          min_ratio=min_ratio, significance=cfg.significance, null=on.null, variants=on.variants,
                          texture=cfg.texture, idiom=on.idiom, melody=melody, held=held)  # adds to held

        coded = None  # the MDL dictionary's layer, whose motifs are chosen first
        if cfg.motif_words in ("mdl", "both"):
            coded = main if same else learned(heard, motif_alphabet, say)
            layer = chosen(coded)
            own = None if coded is main else coded.dictionary
        if cfg.motif_words in ("merges", "both"):
            merged = learned(heard, motif_alphabet, say, merged=True, beside=coded)
            if coded is None:
                layer, own = chosen(merged), merged.dictionary
            else:  # one dictionary for the layer: the merged words join the MDL dictionary's
                own, ids = joined(coded.dictionary, merged.dictionary)
                layer += [dataclasses.replace(p, word=int(ids[p.word]), parts=tuple(int(ids[w]) for w in p.parts))
                          for p in chosen(merged)]
        if cfg.motif_bars is not None:
            layer = fill_bars(layer, pieces, motif_streams, cfg.motif_bars)
    return DiscoverResult(pieces, streams, tokens, main.dictionary, main.occurrences, found, layer, own)


def joined(first: Dictionary, second: Dictionary) -> tuple[Dictionary, np.ndarray]:
    """One dictionary of the words of ``first`` (their ids kept) and then those of ``second`` that
    ``first`` lacks, and the id there of each word of ``second``. Both spell their words in one
    alphabet. Each word keeps its probability (and expected count) in the dictionary that proposed
    it, so the probabilities of the whole no longer sum to one; the code-length figures and the
    history are ``first``'s.

    Examples
    --------
    >>> import numpy as np
    >>> from musicwords.merges import counting_dictionary
    >>> from musicwords.tokens import Alphabet
    >>> a = Alphabet(symbols=[(1, 1), (2, 1)])
    >>> t = np.array([0, 1, 0, 1, 0, 0, 0])
    >>> both, ids = joined(counting_dictionary(t, a, [(0, 1)]), counting_dictionary(t, a, [(0, 0), (0, 1)]))
    >>> both.words, ids.tolist()
    ([(0,), (1,), (0, 1), (0, 0)], [0, 1, 3, 2])
    """
    if first.alphabet.symbols != second.alphabet.symbols or first.n_literals != second.n_literals:
        raise ValueError("joined: the two dictionaries spell their words in different alphabets")
    index = {w: i for i, w in enumerate(first.words)}
    ids = np.array([index.get(w, -1) for w in second.words], dtype=np.int64)
    new = np.flatnonzero(ids < 0)
    ids[new] = len(first.words) + np.arange(len(new))
    both = dataclasses.replace(first, words=first.words + [second.words[i] for i in new.tolist()],
                               logp=np.concatenate([first.logp, second.logp[new]]),
                               counts=np.concatenate([first.counts, second.counts[new]]))
    return both, ids


@dataclass
class _Layer:
    """A dictionary and what the reporting needs of it."""

    dictionary: Dictionary
    occurrences: list[Occurrence]
    null: IdiomModel | None
    variants: VariantFinder | None
    idiom: IdiomModel | None = None  # the count test of frequency-merged candidates (reconstruct.motifs)

