"""Lesson 11's exercise: one sentence's BLEU statistics against several references.

The learner counts, for one hypothesis, the clipped n-gram matches and the
n-gram totals per order, and picks the effective reference length; graded
by outputs against the statistics `tinyattn.metrics.corpus_bleu` sums over
a corpus (docs/equations.md §11.2).
"""

from __future__ import annotations

from collections import Counter

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.metrics.bleu import _sentence_stats, _tokens


def _cases(rng):  # fixed sentences: each mistake shows on at least one of them
    del rng
    return [
        ("我我我我我很大 against 我很大 / 我我很大嗎 / 我們都覺得你很大嗎",
         (list("我我我我我很大"), [list("我很大"), list("我我很大嗎"), list("我們都覺得你很大嗎")],
          4)),
        ("他十歲。 against 他十歲 / 他十歲了。 / 他今年十歲。",
         (list("他十歲。"), [list("他十歲"), list("他十歲了。"), list("他今年十歲。")], 4)),
        ("one reference: 你很大嗎？ against 你很大？",
         (list("你很大嗎？"), [list("你很大？")], 4)),
    ]


def _solution(hyp, refs, max_order):
    return _sentence_stats(_tokens(hyp, "hyp"), [_tokens(r, "ref") for r in refs], max_order)


def _grams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _variant(*, clip="max", length="closest"):
    """The statistics with one mistake (the names say which)."""
    def predict(hyp, refs, max_order):
        matches, totals = [], []
        for n in range(1, max_order + 1):
            mine = _grams(hyp, n)
            ref_counts = [_grams(r, n) for r in refs]
            best = Counter()
            for c in ref_counts:
                best |= c
            total = sum(ref_counts, Counter())
            m = 0
            for gram, count in mine.items():
                if clip == "max":
                    m += min(count, best[gram])
                elif clip == "none":
                    m += count if best[gram] else 0
                elif clip == "first":
                    m += min(count, ref_counts[0][gram])
                elif clip == "sum":
                    m += min(count, total[gram])
            matches.append(m)
            totals.append(sum(mine.values()))
        lens = [len(r) for r in refs]
        if length == "longest":
            ref_len = max(lens)
        else:  # the closest; ties to the shorter, or (the mistake) to the longer
            sign = 1 if length == "closest" else -1
            ref_len = min(lens, key=lambda k: (abs(k - len(hyp)), sign * k))
        return matches, totals, ref_len
    return predict


def bleu_sentence_stats(hyp, refs, max_order):
    """One hypothesis's BLEU statistics against its references.

    hyp: a list of tokens; refs: a list of token lists (one or more references);
    max_order: N, the longest n-gram counted. Returns (matches, totals, ref_len):
        matches[n-1] = Σ_{n-grams g of hyp} min(count_hyp(g), max over refs of count_ref(g))
        totals[n-1]  = the number of n-grams of hyp (len(hyp) − n + 1, or 0)
        ref_len      = the reference length closest to len(hyp) (a tie: the shorter)
    """
    raise NotImplementedError  # your code here


BLEU_STATS = OutputExercise(
    "bleu_sentence_stats",
    "matches, totals, ref_len = bleu_sentence_stats(hyp, refs, max_order)",
    _solution,
    _cases,
    ("matches", "totals", "ref_len"),
    "docs/equations.md §11.2 (Papineni et al. 2002): m_n clips each n-gram's count by its "
    "largest count in any one reference; r is the closest reference length, ties to the shorter",
    [
        Bug("n-gram counts not clipped",
            "an n-gram the hypothesis repeats counts at most as often as it occurs in a "
            "reference: min(count_hyp(g), max_ref count_ref(g)), else 我我我我 scores 4 of 4",
            _variant(clip="none")),
        Bug("counts clipped against the first reference only",
            "with several references, the clip is the n-gram's largest count in any one of "
            "them (max over the references), so another valid translation also gets credit",
            _variant(clip="first")),
        Bug("counts clipped against the sum over the references",
            "the clip is the largest count in any one reference, not the total over all of "
            "them (which would let a hypothesis repeat a word once per reference)",
            _variant(clip="sum")),
        Bug("reference length taken as the longest reference",
            "the brevity penalty uses the reference length closest to the hypothesis's "
            "(a tie goes to the shorter), not the longest",
            _variant(length="longest")),
        Bug("a tie in reference length goes to the longer reference",
            "two references equally close to the hypothesis's length: take the shorter "
            "(as sacrebleu does)",
            _variant(length="tie-longer")),
    ],
    starter=bleu_sentence_stats,
)

EXERCISES = [BLEU_STATS]
