"""Metrics: hand-computed BLEU cases, a cross-check against sacrebleu, and the small metrics."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyattn.metrics.accuracy import (
    SMOOTH_METHODS,
    BleuScore,
    alignment_accuracy,
    attention_entropy,
    corpus_bleu,
    exact_match,
    token_accuracy,
)


def toks(*sentences):
    return [s.split() for s in sentences]


# ----------------------------------------------------------------- BLEU by hand


def test_identical_corpus_scores_100():
    corpus = toks("the cat sat on the mat", "a dog ran away", "hello there my friend")
    b = corpus_bleu(corpus, corpus)
    assert b.score == pytest.approx(100.0, abs=1e-12)
    assert b.precisions == (100.0, 100.0, 100.0, 100.0)
    assert (b.bp, b.ratio, b.hyp_len, b.ref_len) == (1.0, 1.0, 14, 14)


def test_two_sentence_corpus_by_hand():
    hyps = toks("the cat sat on the mat", "a dog ran")
    refs = toks("the cat sat on a mat", "the dog ran away")
    # Sentence 1 (6 tokens vs 6):
    #   1-grams: the×2 cat sat on mat; "the" clipped to its ref count 1     -> 5 / 6
    #   2-grams: the cat, cat sat, sat on | on the, the mat                  -> 3 / 5
    #   3-grams: the cat sat, cat sat on | sat on the, on the mat            -> 2 / 4
    #   4-grams: the cat sat on | cat sat on the, sat on the mat             -> 1 / 3
    # Sentence 2 (3 tokens vs 4):
    #   1-grams: dog ran | a -> 2 / 3;  2-grams: dog ran | a dog -> 1 / 2
    #   3-grams: a dog ran -> 0 / 1;    4-grams: none -> 0 / 0
    # Corpus: p = 7/9, 4/7, 2/5, 1/3;  c = 9, r = 10, BP = exp(1 - 10/9) = 0.894839
    # BLEU = 100 · BP · (7/9 · 4/7 · 2/5 · 1/3)^(1/4) = 100 · BP · (56/945)^(1/4) = 44.1503
    b = corpus_bleu(hyps, refs)
    expected_p = (700 / 9, 400 / 7, 40.0, 100 / 3)
    assert b.precisions == pytest.approx(expected_p, rel=1e-12)
    assert b.bp == pytest.approx(math.exp(-1 / 9), rel=1e-12)
    assert b.score == pytest.approx(100 * math.exp(-1 / 9) * (56 / 945) ** 0.25, rel=1e-12)
    assert b.score == pytest.approx(44.15034607719596, rel=1e-12)
    assert (b.hyp_len, b.ref_len) == (9, 10)
    assert b.ratio == pytest.approx(0.9)
    # no zero-match order, so the smoothing choice changes nothing
    for smooth in ("none", "floor"):
        assert corpus_bleu(hyps, refs, smooth=smooth).score == pytest.approx(b.score, rel=1e-12)


def test_brevity_penalty():
    # every hypothesis n-gram matches (p_n = 100), but c = 5, r = 10: BP = exp(1 - 2) = 1/e
    b = corpus_bleu(toks("a b c d e"), toks("a b c d e f g h i j"))
    assert b.precisions == (100.0, 100.0, 100.0, 100.0)
    assert b.bp == pytest.approx(math.exp(-1.0), rel=1e-12)
    assert b.score == pytest.approx(100 / math.e, rel=1e-12)
    # a longer hypothesis is not penalised by BP (only by its precisions)
    assert corpus_bleu(toks("a b c d e f"), toks("a b c d e")).bp == 1.0


def test_zero_4gram_matches_smoothing():
    hyps, refs = toks("a b c d e"), toks("a b c x d e")
    # 1-grams 5/5; 2-grams ab bc de | cd -> 3/4; 3-grams abc | bcd cde -> 1/3;
    # 4-grams abcd bcde vs abcx bcxd cxde -> 0/2.  c = 5, r = 6, BP = exp(-0.2)
    bp = math.exp(-0.2)
    # exp: first zero order gets 1/(2^1 · t_4) = 1/4; (1 · 3/4 · 1/3 · 1/4)^(1/4) = 1/2
    b = corpus_bleu(hyps, refs, smooth="exp")
    assert b.precisions == pytest.approx((100.0, 75.0, 100 / 3, 25.0), rel=1e-12)
    assert b.score == pytest.approx(100 * bp * 0.5, rel=1e-12)
    # none: p_4 = 0 -> BLEU 0
    b = corpus_bleu(hyps, refs, smooth="none")
    assert b.precisions[3] == 0.0 and b.score == 0.0
    # floor: p_4 = 0.1 / 2
    b = corpus_bleu(hyps, refs, smooth="floor")
    assert b.score == pytest.approx(100 * bp * (0.75 / 3 * 0.05) ** 0.25, rel=1e-12)
    # add-k: (m+1)/(t+1) for n > 1: 4/5, 2/4, 1/3
    b = corpus_bleu(hyps, refs, smooth="add-k")
    assert b.precisions == pytest.approx((100.0, 80.0, 50.0, 100 / 3), rel=1e-12)
    assert b.score == pytest.approx(100 * bp * (0.8 * 0.5 / 3) ** 0.25, rel=1e-12)


def test_exp_smoothing_halves_again_for_each_zero_order():
    # 1-grams 4/4; 2-grams ab cd | bc -> 2/3; 3-grams 0/2; 4-grams 0/1
    # exp: p_3 = 1/(2 · 2) and p_4 = 1/(4 · 1); product 2/3 · 1/16 = 1/24; BP = exp(1 - 5/4)
    b = corpus_bleu(toks("a b c d"), toks("a b x c d"))
    assert b.precisions == pytest.approx((100.0, 200 / 3, 25.0, 25.0), rel=1e-12)
    assert b.score == pytest.approx(100 * math.exp(-0.25) * (1 / 24) ** 0.25, rel=1e-12)


def test_multi_reference_clipping_and_closest_length():
    # "a" appears twice in the hypothesis; the max over references allows two
    hyp = toks("a a b")
    b1 = corpus_bleu(hyp, [toks("a b c", "a a c")])
    assert b1.precisions[0] == pytest.approx(100.0)
    assert corpus_bleu(hyp, toks("a b c")).precisions[0] == pytest.approx(200 / 3)
    # hypothesis of length 5, references of lengths 4 and 6: tie -> the shorter (4)
    b2 = corpus_bleu(toks("a b c d e"), [toks("a b c d", "a b c d e f")])
    assert (b2.hyp_len, b2.ref_len, b2.bp) == (5, 4, 1.0)
    assert b2.score == pytest.approx(100.0)
    # the number of references may vary per hypothesis
    b3 = corpus_bleu(toks("a b", "c d"), [toks("a b"), toks("x y z", "c d")], max_order=2)
    assert b3.score == pytest.approx(100.0) and b3.ref_len == 4


def test_empty_and_short_hypotheses():
    # all hypotheses empty: c = 0, no division error, BLEU 0, BP 0
    b = corpus_bleu([[], []], toks("a b", "c"))
    assert (b.score, b.bp, b.hyp_len, b.ref_len, b.ratio) == (0.0, 0.0, 0, 3, 0.0)
    assert b.precisions == (0.0, 0.0, 0.0, 0.0)
    # empty references too: r = 0, ratio defined as 0
    b = corpus_bleu([[]], [[]])
    assert (b.score, b.ratio, b.bp) == (0.0, 0.0, 1.0)
    # only 3-token sentences: no 4-grams at all (t_4 = 0), so BLEU is 0 even with
    # exp smoothing, and p_4 stays 0 (sacrebleu without effective_order)
    b = corpus_bleu(toks("a b c"), toks("a b c"))
    assert b.precisions == (100.0, 100.0, 100.0, 0.0) and b.score == 0.0
    # ... but max_order=3 scores it 100
    assert corpus_bleu(toks("a b c"), toks("a b c"), max_order=3).score == pytest.approx(100.0)
    # add-k's +1 keeps t_4 > 0: p_4 = 1/1
    assert corpus_bleu(toks("a b c"), toks("a b c"), smooth="add-k").score == pytest.approx(100)


def test_bleu_str_and_frozen():
    b = BleuScore(34.2123, (70.0, 45.5, 30.1, 20.0), 0.95123, 0.95238, 120, 126)
    assert str(b) == (
        "BLEU = 34.21 (p1..4 70.0/45.5/30.1/20.0, BP 0.951, ratio 0.952, hyp 120, ref 126)"
    )
    with pytest.raises(AttributeError):
        b.score = 1.0
    assert str(corpus_bleu(toks("a b"), toks("a b"), max_order=2)).startswith(
        "BLEU = 100.00 (p1..2 100.0/100.0,"
    )


def test_bleu_bad_input():
    with pytest.raises(ValueError, match=r"len\(hyps\) = 2 and len\(refs\) = 1"):
        corpus_bleu(toks("a", "b"), toks("a"))
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match="smooth must be one of"):
        corpus_bleu(toks("a"), toks("a"), smooth="expo")
    with pytest.raises(ValueError, match="max_order"):
        corpus_bleu(toks("a"), toks("a"), max_order=0)
    with pytest.raises(TypeError, match=r"hyps\[0\] must be a list of tokens"):
        corpus_bleu(["a b"], toks("a b"))
    with pytest.raises(TypeError, match="mixes the two layouts"):
        corpus_bleu(toks("a", "b"), [["a"], [["b"]]])
    with pytest.raises(ValueError, match=r"refs\[1\] holds no reference"):
        corpus_bleu(toks("a", "b"), [[["a"]], []])


# ------------------------------------------------------- cross-check: sacrebleu

VOCAB = list("abcdef")  # small, so n-grams of every order overlap


def random_corpus(rng, n_refs):
    n = int(rng.integers(1, 7))

    def sentence():
        # lengths 0..3 are common, so short sentences and t_n = 0 orders occur
        length = int(rng.choice([0, 1, 2, 3, 4, 6, 8, 12]))
        return [str(t) for t in rng.choice(VOCAB, length)]

    hyps = [sentence() for _ in range(n)]
    refs = [[sentence() for _ in range(n_refs)] for _ in range(n)]
    for i in range(n):  # half the time make the hypothesis a noisy copy of a reference
        if rng.random() < 0.5 and refs[i][0]:
            hyps[i] = [t if rng.random() < 0.8 else str(rng.choice(VOCAB)) for t in refs[i][0]]
    return hyps, refs


def sacre(hyps, refs, smooth, max_order, n_refs):
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize="none", smooth_method=smooth, max_ngram_order=max_order)
    streams = [[" ".join(r[k]) for r in refs] for k in range(n_refs)]
    return metric.corpus_score([" ".join(h) for h in hyps], streams)


def assert_same(ours, theirs):
    assert ours.score == pytest.approx(theirs.score, rel=0, abs=1e-9)
    assert ours.precisions == pytest.approx(theirs.precisions, rel=0, abs=1e-9)
    assert ours.bp == pytest.approx(theirs.bp, rel=0, abs=1e-12)
    assert ours.ratio == pytest.approx(theirs.ratio, rel=0, abs=1e-12)
    assert (ours.hyp_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)


@pytest.mark.parametrize("smooth", SMOOTH_METHODS)
@pytest.mark.parametrize("n_refs", [1, 3])
def test_matches_sacrebleu_on_random_corpora(smooth, n_refs):
    pytest.importorskip("sacrebleu")
    rng = np.random.default_rng(1000 * n_refs + SMOOTH_METHODS.index(smooth))
    seen = {"positive": 0, "zero": 0, "bp<1": 0, "zero-match order": 0}
    for trial in range(150):
        hyps, refs = random_corpus(rng, n_refs)
        max_order = 4 if trial % 3 else int(rng.integers(1, 6))
        # single-reference layout for n_refs == 1, the list-of-references layout otherwise
        ours_refs = [r[0] for r in refs] if n_refs == 1 else refs
        ours = corpus_bleu(hyps, ours_refs, max_order=max_order, smooth=smooth)
        theirs = sacre(hyps, refs, smooth, max_order, n_refs)
        assert_same(ours, theirs)
        seen["positive" if ours.score > 0 else "zero"] += 1
        seen["bp<1"] += ours.bp < 1
        seen["zero-match order"] += ours.score > 0 and 0 in theirs.counts[:max_order]
    # the corpora exercise every branch, so the comparison means something
    assert seen["positive"] > 40 and seen["zero"] > 0 and seen["bp<1"] > 20
    if smooth != "add-k":  # add-k is 0 only when nothing matches; the others also on t_n = 0
        assert seen["zero"] > 5
    if smooth in ("exp", "floor"):
        assert seen["zero-match order"] > 5


def test_matches_sacrebleu_with_variable_reference_counts():
    pytest.importorskip("sacrebleu")
    from sacrebleu.metrics import BLEU

    rng = np.random.default_rng(7)
    for _ in range(50):
        hyps, refs = random_corpus(rng, 3)
        refs = [r[: int(rng.integers(1, 4))] for r in refs]  # 1..3 references each
        # sacrebleu takes None for a missing reference in a stream
        streams = [[" ".join(r[k]) if k < len(r) else None for r in refs] for k in range(3)]
        theirs = BLEU(tokenize="none").corpus_score([" ".join(h) for h in hyps], streams)
        assert_same(corpus_bleu(hyps, refs), theirs)


def _chinese_sentences():
    """The phrasebook's and the fixtures' Chinese, with every Chinese sentence
    of cmn-eng when TINYATTN_DATA holds it, and the hard cases of the zh rules."""
    import os
    from pathlib import Path

    from tinyattn.data import read_pairs

    root = Path(__file__).resolve().parents[1]
    files = [root / "data" / "phrasebook_en_zh.tsv", root / "tests/fixtures/pairs_en_zh.tsv"]
    real = Path(os.environ.get("TINYATTN_DATA", "/nonexistent")) / "cmn-eng.tsv"
    files += [real] if real.is_file() else []
    sentences = [p.tgt for f in files for p in read_pairs(f)[0]]
    return sentences + ["它將花費大約10,000日元。", "能不能請你告訴我Wi-Fi的密碼呢?",
                        "it's和its是有分别的。", "3-4点", "1,000.5元", "e-mail"]


def test_zh_tokens_are_sacrebleus():
    """tokenize(..., "zh") splits as sacrebleu's tokenize="zh", so BLEU on these
    tokens is sacrebleu's BLEU with tok:zh (to 1e-9, on every sentence we have)."""
    pytest.importorskip("sacrebleu")
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    from tinyattn.data import detokenize, tokenize

    sentences = _chinese_sentences()
    theirs = TokenizerZh()
    assert [tokenize(s, "zh") for s in sentences] == [theirs(s).split() for s in sentences]
    rng = np.random.default_rng(3)
    refs = [tokenize(s, "zh") for s in sentences]
    hyps = [[t for t in r if rng.random() > 0.2] for r in refs]  # ~20 % of tokens dropped
    ours = corpus_bleu(hyps, refs).score
    score = BLEU(tokenize="zh").corpus_score([detokenize(h, "zh") for h in hyps],
                                             [sentences]).score
    assert abs(ours - score) < 1e-9 and 10 < ours < 90


