"""Greedy decoding and beam search on a hand-made next-token table (no
network), and the beam's trace of candidates and back-pointers."""

import numpy as np
import pytest

from tinyattn.decoding import BeamStep, beam_search, gnmt_length_penalty, greedy_decode
from tinyattn.seq2seq import Seq2Seq

SOS, EOS, A, B = 1, 2, 3, 4
V = 5

# p(next token | prefix); greedy takes "a a" (0.5 * 0.4 * 0.5 = 0.10), beam K=2 finds
# "b a" (0.4 * 0.9 * 0.9 = 0.324)
TABLE = {(): {A: 0.5, B: 0.4, EOS: 0.1},
         (A,): {A: 0.4, B: 0.35, EOS: 0.25},
         (B,): {A: 0.9, B: 0.05, EOS: 0.05},
         (A, A): {EOS: 0.5, A: 0.25, B: 0.25},
         (A, B): {EOS: 0.6, A: 0.2, B: 0.2},
         (B, A): {EOS: 0.9, A: 0.05, B: 0.05}}


class TableModel:
    """A fake model: the carry is the index of the prefix; prefixes not in the
    table end at once."""

    config = {"tgt_vocab": V}  # decoding needs only this, start and decode_step

    def __init__(self, table):
        self.prefixes = list(table)
        self.logp = np.full((len(table) + 1, V), -np.inf)  # last row: unknown prefix
        self.logp[-1, EOS] = 0.0
        for i, dist in enumerate(table.values()):
            for tok, p in dist.items():
                self.logp[i, tok] = np.log(p)

    def start(self, src, src_lengths):
        return None, np.zeros(len(src), int)  # every row starts at the empty prefix

    def decode_step(self, y_prev, memory, carry, t):
        if t > 0:
            carry = np.array([self._child(node, int(y)) for node, y in zip(carry, y_prev)])
        return self.logp[carry], carry, None

    def _child(self, node, y):
        if node == len(self.prefixes):
            return node
        key = (*self.prefixes[node], y)
        return self.prefixes.index(key) if key in self.prefixes else len(self.prefixes)


SRC, LEN = np.zeros((1, 1), int), np.array([1])
KW = dict(max_len=4, sos_id=SOS, eos_id=EOS)


def test_greedy_is_not_optimal_and_beam_of_two_finds_better():
    model = TableModel(TABLE)
    (g,) = greedy_decode(model, SRC, LEN, **KW)
    assert g.tokens == [A, A, EOS]
    assert g.logprob == pytest.approx(np.log(0.5 * 0.4 * 0.5))
    (best, second), = beam_search(model, SRC, LEN, beam_size=2, **KW)
    assert best.tokens == [B, A, EOS]
    assert best.logprob == pytest.approx(np.log(0.4 * 0.9 * 0.9))
    # "a b" (0.175) was pruned at step 1 behind "b a" (0.36) and "a a" (0.2)
    assert second.tokens == g.tokens and second.logprob == pytest.approx(g.logprob)


def test_length_penalty_reranks_by_normalised_score():
    model = TableModel(TABLE)
    (hyps,) = beam_search(model, SRC, LEN, beam_size=3, length_penalty=1.0, **KW)
    for h in hyps:
        assert h.score == pytest.approx(h.logprob / gnmt_length_penalty(len(h.tokens), 1.0))
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    # K=4: "a <eos>" (0.125) beats "a b <eos>" (0.105) on raw log p, loses at α = 1
    (raw,) = beam_search(model, SRC, LEN, beam_size=4, **KW)
    (normed,) = beam_search(model, SRC, LEN, beam_size=4, length_penalty=1.0, **KW)
    assert [h.tokens for h in raw][1:3] == [[A, EOS], [A, B, EOS]]
    assert [h.tokens for h in normed].index([A, B, EOS]) < [h.tokens for h in normed].index(
        [A, EOS])


def _follow(trace, b, step, beam):
    """Tokens of live beam ``beam`` after ``step``, following the back-pointers."""
    toks = []
    for s in range(step, -1, -1):
        toks.append(int(trace[s].tokens[b, beam]))
        beam = int(trace[s].parents[b, beam])
    return toks[::-1]


def _models():
    network = Seq2Seq(9, 10, emb_size=4, hidden_size=3, attention="bahdanau",
                      rng=np.random.default_rng(5))
    return {"network": (network, np.array([[3, 4, 5, 6], [6, 7, 8, 0]]), np.array([4, 3])),
            # two rows of the table: every step has <eos> candidates, some finish
            "table": (TableModel(TABLE), np.zeros((2, 1), int), np.array([1, 1]))}


@pytest.mark.parametrize("which", ["network", "table"])
@pytest.mark.parametrize("K", [1, 2, 3])
def test_trace_does_not_change_the_result_and_rebuilds_every_hypothesis(K, which):
    model, src, lengths = _models()[which]
    kw = dict(beam_size=K, max_len=6, sos_id=SOS, eos_id=EOS, length_penalty=0.6)
    plain = beam_search(model, src, lengths, **kw)
    trace = []
    traced = beam_search(model, src, lengths, trace=trace, **kw)
    assert all(isinstance(step, BeamStep) for step in trace)
    assert [s.t for s in trace] == list(range(len(trace)))
    for hyps_a, hyps_b in zip(plain, traced):
        assert [(h.tokens, h.logprob) for h in hyps_a] == [(h.tokens, h.logprob) for h in hyps_b]
    rebuilt = 0
    for b in range(2):
        ended = []  # every hypothesis that ended with <eos>, rebuilt from the trace
        for step in trace:
            cands = step.candidates[b]
            assert len(cands) <= 2 * K
            assert [c[2] for c in cands] == sorted((c[2] for c in cands), reverse=True)
            kept = [c for c in cands if c[3] == "kept"]
            assert len(kept) <= K
            for i, (parent, tok, logp, _) in enumerate(kept):  # the i-th kept is beam i
                assert (step.parents[b, i], step.tokens[b, i]) == (parent, tok)
                assert step.logprobs[b, i] == logp
            for parent, tok, logp, status in cands:
                if status == "finished":
                    prefix = _follow(trace, b, step.t - 1, parent) if step.t else []
                    ended.append((prefix + [tok], logp))
        for h in traced[b]:
            if h.tokens[-1] == EOS:
                assert (h.tokens, pytest.approx(h.logprob)) in ended
                rebuilt += 1
    if which == "table":  # the rebuilding above really ran
        assert rebuilt == 2 * K
