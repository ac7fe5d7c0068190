"""Lesson 09's exercise `beam_search`: a right beam search passes, the classic
mistakes are named. The searches are written here as a learner would write
them, independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.decoding import beam_search
from tinyattn.exercises import _ex_beam


def learner(next_logp, K, max_len, eos_id, alpha=0.0, *, wrong_sort=False, all_eos=False,
            no_norm=False, rank_by_logp=False):
    beams, done = [((), 0.0)], []
    for _ in range(max_len):
        cand = []
        for prefix, lp in beams:
            step = next_logp(prefix)
            cand += [(prefix + (v,), lp + step[v]) for v in range(len(step))
                     if step[v] > -np.inf]
        cand.sort(key=lambda c: c[1], reverse=True)  # stable, like the library
        beams = []
        for seq, lp in cand:
            if seq[-1] == eos_id:
                if len(beams) < K or all_eos:
                    done.append((seq, lp))
            elif len(beams) < K:
                beams.append((seq, lp))
            elif not all_eos:
                break
        if len(done) >= K:
            break
    else:
        done += beams
    a = 0.0 if no_norm else alpha
    out = [(list(s), lp, lp / ((5 + len(s)) / 6) ** a) for s, lp in done]
    rank = 1 if rank_by_logp else 2
    out.sort(key=lambda h: h[rank], reverse=not wrong_sort)
    out = out[:K]
    return [h[0] for h in out], [h[1] for h in out], [h[2] for h in out]


def test_a_learner_version_passes():
    r = ex.check("beam_search", learner, verbose=False)
    assert r.passed, r.text


@pytest.mark.parametrize("flag, label", [
    ("wrong_sort", "sorted the wrong way"),
    ("all_eos", "ranked below the K live beams"),
    ("no_norm", "length normalisation missing"),
    ("rank_by_logp", "ranked by log p, not by the normalised score"),
])
def test_mistakes_are_named(flag, label):
    r = ex.check("beam_search", lambda *a: learner(*a, **{flag: True}), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text


def test_the_normalisation_bugs_pass_where_alpha_is_zero():
    r = ex.check("beam_search", lambda *a: learner(*a, no_norm=True), verbose=False)
    first = r.text.split("hand-made table, K = 2")[0]
    assert "✗" not in first  # α = 0: nothing to normalise, the report shows where it breaks


def _exact(table, eos_id, prefix=(), lp=0.0, max_len=4):
    if len(prefix) == max_len:
        return []
    out = []
    for tok, p in table.get(prefix, {eos_id: 1.0}).items():
        seq, s = (*prefix, tok), lp + np.log(p)
        out += [(seq, s)] if tok == eos_id else _exact(table, eos_id, seq, s, max_len)
    return out


def test_the_table_case_agrees_with_exact_search():
    (label, args), *_ = _ex_beam._cases(np.random.default_rng(0))
    tokens, logprobs, _ = _ex_beam._solution(*args)
    best = max(_exact(_ex_beam._TABLE, _ex_beam._EOS), key=lambda s: s[1])
    assert tokens[0] == list(best[0]) and np.isclose(logprobs[0], best[1])
    assert label.startswith("hand-made table")


def test_the_model_cases_agree_with_beam_search_on_the_model_itself():
    cases = _ex_beam._cases(np.random.default_rng(0))
    for _, (next_logp, K, max_len, eos_id, alpha) in cases[2:]:
        tokens, logprobs, scores = _ex_beam._solution(next_logp, K, max_len, eos_id, alpha)
        (hyps,) = beam_search(next_logp.model, next_logp.src, next_logp.src_lengths,
                              beam_size=K, max_len=max_len, sos_id=next_logp.sos_id,
                              eos_id=eos_id, length_penalty=alpha)
        assert tokens == [h.tokens for h in hyps]
        assert np.allclose(logprobs, [h.logprob for h in hyps], rtol=1e-12)
        assert np.allclose(scores, [h.score for h in hyps], rtol=1e-12)
        assert len({len(t) for t in tokens}) > 1  # lengths differ: α changes the scores