def test_closest_reference_length_sets_the_brevity_penalty():
    # with several references, r is the closest reference length (as sacrebleu): an
    # almost-right BLEU that used the first reference's length would get a BP below 1 here
    hyps, refs = toks("a b c d e"), [toks("a b c d e f g h", "a b c d e")]
    assert corpus_bleu(hyps, refs).bp == 1.0
    assert corpus_bleu(hyps, [r[0] for r in refs]).bp < 1.0


# ------------------------------------------------- exact match, token accuracy


def test_exact_match():
    hyps = toks("a b c", "a b", "x")
    refs = toks("a b c", "a b c", "x")
    assert exact_match(hyps, refs) == pytest.approx(2 / 3)
    assert exact_match([[]], [[]]) == 1.0
    assert exact_match([[1, 2], (3,)], [np.array([1, 2]), [4]]) == 0.5  # token ids work too


def test_token_accuracy():
    # ref lengths 3 + 4 = 7; correct: a b c (3), then "a" and "q" vs "z" (1);
    # hyp 1's extra "d" is ignored; hyp 2 misses positions 2 and 3
    hyps = toks("a b c d", "a q")
    refs = toks("a b c", "a z y w")
    assert token_accuracy(hyps, refs) == pytest.approx(4 / 7)
    assert token_accuracy([[]], [["a", "b"]]) == 0.0


