"""Lesson 16's exercise: one decoding step of causal self-attention with a key/value cache.

At step t the decoder has the projected keys and values of positions
0 .. t−1 (the cache) and the new position's query, key and value. The step
appends the new key and value and lets the query read all t + 1 of them
(docs/equations.md §7.2). Graded by its outputs against the library's
`tinyattn.multihead.MultiHeadAttention.attend` on caches of several lengths,
the empty cache of step 0 included; each known mistake is a whole step
written with it.
"""

from __future__ import annotations

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.functional import softmax


def _cases(rng):
    B, n, d = 2, 2, 3
    out = []
    for t in (0, 1, 4):
        K, V = (rng.standard_normal((B, n, t, d)) for _ in range(2))
        q, k, v = (rng.standard_normal((B, n, 1, d)) for _ in range(3))
        out.append((f"step t = {t}: a cache of {t} positions, B = {B}, {n} heads, d = {d}",
                    (q, k, v, K, V)))
    return out


def _solution(q, k, v, K_cache, V_cache):
    """The library's step: `MultiHeadAttention.attend`, as `TransformerDecoderLayer.step`
    calls it, on the cache with the new position appended."""
    from tinyattn.multihead import MultiHeadAttention, split_heads

    B, n, _, d = q.shape
    mha = MultiHeadAttention(n * d, n, rng=np.random.default_rng(0)).eval()  # only attend
    K = np.concatenate([K_cache, k], axis=2)  # (B, n, t + 1, d)
    V = np.concatenate([V_cache, v], axis=2)
    everything = np.ones((1, 1, 1, K.shape[2]), dtype=bool)  # the past: nothing masked
    merged, _, _, _ = mha.attend(q, K, V, everything)  # (B, 1, n·d)
    return split_heads(merged, n), K, V


def _variant(*, append=True, front=False, scale=True, axis=-1, new_only=False):
    """A cached step written with one mistake (the names say which)."""
    def predict(q, k, v, K_cache, V_cache):
        if new_only:
            K, V = k, v
        elif not append:
            K, V = K_cache, V_cache
        elif front:
            K, V = np.concatenate([k, K_cache], axis=2), np.concatenate([v, V_cache], axis=2)
        else:
            K, V = np.concatenate([K_cache, k], axis=2), np.concatenate([V_cache, v], axis=2)
        scores = q @ K.transpose(0, 1, 3, 2)
        if scale:
            scores = scores / np.sqrt(q.shape[-1])
        if scores.shape[-1] == 0:  # nothing to read: the mistake's output is empty
            return np.zeros_like(q), K, V
        A = softmax(scores, axis=axis)
        return A @ V, K, V
    return predict


def cached_attention_step(q, k, v, K_cache, V_cache):
    """One decoding step of causal self-attention, all heads at once.

    q, k, v (B, n, 1, d): the new position's query, key and value, already projected and
    split into heads; K_cache, V_cache (B, n, t, d): the keys and values of positions
    0 .. t − 1 (t = 0 at the first step: an axis of length 0).
    Returns ``out (B, n, 1, d)``, the new position's attention output per head, and the
    caches ``K (B, n, t + 1, d)``, ``V (B, n, t + 1, d)`` for the next step.
    """
    raise NotImplementedError  # your code here


CACHED_STEP = OutputExercise(
    "cached_attention_step",
    "out, K, V = cached_attention_step(q, k, v, K_cache, V_cache)",
    _solution,
    _cases,
    ("out", "K", "V"),
    "docs/equations.md §7.2: K = [K_cache ; k], V = [V_cache ; v] along the positions; "
    "out = softmax(q Kᵀ / √d) V; Vaswani et al. 2017 §3.2.3",
    [
        Bug("the new key and value not appended before attending",
            "position t reads itself too (a causal mask allows j <= i): concatenate k and v "
            "to the cache first, then attend over all t + 1 positions; at t = 0 the query "
            "would otherwise have nothing to read",
            _variant(append=False)),
        Bug("the new key and value put in front of the cache",
            "the cache keeps positions in order, 0 .. t: np.concatenate([K_cache, k], "
            "axis=2). The output happens to be the same (attention ignores the order of its "
            "keys), but the next steps, and any mask or plot, read K by position",
            _variant(front=True)),
        Bug("only the new position attended (the cache ignored)",
            "the cache is there to be read: the query attends over [K_cache ; k]",
            _variant(new_only=True)),
        Bug("the 1/√d scale missing",
            "the scores are q Kᵀ / √d, exactly as in training, or the cached step and the "
            "teacher-forced forward disagree",
            _variant(scale=False)),
        Bug("the softmax over the wrong axis",
            "the weights of one query sum to 1 over the keys: the last axis (t + 1 keys), "
            "not the heads or the query axis",
            _variant(axis=1)),
    ],
    starter=cached_attention_step,
)

EXERCISES = [CACHED_STEP]
