"""Lesson 14's exercises: `attention_mask` and `multihead_attention_backward`.

A right answer passes, the starter reports "not implemented", and every
named mistake, written here as a learner would write it (loops over
examples, heads and positions), independently of the package's own
predictions, gets exactly its own diagnosis.
"""

from functools import partial

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.exercises import _ex_transformer as mod
from tinyattn.gradcheck import TOL_STEP, check_function
from tinyattn.multihead import MultiHeadAttention

# --- the mask ------------------------------------------------------------------


def mask_learner(key_lengths, T, S, causal=False, mistake=None):
    B = len(key_lengths)
    allowed = np.zeros((B, T, S), dtype=bool)
    for b in range(B):
        for i in range(T):
            for j in range(S):
                if mistake == "rows":
                    real = i < key_lengths[b]
                elif mistake == "inclusive":
                    real = j <= key_lengths[b]
                else:
                    real = j < key_lengths[b]
                if causal:
                    past = {"off_by_one": j < i, "future": j >= i}.get(mistake, j <= i)
                    ok = past if mistake == "forgot_padding" else real and past
                else:
                    ok = real
                allowed[b, i, j] = (not ok) if mistake == "inverted" else ok
    return allowed


def test_a_learner_mask_passes_and_the_starter_is_not_implemented():
    assert ex.check("attention_mask", mask_learner, verbose=False).passed
    r = ex.check("attention_mask", mod.attention_mask, verbose=False)
    assert r.status == "not implemented"