@pytest.mark.parametrize("metric", [exact_match, token_accuracy])
def test_small_metrics_bad_input(metric):
    with pytest.raises(ValueError, match=r"len\(hyps\) = 1 and len\(refs\) = 2"):
        metric(toks("a"), toks("a", "b"))
    with pytest.raises(ValueError, match="empty"):
        metric([], [])
    with pytest.raises(TypeError, match=r"refs\[0\] must be a list of tokens"):
        metric(toks("a"), ["a"])
    with pytest.raises(TypeError, match=r"refs\[0\]\[0\] must be a token"):
        metric(toks("a"), [toks("a")])  # several references: corpus_bleu only


def test_token_accuracy_needs_reference_tokens():
    with pytest.raises(ValueError, match="no tokens"):
        token_accuracy([["a"]], [[]])


# ------------------------------------------------------------ alignment accuracy


def test_alignment_accuracy():
    alpha0 = np.array([[0.7, 0.2, 0.1],   # argmax 0, gold (0, 1): hit
                       [0.1, 0.3, 0.6],   # argmax 2, gold (1, 2): miss
                       [0.2, 0.5, 0.3],   # gold None: skipped
                       [0.1, 0.1, 0.8]])  # argmax 2, gold (1, 3): hit
    alpha1 = np.array([[0.1, 0.9]])       # argmax 1, gold (1, 2): hit; t = 1 has no row: miss
    golds = [[(0, 1), (1, 2), None, (1, 3)], [(1, 2), (0, 1)]]
    assert alignment_accuracy([alpha0, alpha1], golds) == pytest.approx(3 / 5)
    # rows past the gold list are ignored
    assert alignment_accuracy([alpha0], [[(0, 1)]]) == 1.0
    # ties go to the first maximum
    assert alignment_accuracy([np.array([[0.5, 0.5]])], [[(0, 1)]]) == 1.0


