"""Lesson 13's exercise `multi_head_backward`: a right backward passes, the
classic mistakes are named. The backwards are written here as a learner would
write them (a loop over heads), independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex


def learner(dY, cache, *, no_scale=False, plain_reshape=False, no_row_sum=False,
            dk_no_transpose=False, drop=""):
    X, W_q, W_k, W_v, W_o, Qh, Kh, Vh, Ah, concat = cache
    n, T, dk = Qh.shape
    dconcat = dY @ W_o.T
    dQ, dK, dV = (np.zeros((T, n * dk)) for _ in range(3))
    for h in range(n):
        cols = slice(h * dk, (h + 1) * dk)
        if plain_reshape:  # the (T, n·dk) block read as if it were (n, T, dk)
            d_head = dconcat.reshape(n, T, dk)[h]
        else:
            d_head = dconcat[:, cols]
        A, Q, K, V = Ah[h], Qh[h], Kh[h], Vh[h]
        dA = d_head @ V.T
        if no_row_sum:
            dS = A * dA
        else:
            dS = A * (dA - (dA * A).sum(axis=1, keepdims=True))
        s = 1.0 if no_scale else 1.0 / np.sqrt(dk)
        grads = (dS @ K * s, (dS if dk_no_transpose else dS.T) @ Q * s, A.T @ d_head)
        for full, g in zip((dQ, dK, dV), grads):
            if plain_reshape:
                full.reshape(n, T, dk)[h] = g
            else:
                full[:, cols] = g
    dX = np.zeros_like(X)
    for name, d, W in (("q", dQ, W_q), ("k", dK, W_k), ("v", dV, W_v)):
        if name not in drop:
            dX += d @ W.T
    return dX, X.T @ dQ, X.T @ dK, X.T @ dV, concat.T @ dY


def test_a_learner_version_passes():
    r = ex.check("multi_head_backward", learner, verbose=False)
    assert r.passed, r.text


@pytest.mark.parametrize("kw, label, wrong", [
    ({"no_scale": True}, "1/√d_k missing", {"dX", "dW_q", "dW_k"}),
    ({"plain_reshape": True}, "reshape alone", None),
    ({"no_row_sum": True}, "without the row sum", {"dX", "dW_q", "dW_k"}),
    ({"dk_no_transpose": True}, "dK computed from dS", {"dX", "dW_k"}),
    ({"drop": "q"}, "path through Q", {"dX"}),
    ({"drop": "k"}, "path through K", {"dX"}),
    ({"drop": "v"}, "path through V", {"dX"}),
])
def test_mistakes_are_named(kw, label, wrong):
    r = ex.check("multi_head_backward", lambda dY, cache: learner(dY, cache, **kw),
                 verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    if wrong is not None:
        assert f"wrong {', '.join(sorted(wrong, key=['dX', 'dW_q', 'dW_k', 'dW_v'].index))}" \
            in r.text, r.text
