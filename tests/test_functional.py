"""Elementwise and softmax forward/backward pairs, Linear, Embedding, loss."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tinyattn as ta
from tinyattn import functional as F
from tinyattn.gradcheck import TOL_STEP, check_function, check_gradients, check_module

PAIRS = {
    "sigmoid": (F.sigmoid_forward, F.sigmoid_backward),
    "tanh": (F.tanh_forward, F.tanh_backward),
    "softmax": (F.softmax_forward, F.softmax_backward),
    "log_softmax": (F.log_softmax_forward, F.log_softmax_backward),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pairs_gradcheck(name):
    x = np.random.default_rng(0).standard_normal((3, 4, 7))
    fwd, bwd = PAIRS[name]
    assert check_function(fwd, bwd, x).passed


def test_masked_softmax_gradcheck_and_zeros():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((2, 3, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)[:, None, :]
    r = check_function(lambda s: F.masked_softmax_forward(s, mask), F.masked_softmax_backward,
                       scores, names=["scores"])
    assert r.passed, str(r)
    alpha, _ = F.masked_softmax_forward(scores, mask)
    assert np.all(alpha[0, :, 3:] == 0.0)
    assert np.all(r["scores"].analytic[0, :, 3:] == 0.0)


def test_masked_softmax_all_masked_row_is_an_error():
    with pytest.raises(ValueError, match="no True entry"):
        F.masked_softmax_forward(np.zeros((2, 3)), np.array([[1, 0, 0], [0, 0, 0]], bool))
    with pytest.raises(TypeError, match="bool"):
        F.masked_softmax_forward(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="mask must have shape"):
        F.masked_softmax_forward(np.zeros((2, 3)), np.ones((3,), bool))


finite = st.floats(-50, 50, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=finite),
       st.data())
def test_masked_softmax_properties(scores, data):
    mask = data.draw(arrays(bool, scores.shape))
    mask[:, 0] |= ~mask.any(axis=1)  # at least one real position per row
    alpha, _ = F.masked_softmax_forward(scores, mask)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(alpha[~mask] == 0.0)
    assert np.all(alpha >= 0)
    # permuting positions permutes the weights
    perm = data.draw(st.permutations(range(scores.shape[1])))
    alpha_p, _ = F.masked_softmax_forward(scores[:, perm], mask[:, perm])
    np.testing.assert_allclose(alpha_p, alpha[:, perm], rtol=1e-12, atol=1e-300)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
              elements=st.floats(-700, 700)))
def test_softmax_is_stable_for_large_scores(x):
    y = F.softmax(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(F.log_softmax(x)), y, rtol=1e-9, atol=1e-300)


def test_sigmoid_never_overflows():
    with np.errstate(all="raise"):
        y = F.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])


def test_linear_gradcheck_any_leading_dims():
    rng = np.random.default_rng(0)
    lin = ta.Linear(5, 3, rng=rng)
    for shape in [(5,), (4, 5), (2, 3, 5)]:
        r = check_module(lin, rng.standard_normal(shape), tol=TOL_STEP)
        assert r.passed, str(r)


def test_embedding_gradcheck_repeats_and_padding():
    rng = np.random.default_rng(0)
    emb = ta.Embedding(7, 4, rng=rng, pad_id=0)
    assert not emb.params["W"][0].any()
    ids = np.array([[1, 3, 3, 0], [2, 1, 0, 0]])
    out = emb(ids)
    assert out.shape == (2, 4, 4)
    dout = rng.standard_normal(out.shape)
    emb.backward(dout)
    assert not emb.grads["W"][0].any(), "the padding row gets no gradient"
    np.testing.assert_allclose(emb.grads["W"][3], dout[0, 1] + dout[0, 2])
    emb.zero_grad()
    W = emb.params["W"]

    def backward(d):
        emb.zero_grad()
        emb(ids)
        emb.backward(d)
        g = emb.grads["W"].copy()
        return {"W": g}

    # The pad row's true gradient is nonzero numerically; exclude it by
    # checking rows 1.. only (its gradient is held at 0 on purpose).
    rows = W[1:]
    r = check_gradients(lambda: emb(ids), lambda d: {"rows": backward(d)["W"][1:]},
                        {"rows": rows})
    assert r.passed, str(r)


def test_embedding_rejects_out_of_vocabulary():
    emb = ta.Embedding(5, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"ids must be token ids in 0..4 .*got ids\[0, 1\] = 5"):
        emb(np.array([[1, 5]]))
    with pytest.raises(TypeError, match="ids must hold integer token ids, got dtype float64"):
        emb(np.array([0.5]))


def test_sequence_cross_entropy_counts_only_real_tokens():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5))
    targets = np.array([[1, 4, 0], [2, 0, 0]])
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    loss, dlogits = ta.sequence_cross_entropy(logits, targets, mask)
    logp = F.log_softmax(logits)
    want = -(logp[0, 0, 1] + logp[0, 1, 4] + logp[1, 0, 2]) / 3
    assert loss == pytest.approx(want, rel=1e-12)
    assert not dlogits[0, 2].any() and not dlogits[1, 1:].any()
    r = check_gradients(lambda: np.array(ta.sequence_cross_entropy(logits, targets, mask)[0]),
                        lambda d: {"logits": d * dlogits}, {"logits": logits}, tol=TOL_STEP)
    assert r.passed, str(r)
    # pads may hold any id, even out of range
    targets[1, 2] = 99
    assert ta.sequence_cross_entropy(logits, targets, mask)[0] == pytest.approx(loss)


def test_sequence_cross_entropy_bad_input():
    logits = np.zeros((2, 3, 5))
    with pytest.raises(ValueError, match=r"targets must be token ids in 0..4 .*\[0, 0\] = 5"):
        ta.sequence_cross_entropy(logits, np.full((2, 3), 5), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"mask must be a bool array of shape \(2, 3\)"):
        ta.sequence_cross_entropy(logits, np.zeros((2, 3), int), np.ones((2, 3)))
    with pytest.raises(ValueError, match="no True entry"):
        ta.sequence_cross_entropy(logits, np.zeros((2, 3), int), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"mask must be a bool array of shape \(2, 3\)"):
        ta.sequence_cross_entropy(logits, np.zeros((3, 2), int), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\), got \(3, 2\)"):
        ta.sequence_cross_entropy(logits, np.zeros((3, 2), int), np.ones((2, 3), bool))
    with pytest.raises(TypeError, match=r"targets must hold integer token ids, got dtype float64"):
        ta.sequence_cross_entropy(logits, np.zeros((2, 3)), np.ones((2, 3), bool))
