"""Lesson 09's exercise: beam search over a next-token log-probability function.

The learner's search sees the decoder only through ``next_logp(prefix) ->
(V,)``, the log-probabilities of the next token after a tuple of token ids,
so the same function runs on a hand-made table and on a trained model.
Graded by its outputs against `tinyattn.decoding.beam_search` (driven by
the same ``next_logp``), whose conventions it must follow exactly: a
stable ranking of the K·V extensions (beam order, then token id), the walk
down that ranking that stops at K live beams, `<eos>` candidates finished
only above that point, and the GNMT length normalisation
(`tinyattn.decoding.gnmt_length_penalty`, Wu et al. 2016 §7) of the final
ranking. docs/equations.md §6 (decoding reads its own predictions).
"""

from __future__ import annotations

import numpy as np

from tinyattn.decoding import beam_search, gnmt_length_penalty
from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise

_SOS = 0  # the prefix models below ignore the <sos> id; any valid id will do


class PrefixModel:
    """The model protocol (docs/models.md) around ``next_logp``: the carry is
    the prefix itself (an object array of tuples, one per row)."""

    def __init__(self, next_logp):
        self.next_logp = next_logp
        self.config = {"tgt_vocab": len(next_logp(()))}

    def start(self, src, src_lengths):
        carry = np.empty(len(src), dtype=object)
        carry[:] = [()] * len(src)
        return None, carry

    def decode_step(self, y_prev, memory, carry, t):
        if t > 0:  # the first step reads <sos>, which is not part of a prefix
            new = np.empty(len(carry), dtype=object)
            new[:] = [(*p, int(y)) for p, y in zip(carry, y_prev)]
            carry = new
        return np.stack([self.next_logp(p) for p in carry]), carry, None


class ModelNextLogp:
    """``next_logp`` of one source sentence under a model of the protocol:
    each prefix is decoded once, from its parent prefix's carry (memoised)."""

    def __init__(self, model, src, src_lengths, sos_id):
        self.model, self.src, self.src_lengths, self.sos_id = model, src, src_lengths, sos_id
        self.memory, carry = model.start(src, src_lengths)
        self._steps = {(): carry}  # prefix -> carry after reading its tokens
        self._logp = {}

    def __call__(self, prefix):
        prefix = tuple(int(v) for v in prefix)
        if prefix not in self._logp:
            y = prefix[-1] if prefix else self.sos_id
            if prefix and prefix not in self._steps:
                self(prefix[:-1])
            carry_in = self._steps[prefix[:-1]] if prefix else self._steps[()]
            logp, carry, _ = self.model.decode_step(np.array([y]), self.memory, carry_in,
                                                    len(prefix))
            self._steps[prefix] = carry
            self._logp[prefix] = logp[0].astype(np.float64)
        return self._logp[prefix].copy()


def _solution(next_logp, K, max_len, eos_id, alpha=0.0):
    (hyps,) = beam_search(PrefixModel(next_logp), np.zeros((1, 1), int), np.array([1]),
                          beam_size=K, max_len=max_len, sos_id=_SOS, eos_id=eos_id,
                          length_penalty=alpha)
    return ([h.tokens for h in hyps], [h.logprob for h in hyps], [h.score for h in hyps])


def table_next_logp(table, V, eos_id):
    """``next_logp`` of a dict ``prefix -> {token: p}``; unlisted prefixes end at once."""
    def next_logp(prefix):
        out = np.full(V, -np.inf)
        for tok, p in table.get(tuple(prefix), {eos_id: 1.0}).items():
            out[tok] = np.log(p)
        return out
    return next_logp


_EOS, _A, _B, _C = 0, 1, 2, 3
# <eos> after "a" ranks 4th at step 2, below three live prefixes: K = 3 must prune it.
_TABLE = {(): {_A: 0.5, _B: 0.3, _C: 0.12, _EOS: 0.08},
          (_A,): {_A: 0.45, _B: 0.3, _EOS: 0.2, _C: 0.05},
          (_B,): {_A: 0.85, _EOS: 0.1, _B: 0.05},
          (_C,): {_EOS: 0.7, _A: 0.3},
          (_A, _A): {_EOS: 0.55, _B: 0.45},
          (_A, _B): {_EOS: 0.7, _A: 0.3},
          (_B, _A): {_EOS: 0.9, _C: 0.1}}
# A likely empty output against a confident long one: α = 1 must rank the long one first.
_LONG = {(): {_EOS: 0.35, _A: 0.45, _B: 0.2},
         (_A,): {_A: 0.8, _B: 0.17, _EOS: 0.03},
         (_B,): {_B: 0.6, _EOS: 0.4},
         (_A, _A): {_A: 0.8, _EOS: 0.2},
         (_B, _B): {_A: 0.7, _EOS: 0.3},
         (_A, _A, _A): {_EOS: 0.9, _B: 0.1}}


