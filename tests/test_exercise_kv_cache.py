"""Lesson 16's exercise `cached_attention_step`: a right answer passes, the starter
reports "not implemented", and every named mistake, written here as a learner would
(loops over examples and heads), gets exactly its own diagnosis; the right answer
equals the library's cached decoding."""

from functools import partial

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.exercises import _ex_kv_cache as mod


def learner(q, k, v, K_cache, V_cache, mistake=None):
    B, n, t, d = K_cache.shape
    if mistake == "front":
        K, V = np.concatenate([k, K_cache], axis=2), np.concatenate([v, V_cache], axis=2)
    elif mistake == "no_append":
        K, V = K_cache, V_cache
    elif mistake == "new_only":
        K, V = k, v
    else:
        K, V = np.concatenate([K_cache, k], axis=2), np.concatenate([V_cache, v], axis=2)
    out = np.zeros_like(q)
    if K.shape[2] == 0:
        return out, K, V
    scores = np.einsum("bhqd,bhkd->bhqk", q, K)
    if mistake != "no_scale":
        scores = scores / np.sqrt(d)
    for b in range(B):
        for h in range(n):
            s = scores[b, h, 0]
            w = np.exp(s - s.max())
            w /= w.sum()
            out[b, h, 0] = w @ V[b, h]
    if mistake == "heads_axis":  # normalised over the heads instead of the keys
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        out = (e / e.sum(axis=1, keepdims=True)) @ V
    return out, K, V


def test_a_learner_step_passes_and_the_starter_is_not_implemented():
    assert ex.check("cached_attention_step", learner, verbose=False).passed
    r = ex.check("cached_attention_step", mod.cached_attention_step, verbose=False)
    assert r.status == "not implemented"


@pytest.mark.parametrize("mistake, label", [
    ("no_append", "the new key and value not appended before attending"),
    ("front", "the new key and value put in front of the cache"),
    ("new_only", "only the new position attended"),
    ("no_scale", "the 1/√d scale missing"),
    ("heads_axis", "the softmax over the wrong axis"),
])
def test_mistakes_are_named(mistake, label):
    r = ex.check("cached_attention_step", partial(learner, mistake=mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and r.diagnoses[0].startswith(label), r.text


def test_the_learner_step_decodes_like_the_library():
    """Fed position by position, the right step reproduces a decoder layer's
    causal self-attention (before W_o) on the whole prefix."""
    from tinyattn.multihead import MultiHeadAttention, merge_heads

    rng = np.random.default_rng(0)
    mha = MultiHeadAttention(6, 2, rng=rng).eval()
    x = rng.standard_normal((2, 4, 6))
    mha(x, x, x, causal=True)
    full = mha._take_cache()[-1]  # merged heads (B, T, D) before the output layer
    Q, K, V = (mha.project(x, c) for c in "qkv")
    K_cache = V_cache = np.zeros((2, 2, 0, 3))
    for t in range(4):
        out, K_cache, V_cache = learner(Q[:, :, t:t + 1], K[:, :, t:t + 1], V[:, :, t:t + 1],
                                        K_cache, V_cache)
        np.testing.assert_allclose(merge_heads(out)[:, 0], full[:, t], atol=1e-12)
