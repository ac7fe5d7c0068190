"""Corpus BLEU (Papineni et al. 2002) exactly as sacrebleu computes it.

`corpus_bleu` reproduces sacrebleu's ``corpus_bleu(..., tokenize="none")``
on the space-joined tokens (Post 2018), its smoothing methods included,
without importing it; a test checks the two agree to 1e-9.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from tinyattn._validate import _show, as_list, check_options, check_size, is_int

SMOOTH_METHODS = ("exp", "none", "floor", "add-k")
MAX_ORDER = 100  # n-grams longer than any sentence count nothing
_FLOOR = 0.1  # sacrebleu's default epsilon for "floor" (Chen & Cherry 2014, method 1)
_ADD_K = 1  # sacrebleu's default k for "add-k" (method 2)
_SENTENCE_TYPES = (list, tuple, np.ndarray)


def _tokens(sentence, name: str) -> tuple:
    """Return one sentence as a tuple of tokens; reject strings and nested lists."""
    if isinstance(sentence, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of tokens, got a {type(sentence).__name__}; "
            f"split it into tokens first (e.g. {name}.split())"
        )
    if not isinstance(sentence, _SENTENCE_TYPES):
        raise TypeError(f"{name} must be a list of tokens, got {type(sentence).__name__}")
    tokens = tuple(sentence)
    for i, tok in enumerate(tokens):
        if isinstance(tok, _SENTENCE_TYPES):
            raise TypeError(
                f"{name}[{i}] must be a token (str or int), got {type(tok).__name__}; "
                f"only corpus_bleu takes several references per hypothesis"
            )
        if not (isinstance(tok, str) or is_int(tok)):  # None, floats, bools: not tokens
            raise TypeError(f"{name}[{i}] must be a token (str or int), got {_show(tok)}")
    return tokens


def _parallel(first, second, names: tuple[str, str], kind: str) -> tuple[list, list]:
    """Check two parallel sequences (not strings) of the same length; return them as lists."""
    first, second = (as_list(seq, name, f"a {kind}") for name, seq in zip(names, (first, second)))
    if len(first) != len(second):
        a, b = names
        raise ValueError(
            f"{a} and {b} must have the same length, got len({a}) = {len(first)} "
            f"and len({b}) = {len(second)}"
        )
    return first, second


def _corpus(hyps, refs) -> tuple[list, list]:
    """Check two parallel corpora: sequences of the same, non-zero length."""
    hyps, refs = _parallel(hyps, refs, ("hyps", "refs"), "list of sentences")
    if not hyps:
        raise ValueError("hyps and refs are empty; a metric needs at least one sentence")
    return hyps, refs


@dataclass(frozen=True)
class BleuScore:
    """Corpus BLEU and the statistics behind it, in sacrebleu's units.

    Attributes
    ----------
    score : float
        BLEU in 0..100.
    precisions : tuple of max_order floats
        Modified (clipped, smoothed) n-gram precisions in percent, n = 1..max_order.
    bp : float
        Brevity penalty.
    ratio : float
        ``hyp_len / ref_len`` (0 when ``ref_len`` is 0, as in sacrebleu).
    hyp_len, ref_len : int
        Corpus hypothesis length c and effective reference length r.
    """

    score: float
    precisions: tuple[float, ...]
    bp: float
    ratio: float
    hyp_len: int
    ref_len: int

    def __str__(self) -> str:
        precs = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"BLEU = {self.score:.2f} (p1..{len(self.precisions)} {precs}, BP {self.bp:.3f}, "
            f"ratio {self.ratio:.3f}, hyp {self.hyp_len}, ref {self.ref_len})"
        )


def _reference_sets(refs) -> list[list[tuple]]:
    """Read refs as one reference per hypothesis or as lists of references.

    The layout is decided once for the whole corpus: multi-reference if
    any entry holds a sentence, single if any holds a token. When every
    entry is empty, each is one empty reference.
    """
    entries = []
    for i, entry in enumerate(refs):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, _SENTENCE_TYPES):
            raise TypeError(
                f"refs[{i}] must be a token list or a list of token lists, "
                f"got {type(entry).__name__}"
            )
        entries.append(list(entry))
    nested = {isinstance(x, _SENTENCE_TYPES) for entry in entries for x in entry}
    if nested == {True, False}:
        raise TypeError(
            "refs mixes the two layouts: give either one token list per hypothesis "
            "or a list of token lists (several references) per hypothesis"
        )
    if True not in nested:
        return [[_tokens(entry, f"refs[{i}]")] for i, entry in enumerate(entries)]
    sets = []
    for i, entry in enumerate(entries):
        if not entry:
            raise ValueError(f"refs[{i}] holds no reference; give at least one per hypothesis")
        sets.append([_tokens(r, f"refs[{i}][{j}]") for j, r in enumerate(entry)])
    return sets


def _ngrams(tokens: tuple, max_order: int) -> Counter:
    """Counts of every n-gram (as a tuple of tokens) with 1 <= n <= max_order."""
    counts = Counter()
    for n in range(1, max_order + 1):
        counts.update(tokens[i : i + n] for i in range(len(tokens) - n + 1))
    return counts


def corpus_bleu(hyps, refs, *, max_order: int = 4, smooth: str = "exp") -> BleuScore:
    """Corpus-level BLEU, numerically equal to sacrebleu's ``corpus_bleu``.

    Parameters
    ----------
    hyps : list of N token lists
    refs : list of N token lists, or list of N lists of token lists
        One reference per hypothesis, or one or more references per hypothesis
        (the number may vary from one hypothesis to the next).
    max_order : int in 1..100, default 4
        N, the longest n-gram counted.
    smooth : {"exp", "none", "floor", "add-k"}, default "exp"
        What to do with an order that has no matching n-gram (see Notes).

    Returns
    -------
    BleuScore

    Notes
    -----
    Statistics are summed over the corpus before any division (Papineni et
    al. 2002)::

        m_n = Σ_i Σ_{g: |g| = n} min(count_hyp_i(g), max_refs count_ref(g))   clipped matches
        t_n = Σ_i (number of n-grams in hyp_i)
        p_n = m_n / t_n
        c   = Σ_i len(hyp_i)
        r   = Σ_i (reference length closest to len(hyp_i); ties -> the shorter)
        BP  = 1 if c > r else exp(1 - r/c)            (0 when c = 0)
        BLEU = 100 · BP · exp(Σ_{n=1..N} (1/N) log p_n)

    Smoothing of an order with ``m_n = 0`` (Chen & Cherry 2014; sacrebleu's
    defaults): "none" keeps p_n = 0, so BLEU = 0; "exp" (the default,
    mteval's NIST smoothing) sets p_n = 1 / (2^k · t_n) where k counts the
    zero-match orders up to and including n; "floor" sets p_n = 0.1 / t_n;
    "add-k" uses (m_n + 1) / (t_n + 1) for every n > 1, matched or not.

    As in sacrebleu (without its ``effective_order``): a corpus with no
    matching n-gram at all scores 0 with every precision 0, and an order
    with no n-grams at all (t_n = 0: only sentences shorter than n) scores
    0 and leaves that and every higher precision at 0 (except for "add-k",
    whose +1 keeps t_n > 0). Tokens are compared as given; the scores
    equal sacrebleu's on ``" ".join(tokens)`` with ``tokenize="none"``
    whenever tokens are non-empty and contain no whitespace.

    References
    ----------
    Papineni, Roukos, Ward and Zhu (2002). BLEU: a method for automatic
    evaluation of machine translation. ACL.
    Chen and Cherry (2014). A systematic comparison of smoothing techniques
    for sentence-level BLEU. WMT.
    Post (2018). A call for clarity in reporting BLEU scores. WMT (sacrebleu).
    """
    max_order = check_size(max_order, "max_order", high=MAX_ORDER)
    check_options("smooth", smooth, SMOOTH_METHODS)
    hyps, refs = _corpus(hyps, refs)
    ref_sets = _reference_sets(refs)
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for i, (hyp, ref_set) in enumerate(zip(hyps, ref_sets)):
        hyp = _tokens(hyp, f"hyps[{i}]")
        m, t, r = _sentence_stats(hyp, ref_set, max_order)
        matches = [a + b for a, b in zip(matches, m)]
        totals = [a + b for a, b in zip(totals, t)]
        hyp_len += len(hyp)
        ref_len += r
    return _bleu_from_stats(matches, totals, hyp_len, ref_len, smooth)


def _sentence_stats(hyp: tuple, ref_set, max_order: int) -> tuple[list, list, int]:
    """One hypothesis's BLEU statistics against its references (checked token tuples).

    Returns ``(matches, totals, ref_len)``: per order n = 1..max_order the
    clipped matches ``Σ_g min(count_hyp(g), max_refs count_ref(g))`` and the
    number of n-grams of ``hyp``; and the reference length closest to
    ``len(hyp)``, a tie going to the shorter (docs/equations.md §11.2).
    """
    best = Counter()
    for ref in ref_set:
        best |= _ngrams(ref, max_order)  # Counter | keeps the max count of each n-gram
    matches, totals = [0] * max_order, [0] * max_order
    for gram, count in _ngrams(hyp, max_order).items():
        totals[len(gram) - 1] += count
        matches[len(gram) - 1] += min(count, best[gram])
    ref_len = min((len(r) for r in ref_set), key=lambda n: (abs(n - len(hyp)), n))
    return matches, totals, ref_len


def _bleu_from_stats(matches, totals, hyp_len, ref_len, smooth) -> BleuScore:
    """BLEU from summed corpus statistics (see `corpus_bleu` for the formulae)."""
    N = len(totals)
    bp = 1.0
    if hyp_len < ref_len:
        bp = math.exp(1.0 - ref_len / hyp_len) if hyp_len > 0 else 0.0
    ratio = hyp_len / ref_len if ref_len > 0 else 0.0
    precisions = [0.0] * N
    if any(matches):
        zero_orders = 0
        for n in range(N):
            m, t = matches[n], totals[n]
            if smooth == "add-k" and n > 0:
                m, t = m + _ADD_K, t + _ADD_K
            if t == 0:
                break  # no n-grams of this order, hence none longer: p_n.. stay 0
            if m > 0:
                precisions[n] = 100.0 * m / t
            elif smooth == "exp":
                zero_orders += 1
                precisions[n] = 100.0 / (2**zero_orders * t)
            elif smooth == "floor":
                precisions[n] = 100.0 * _FLOOR / t
    if min(precisions) > 0.0:
        # geometric mean of the percent precisions, so the score comes out in 0..100
        score = bp * math.exp(sum(math.log(p) for p in precisions) / N)
    else:
        score = 0.0  # log 0 = -inf: one empty order zeroes the geometric mean
    return BleuScore(score, tuple(precisions), bp, ratio, hyp_len, ref_len)



def bleu_signature(*, nrefs, lowercase: bool, tokenizer: str, smooth: str = "exp") -> str:
    """What a BLEU score was computed with, in sacrebleu's signature layout (Post 2018).

    ``nrefs:N|case:lc|eff:no|tok:T|smooth:exp|version:tinyattn-X``. ``nrefs`` is
    an int, or ``"var"`` when sources have different numbers of references;
    ``tokenizer`` names how text became tokens (tinyattn's tokenisers:
    ``"tinyattn-word"``, ``"tinyattn-zh"`` = Chinese characters, Latin runs
    kept whole, ``"tinyattn-char"``); ``eff:no``: no effective order.

    Examples
    --------
    >>> bleu_signature(nrefs=1, lowercase=True, tokenizer="tinyattn-word")[:50]
    'nrefs:1|case:lc|eff:no|tok:tinyattn-word|smooth:ex'
    """
    from tinyattn import __version__

    check_options("smooth", smooth, SMOOTH_METHODS)
    if not (nrefs == "var" or (is_int(nrefs) and nrefs >= 1)):
        raise ValueError(f"nrefs must be a positive int or 'var', got {_show(nrefs)}")
    case = "lc" if lowercase else "mixed"
    return (f"nrefs:{nrefs}|case:{case}|eff:no|tok:{tokenizer}|smooth:{smooth}|"
            f"version:tinyattn-{__version__}")