@pytest.mark.parametrize("mistake, label", [
    ("off_by_one", "causal mask off by one: j < i instead of j <= i"),
    ("future", "causal mask the wrong way round"),
    ("rows", "the padding masks queries (rows) instead of keys (columns)"),
    ("inclusive", "the first pad counted as real"),
    ("forgot_padding", "with causal=True the padding is forgotten"),
    ("inverted", "True where masked"),
])
def test_mask_mistakes_are_named(mistake, label):
    r = ex.check("attention_mask", partial(mask_learner, mistake=mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and r.diagnoses[0].startswith(label), r.text


def test_a_mask_of_the_library_shape_is_a_shape_error():
    def broadcastable(key_lengths, T, S, causal=False):  # (B, 1, T, S), as the library keeps it
        return mask_learner(key_lengths, T, S, causal)[:, None]

    r = ex.check("attention_mask", broadcastable, verbose=False)
    assert r.status == "failed" and "shape (2, 1, 4, 4), expected (2, 4, 4)" in r.text


# --- the backward ------------------------------------------------------------------


def backward_learner(dout, cache, mistake=None):
    """Loops over examples and heads; one head at a time is lesson 13's backward."""
    query, key, value, W_q, W_k, W_v, W_o, Q, K, V, A, merged = cache
    B, n, T, d = Q.shape
    dmerged = dout @ W_o.T
    grads = {c: np.zeros(x.shape) for c, x in (("q", query), ("k", key), ("v", value))}
    for b in range(B):
        for h in range(n):
            cols = slice(h * d, (h + 1) * d)
            if mistake in ("reshape", "split"):  # (T, D) read as if it were (n, T, d)
                dH = dmerged[b].reshape(n, T, d)[h]
            else:
                dH = dmerged[b][:, cols]
            dA = dH @ V[b, h].T
            a = A[b, h]
            if mistake == "no_row_sum":
                dS = a * dA
            else:
                dS = a * (dA - (dA * a).sum(axis=1, keepdims=True))
            if mistake == "batch":
                dS = dS / B
            if mistake != "no_scale":
                dS = dS / np.sqrt(d)
            for c, g in (("q", dS @ K[b, h]), ("k", dS.T @ Q[b, h]), ("v", a.T @ dH)):
                if mistake in ("reshape", "merge"):
                    grads[c][b].reshape(n, -1, d)[h] = g
                else:
                    grads[c][b][:, cols] = g
    out = []
    for c, x, W in (("q", query, W_q), ("k", key, W_k), ("v", value, W_v)):
        g = grads[c]
        dx = g @ (W if mistake == "W_untransposed" else W.T)
        dW = sum(x[b].T @ g[b] for b in range(B))
        out.append((dx, dW, g.sum(axis=(0, 1))))
    (dq, dWq, dbq), (dk, dWk, dbk), (dv, dWv, dbv) = out
    dW_o = sum(merged[b].T @ dout[b] for b in range(B))
    return dq, dk, dv, dWq, dWk, dWv, dW_o, dbq, dbk, dbv, dout.sum(axis=(0, 1))


def test_a_learner_backward_passes_and_the_starter_is_not_implemented():
    r = ex.check("multihead_attention_backward", backward_learner, verbose=False)
    assert r.passed, r.text
    r = ex.check("multihead_attention_backward", mod.multihead_attention_backward,
                 verbose=False)
    assert r.status == "not implemented"


@pytest.mark.parametrize("mistake, label, wrong", [
    ("batch", "the softmax backward divided by the batch size",
     "dquery, dkey, dW_q, dW_k, db_q"),
    ("no_scale", "the 1/√d missing from dQ and dK", "dquery, dkey, dW_q, dW_k, db_q"),
    ("reshape", "heads split and merged with reshape alone", None),
    ("split", "d(merged) split into heads with reshape alone", None),
    ("merge", "dQ, dK, dV merged back with reshape alone", None),
    ("no_row_sum", "softmax backward without the row sum", None),
    ("W_untransposed", "W not transposed in dquery, dkey, dvalue", "dquery, dkey, dvalue"),
])
def test_backward_mistakes_are_named(mistake, label, wrong):
    r = ex.check("multihead_attention_backward", partial(backward_learner, mistake=mistake),
                 verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and r.diagnoses[0].startswith(label), r.text
    if wrong is not None:
        assert f"FAILED: wrong {wrong} (" in r.text, r.text


def test_the_grading_batch_shows_a_division_by_the_batch_size():
    """At B = 1 the division is invisible: the exercise must grade at B >= 2."""
    shapes = mod.MULTIHEAD_BACKWARD.shapes
    assert shapes["query"][0] >= 2
    rng = np.random.default_rng(5)
    for batch, passes in ((1, True), (3, False)):
        args = [rng.standard_normal((batch,) + s[1:] if s[0] == mod._B and len(s) == 3 else s)
                for s in shapes.values()]
        forward = partial(mod.multihead_attention_forward, key_lengths=mod.KEY_LENGTHS[:batch])
        result = check_function(forward, partial(backward_learner, mistake="batch"), *args,
                                names=list(shapes), tol=TOL_STEP)
        assert result.passed == passes, result


def test_the_forward_and_backward_are_the_library_modules():
    rng = np.random.default_rng(6)
    B, T, S, D, n = 3, 4, 5, 6, 2
    query, key, value = (rng.standard_normal(s) for s in [(B, T, D), (B, S, D), (B, S, D)])
    lengths = np.array([5, 3, 2])
    mha = MultiHeadAttention(D, n, rng=rng)
    for name in mha.params:
        mha.params[name][...] = rng.standard_normal(mha.params[name].shape)
    weights = [mha.params[k] for k in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")]
    out, cache = mod.multihead_attention_forward(query, key, value, *weights, n_heads=n,
                                                 key_lengths=lengths)
    out_lib, A_lib = mha(query, key, value, key_lengths=lengths)
    assert np.allclose(out, out_lib) and np.allclose(cache[10], A_lib)
    dout = rng.standard_normal(out.shape)
    dx = mha.backward(dout)
    mine = mod._backward(dout, cache)
    lib = (*dx, *(mha.grads[k] for k in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v",
                                         "b_o")))
    for a, b in zip(mine, lib, strict=True):
        assert np.allclose(a, b)


def test_the_solution_is_right_for_causal_self_attention_too():
    """The mask lives in A: one backward serves padding and causal masks alike."""
    rng = np.random.default_rng(7)
    B, T, D = 3, 4, 6
    args = [rng.standard_normal(s) for s in [(B, T, D)] * 3 + [(D, D)] * 4 + [(D,)] * 4]
    forward = partial(mod.multihead_attention_forward, key_lengths=np.array([4, 2, 3]),
                      causal=True)
    assert check_function(forward, mod._backward, *args, tol=TOL_STEP).passed
    wrong = check_function(forward, partial(mod._backward, scale=False), *args, tol=TOL_STEP)
    assert not wrong.passed and {"query", "W_q"} <= set(wrong.failed)


def test_the_mask_solution_is_the_definition():
    for lengths, T, S, causal in [([5, 3, 1], 4, 5, False), ([4, 2, 3], 4, 4, True)]:
        got = mod._mask_solution(np.array(lengths), T, S, causal)
        assert got.dtype == bool and np.array_equal(got, mask_learner(lengths, T, S, causal))