def test_alignment_accuracy_bad_input():
    a = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"alphas\[0\] must have shape \(T, S\), got \(3,\)"):
        alignment_accuracy([a[0]], [[(0, 1)]])
    with pytest.raises(ValueError, match=r"len\(alphas\) = 1 and len\(golds\) = 2"):
        alignment_accuracy([a], [[(0, 1)], [(0, 1)]])
    with pytest.raises(ValueError, match="no gold span"):
        alignment_accuracy([a], [[None, None]])
    with pytest.raises(ValueError, match="no gold span"):
        alignment_accuracy([], [])
    with pytest.raises(ValueError,
                       match=r"golds\[0\]\[1\] must be a half-open .*0 <= start < end <= 3"):
        alignment_accuracy([a], [[(0, 1), (2, 4)]])
    with pytest.raises(ValueError, match="start < end"):
        alignment_accuracy([a], [[(1, 1)]])
    with pytest.raises(TypeError, match=r"golds\[0\]\[0\] must be None or a \(start, end\)"):
        alignment_accuracy([a], [[1]])
    with pytest.raises(ValueError, match="NaN"):
        alignment_accuracy([np.array([[np.nan, 1.0]])], [[(0, 1)]])


# ------------------------------------------------------------- attention entropy


def test_entropy_uniform_and_one_hot():
    for n in (1, 2, 5, 17):
        assert attention_entropy(np.full(n, 1 / n)) == pytest.approx(math.log(n), abs=1e-12)
    one_hot = np.eye(4)[[2, 0, 3]]  # (3, 4)
    h = attention_entropy(one_hot)
    assert h.shape == (3,) and np.array_equal(h, np.zeros(3))
    assert not np.signbit(h).any()  # 0·log 0 = 0 and no -0.0
    # any leading dims: (B, T, S) -> (B, T)
    alpha = np.random.default_rng(0).dirichlet(np.ones(5), size=(2, 3))
    h = attention_entropy(alpha)
    assert h.shape == (2, 3)
    assert h[1, 2] == pytest.approx(-(alpha[1, 2] * np.log(alpha[1, 2])).sum())
    assert attention_entropy(alpha.astype(np.float32)).dtype == np.float32