def _model_case(rng):
    from tinyattn.seq2seq import Seq2Seq  # imported here: the table cases need no network

    V = 5
    model = Seq2Seq(7, V, emb_size=4, hidden_size=6, attention="bahdanau", pad_id=0,
                    rng=rng, dtype=np.float64)
    for _, p, _ in model.named_parameters():  # sharper distributions than at initialisation
        p *= 3.0
    src = rng.integers(1, 7, size=(1, 4))
    return ModelNextLogp(model, src, np.array([4]), sos_id=1)


def _cases(rng):
    table = table_next_logp(_TABLE, 4, _EOS)
    long = table_next_logp(_LONG, 4, _EOS)
    model = _model_case(rng)
    return [("hand-made table, K = 3, α = 0", (table, 3, 4, _EOS, 0.0)),
            ("hand-made table, K = 2, α = 1", (long, 2, 6, _EOS, 1.0)),
            ("small random model (V = 5, <eos> = 2), K = 3, α = 0", (model, 3, 6, 2, 0.0)),
            ("the same model, K = 4, α = 1.5", (model, 4, 6, 2, 1.5))]


def _search(next_logp, K, max_len, eos_id, alpha=0.0, *, every_eos=False, ascending=False,
            normalise=True, rank_by_logp=False):
    """Plain beam search, with one of the known mistakes switched on."""
    live, finished = [((), 0.0)], []
    for _ in range(max_len):
        cands = [((*p, tok), lp + float(step[tok])) for p, lp in live
                 for step in [next_logp(p)] for tok in range(len(step))]
        cands = [c for c in cands if np.isfinite(c[1])]
        cands.sort(key=lambda c: -c[1])
        live = []
        for seq, lp in cands:
            if len(live) == K and not every_eos:
                break
            if seq[-1] == eos_id:
                finished.append((seq, lp))
            elif len(live) < K:
                live.append((seq, lp))
        if len(finished) >= K:
            break
    else:
        finished += live
    a = alpha if normalise else 0.0
    hyps = [(list(s), lp, lp / gnmt_length_penalty(len(s), a)) for s, lp in finished]
    key = (lambda h: h[1]) if rank_by_logp else (lambda h: h[2])
    hyps = sorted(hyps, key=key) if ascending else sorted(hyps, key=lambda h: -key(h))
    hyps = hyps[:K]
    return [h[0] for h in hyps], [h[1] for h in hyps], [h[2] for h in hyps]


def my_beam_search(next_logp, K, max_len, eos_id, alpha=0.0):
    """Beam search with beam size K over ``next_logp``; the K best hypotheses, best first.

    ``next_logp(prefix)`` returns the (V,) log-probabilities of the next token after
    ``prefix``, a tuple of token ids (``()`` at the first step; -inf where p = 0).

    Start from one live prefix, ``()``, with log p = 0. At each of at most ``max_len`` steps:
    extend every live prefix by every token (K·V candidates, in the order prefix, then token
    id), with log p(prefix) + next_logp(prefix)[token]; rank them best first, a stable sort
    (ties keep that order); walk down the ranking until K live prefixes are kept: a candidate
    ending with ``eos_id`` met on the way is *finished* (set aside; it does not count towards
    the K), any other becomes a live prefix; -inf is never kept. Whatever ranks below the K-th
    live prefix is pruned, `<eos>` or not. Stop once K
    hypotheses have finished; after ``max_len`` steps the live prefixes count as finished.
    Rank the finished by score = log p / lp(len), lp(len) = ((5 + len) / 6) ** alpha
    (`gnmt_length_penalty`; len counts the <eos>), best first (stable), and keep K.

    Returns ``tokens`` (list of lists of int), ``logprobs`` and ``scores`` (lists of float).
    """
    raise NotImplementedError  # your code here


BEAM = OutputExercise(
    "beam_search",
    "tokens, logprobs, scores = my_beam_search(next_logp, K, max_len, eos_id, alpha)",
    _solution,
    _cases,
    ("tokens", "logprobs", "scores"),
    "docs/equations.md §6; tinyattn.decoding.beam_search; GNMT length penalty "
    "lp = ((5 + |y|) / 6)^α (Wu et al. 2016, §7)",
    [
        Bug("sorted the wrong way: the least likely hypothesis comes first",
            "rank the finished hypotheses by their score, highest first: "
            "sorted(..., key=lambda h: -score(h)) (or reverse=True)",
            lambda *a: _search(*a, ascending=True)),
        Bug("finished an <eos> candidate ranked below the K live beams",
            "walk down the ranking and stop as soon as K candidates are kept: an <eos> "
            "extension ranked below the K-th live beam is pruned like any other, it does "
            "not finish a hypothesis",
            lambda *a: _search(*a, every_eos=True)),
        Bug("length normalisation missing (alpha ignored)",
            "when alpha > 0 the score is log p / ((5 + len) / 6) ** alpha, len counting "
            "the <eos>; rank the finished hypotheses by that score and return it",
            lambda *a: _search(*a, normalise=False)),
        Bug("ranked by log p, not by the normalised score",
            "the scores are right, but the final ranking must use them: "
            "sort by score = log p / lp(len), not by log p",
            lambda *a: _search(*a, rank_by_logp=True)),
    ],
    starter=my_beam_search,
)

EXERCISES = [BEAM]
