"""Greedy decoding and batched beam search, both keeping attention rows.

Both work on any model of the protocol in docs/models.md: they call only
``model.start``, ``model.decode_step`` and ``model.config["tgt_vocab"]``,
and decode in eval mode when the model has modes (``model.training``).

At inference the decoder reads its own previous prediction instead of the
gold token (docs/equations.md §6). Both functions return, for every example,
hypotheses with their tokens, scores and one attention row per token, so
a heatmap can be drawn for any hypothesis, beam search included.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tinyattn._validate import (
    as_array,
    check_dim,
    check_id,
    check_ids,
    check_lengths,
    check_real,
    check_size,
)
from tinyattn.module import eval_mode

LENGTH_PENALTY_RANGE = "[0, 10]"  # GNMT tuned α in 0.6..1; past 10 only length counts


@dataclass
class Hypothesis:
    """One decoded sequence.

    tokens : list of int
        Predicted ids, ending with ``eos_id`` when the model produced it.
    logprob : float
        Sum of the tokens' log-probabilities.
    score : float
        ``logprob / lp(len)``, the beam's ranking score (= logprob for greedy).
    attention : ndarray of shape (len(tokens), S_b) or None
        One row per token over the example's real source positions.
    """

    tokens: list
    logprob: float
    score: float
    attention: np.ndarray | None


@dataclass
class BeamStep:
    """What one step of `beam_search` did: enough to draw the search tree.

    t : int
        The step (0 predicts the first token).
    candidates : list (one per example) of list of (parent, token, logprob, status)
        The expansions the step ranked, best first (at most 2K; none for an
        example already done): ``parent`` is the live beam they extend (an
        index into the previous step's ``tokens``, 0 at step 0), ``logprob``
        the hypothesis' sum so far, ``status`` ``"kept"`` (a live beam of
        this step; the i-th kept candidate is beam i), ``"finished"`` (it
        ended with ``eos_id``) or ``"pruned"``.
    parents, tokens : ndarray of shape (B, K)
        Back-pointer and last token of each live beam after the step.
    logprobs : ndarray of shape (B, K)
        Their sums of log-probabilities (-inf for an empty slot).
    """

    t: int
    candidates: list
    parents: np.ndarray
    tokens: np.ndarray
    logprobs: np.ndarray


def _take(carry, rows):
    """Select rows of every array in a (nested tuple) decoder carry; None stays None.

    A tuple subclass keeps its type (a stacked decoder's
    `tinyattn.recurrent.StackState` must stay one)."""
    if carry is None:
        return None
    if isinstance(carry, tuple):
        parts = tuple(_take(c, rows) for c in carry)
        return parts if type(carry) is tuple else type(carry)(parts)
    return carry[rows]


def _check(model, src, src_lengths, max_len, sos_id, eos_id):
    """Check the arguments both decoders share; return ``src, src_lengths`` as arrays."""
    config = getattr(model, "config", None)
    if not (callable(getattr(model, "start", None))
            and callable(getattr(model, "decode_step", None))
            and isinstance(config, Mapping) and "tgt_vocab" in config):
        raise TypeError(f"model must follow the model protocol (docs/models.md: start, "
                        f"decode_step and config['tgt_vocab']), got {type(model).__name__}")
    vocab = check_size(config["tgt_vocab"], "model.config['tgt_vocab']")
    src = check_ids(src, "src", config.get("src_vocab"), shape=(None, None))
    src_lengths = check_lengths(as_array(src_lengths, "src_lengths"), *src.shape, "src_lengths")
    check_dim(max_len, "max_len")  # at most 2**24 steps
    check_id(sos_id, "sos_id", vocab)
    check_id(eos_id, "eos_id", vocab)
    return src, src_lengths


def _in_eval_mode(decode):
    """Run ``decode(model, ...)`` with the model in eval mode (no dropout),
    then give the model back its mode. A model without modes (a hand-made
    table of probabilities, say) is decoded as it is."""
    @functools.wraps(decode)
    def wrapper(model, *args, **kwargs):
        with eval_mode(model):
            return decode(model, *args, **kwargs)
    return wrapper


@_in_eval_mode
def greedy_decode(model, src, src_lengths, *, max_len, sos_id, eos_id):
    """Pick the most probable token at every step.

    Returns
    -------
    list of Hypothesis, one per example.
    """
    src, src_lengths = _check(model, src, src_lengths, max_len, sos_id, eos_id)
    memory, carry = model.start(src, src_lengths)
    B = src.shape[0]
    y = np.full(B, sos_id)
    tokens, alphas, logps = [], [], []
    done = np.zeros(B, bool)
    for t in range(max_len):
        logp, carry, alpha = model.decode_step(y, memory, carry, t)
        y = logp.argmax(axis=1)
        tokens.append(y)
        logps.append(logp[np.arange(B), y])
        alphas.append(alpha)
        done |= y == eos_id
        if done.all():
            break
    tokens, logps = np.stack(tokens, axis=1), np.stack(logps, axis=1)  # (B, steps)
    out = []
    for b in range(B):
        row = list(tokens[b])
        n = row.index(eos_id) + 1 if eos_id in row else len(row)
        attn = None
        if alphas[0] is not None:
            attn = np.stack([a[b, : src_lengths[b]] for a in alphas[:n]])  # (n, S_b)
        lp = float(logps[b, :n].sum())
        out.append(Hypothesis([int(v) for v in row[:n]], lp, lp, attn))
    return out


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """GNMT's ``((5 + length) / 6) ** alpha`` (Wu et al. 2016); 1 when alpha = 0.

    ``length`` is a positive int, ``alpha`` a number in [0, 10] (see `beam_search`).
    """
    length = check_size(length, "length")
    alpha = check_real(alpha, "alpha", LENGTH_PENALTY_RANGE)
    return ((5.0 + length) / 6.0) ** alpha


@_in_eval_mode
def beam_search(model, src, src_lengths, *, beam_size, max_len, sos_id, eos_id,
                length_penalty=0.0, n_best=None, trace=None):
    """Beam search batched over examples and beams (B·K rows per step).

    Parameters
    ----------
    beam_size : int
        K ≥ 1; K = 1 gives exactly the greedy result.
    length_penalty : float in [0, 10]
        α of the GNMT length penalty; hypotheses are ranked by
        ``logprob / ((5 + len) / 6) ** α``. 0 ranks by raw log-probability;
        GNMT found 0.6..1 best (Wu et al. 2016). A negative α would reward
        short output twice over, and beyond 10 the ranking is by length
        alone, so both are refused (ValueError).
    n_best : int, optional
        How many hypotheses to return per example (default K; at most K are
        returned, so a larger n_best gives K).
    trace : list, optional
        If given, one `BeamStep` per step is appended to it (the ranked
        candidates and back-pointers, e.g. to draw the search tree).

    Returns
    -------
    list (one per example) of lists of Hypothesis, best first.

    Notes
    -----
    An example stops when K hypotheses have ended with ``eos_id``; at
    ``max_len`` the unfinished ones are added. Each hypothesis keeps its
    own attention rows, followed through the back-pointers.
    """
    check_dim(beam_size, "beam_size")
    src, src_lengths = _check(model, src, src_lengths, max_len, sos_id, eos_id)
    length_penalty = check_real(length_penalty, "length_penalty", LENGTH_PENALTY_RANGE)
    if trace is not None and not isinstance(trace, list):
        raise TypeError(f"trace must be None or a list (one BeamStep is appended per step), "
                        f"got {type(trace).__name__}")
    K, B = int(beam_size), src.shape[0]
    n_best = K if n_best is None else min(check_size(n_best, "n_best"), K)
    # Row b·K + k is beam k of example b: repeat every example K times.
    memory, carry = model.start(np.repeat(src, K, axis=0), np.repeat(src_lengths, K))
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0  # at first only one live beam per example
    y = np.full(B * K, sos_id)
    hist = np.zeros((B, K, 0), int)  # tokens of the live beams
    attn_hist = None
    finished = [[] for _ in range(B)]
    done = np.zeros(B, bool)
    for t in range(max_len):
        logp, carry, alpha = model.decode_step(y, memory, carry, t)
        V = logp.shape[1]
        total = scores[:, :, None] + logp.reshape(B, K, V)  # (B, K, V)
        flat = total.reshape(B, K * V)
        order = np.argsort(-flat, axis=1, kind="stable")[:, : 2 * K]  # best first
        new_scores = np.full((B, K), -np.inf)
        back = np.zeros((B, K), int)
        new_tok = np.full((B, K), eos_id)
        ranked = [[] for _ in range(B)]  # for the trace: (parent, token, logprob, status)
        for b in range(B):
            if done[b]:
                continue
            k_live = 0
            for idx in order[b]:
                beam, tok = divmod(int(idx), V)
                s = flat[b, idx]
                if not np.isfinite(s):
                    break
                if k_live == K:  # an <eos> ranked below K live beams never ends one
                    ranked[b].append((beam, tok, float(s), "pruned"))
                    if trace is None:
                        break
                    continue
                if tok == eos_id:
                    toks = [*hist[b, beam].tolist(), tok]
                    rows = _rows(attn_hist, alpha, b, beam, K, src_lengths[b])
                    norm = s / gnmt_length_penalty(len(toks), length_penalty)
                    finished[b].append(Hypothesis(toks, float(s), float(norm), rows))
                    ranked[b].append((beam, tok, float(s), "finished"))
                else:
                    new_scores[b, k_live], back[b, k_live], new_tok[b, k_live] = s, beam, tok
                    ranked[b].append((beam, tok, float(s), "kept"))
                    k_live += 1
            done[b] = len(finished[b]) >= K
        if trace is not None:
            trace.append(BeamStep(t, ranked, back.copy(), new_tok.copy(), new_scores.copy()))
        rows = (np.arange(B)[:, None] * K + back).reshape(-1)  # (B·K,) source rows
        carry = _take(carry, rows)
        hist = np.concatenate([hist[np.arange(B)[:, None], back], new_tok[..., None]], axis=2)
        if alpha is not None:
            step = alpha[rows].reshape(B, K, 1, -1)
            prev = attn_hist[np.arange(B)[:, None], back] if attn_hist is not None else None
            attn_hist = step if prev is None else np.concatenate([prev, step], axis=2)
        scores, y = new_scores, new_tok.reshape(-1)
        if done.all():
            break
    for b in range(B):  # out of steps: unfinished beams compete too
        if not done[b]:
            for k in range(K):
                if np.isfinite(scores[b, k]):
                    toks = hist[b, k].tolist()
                    rows = None if attn_hist is None else attn_hist[b, k, :, : src_lengths[b]]
                    norm = scores[b, k] / gnmt_length_penalty(len(toks), length_penalty)
                    finished[b].append(Hypothesis(toks, float(scores[b, k]), float(norm), rows))
    return [sorted(f, key=lambda h: -h.score)[:n_best] for f in finished]


def _rows(attn_hist, alpha, b, beam, K, length):
    """Attention rows of beam ``beam`` of example ``b`` plus this step's row."""
    if alpha is None:
        return None
    now = alpha[b * K + beam, :length][None, :]  # (1, S_b)
    if attn_hist is None:
        return now
    return np.concatenate([attn_hist[b, beam, :, :length], now], axis=0)