def test_entropy_masked_rows():
    alpha = np.array([[0.5, 0.5, 0.0, 0.0],
                      [0.25, 0.25, 0.25, 0.25],
                      [np.nan, -1.0, 9.0, 0.0]])  # a padded row: never read
    mask = np.array([[True, True, False, False],
                     [True, True, True, True],
                     [False, False, False, False]])
    h = attention_entropy(alpha, mask=mask)
    assert h == pytest.approx([math.log(2), math.log(4), 0.0])
    # weight leaking onto a masked position leaves the real ones short of 1
    leak = np.array([[0.5, 0.4, 0.1]])
    with pytest.raises(ValueError, match="sum to 1"):
        attention_entropy(leak, mask=np.array([[True, True, False]]))


def test_entropy_rejects_invalid_alpha():
    with pytest.raises(ValueError, match="non-negative"):
        attention_entropy(np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match=r"row \(1,\) summing to 0.9"):
        attention_entropy(np.array([[0.5, 0.5], [0.5, 0.4]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        attention_entropy(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="mask must have alpha's shape"):
        attention_entropy(np.ones((2, 1)), mask=np.ones((2,), bool))
    with pytest.raises(TypeError, match="mask must be a bool array"):
        attention_entropy(np.ones((2, 1)), mask=np.ones((2, 1)))
    with pytest.raises(ValueError, match="at least one axis"):
        attention_entropy(np.float64(1.0))
    # within 1e-6 is accepted
    attention_entropy(np.array([0.5, 0.5 + 5e-7]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 1e-3),
       st.randoms(use_true_random=False))
def test_entropy_properties(weights, rnd):
    # 0 <= H <= log n, and H does not depend on the order of the positions
    p = np.array(weights) / sum(weights)
    h = float(attention_entropy(p))
    assert -1e-12 <= h <= math.log(len(p)) + 1e-12
    perm = list(range(len(p)))
    rnd.shuffle(perm)
    assert float(attention_entropy(p[perm])) == pytest.approx(h, abs=1e-12)
