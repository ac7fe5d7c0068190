"""Lesson 11's exercise `bleu_sentence_stats`: a right version passes and
agrees with corpus_bleu; each classic mistake is named, and only it. The
buggy versions are written here as a learner would write them."""

from collections import Counter

import pytest

import tinyattn.exercises as ex
from tinyattn.metrics import corpus_bleu


def stats(hyp, refs, max_order, *, clip="max", length="closest"):
    matches, totals = [], []
    for n in range(1, max_order + 1):
        h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        rs = [Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1)) for r in refs]
        caps = {g: {"max": max(r[g] for r in rs), "first": rs[0][g],
                    "sum": sum(r[g] for r in rs),
                    "none": c if any(r[g] for r in rs) else 0}[clip] for g, c in h.items()}
        matches.append(sum(min(c, caps[g]) for g, c in h.items()))
        totals.append(max(len(hyp) - n + 1, 0))
    lens = sorted(len(r) for r in refs)
    if length == "longest":
        ref_len = lens[-1]
    elif length == "tie-longer":
        ref_len = min(reversed(lens), key=lambda k: abs(k - len(hyp)))
    else:
        ref_len = min(lens, key=lambda k: abs(k - len(hyp)))
    return matches, totals, ref_len


def test_a_learner_version_passes():
    assert ex.check("bleu_sentence_stats", stats, verbose=False).passed


@pytest.mark.parametrize("kw, label, wrong", [
    ({"clip": "none"}, "not clipped", {"matches"}),
    ({"clip": "first"}, "first reference only", {"matches"}),
    ({"clip": "sum"}, "sum over the references", {"matches"}),
    ({"length": "longest"}, "the longest reference", {"ref_len"}),
    ({"length": "tie-longer"}, "tie in reference length goes to the longer", {"ref_len"}),
])
def test_mistakes_are_named(kw, label, wrong):
    r = ex.check("bleu_sentence_stats", lambda *a: stats(*a, **kw), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"wrong {', '.join(sorted(wrong))}" in r.text


def test_summed_statistics_give_corpus_bleu():
    hyps = [list("我我我我我很大"), list("他十歲。"), list("你很大嗎？")]
    refs = [[list("我很大"), list("我我很大嗎")], [list("他十歲"), list("他十歲了。")],
            [list("你很大？")]]
    parts = [stats(h, r, 4) for h, r in zip(hyps, refs)]
    score = corpus_bleu(hyps, refs, smooth="none")
    m = [sum(p[0][n] for p in parts) for n in range(4)]
    t = [sum(p[1][n] for p in parts) for n in range(4)]
    assert [round(100 * a / b, 9) for a, b in zip(m, t)] == [round(p, 9) for p in
                                                              score.precisions]
    assert score.ref_len == sum(p[2] for p in parts)
