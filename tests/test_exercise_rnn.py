"""Lesson 01's exercises `rnn_output_loss_backward` and `rnn_backward`: the right
versions pass, the classic mistakes are named. The buggy versions are written
here as a learner would write them, independently of the package's predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex

# ------------------------------------------------------------ output layer and loss


def out_right(dloss, cache, *, flip=False, total=False, mean_over=None, bias_rows=False,
              transpose_dW=False):
    h, W_hy, o, targets = cache
    B = h.shape[0]
    onehot = np.zeros_like(o)
    onehot[np.arange(B), targets] = 1.0
    dz = (onehot - o) if flip else (o - onehot)
    if not total:
        dz = dz / B
    dz = dz * dloss
    dW = dz.T @ h if transpose_dW else h.T @ dz
    db = dz if bias_rows else dz.sum(axis=0)
    return dz @ W_hy.T, dW, db


def out_no_dloss(dloss, cache):
    return out_right(1.0, cache)


def out_no_onehot(dloss, cache):
    h, W_hy, o, targets = cache
    dz = o / h.shape[0] * dloss
    return dz @ W_hy.T, h.T @ dz, dz.sum(axis=0)


def test_output_loss_right_passes():
    assert ex.check("rnn_output_loss_backward", out_right, verbose=False).passed


@pytest.mark.parametrize("fn, label", [
    (lambda d, c: out_right(d, c, flip=True), "wrong sign (onehot − o)"),
    (lambda d, c: out_right(d, c, total=True), "a sum over the batch instead of the mean"),
    (out_no_dloss, "the upstream gradient dloss ignored"),
    (out_no_onehot, "the target's −1 left out"),
])
def test_output_loss_mistakes_are_named(fn, label):
    r = ex.check("rnn_output_loss_backward", fn, verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text


def test_output_loss_shape_mistakes_are_named():
    r = ex.check("rnn_output_loss_backward", lambda d, c: out_right(d, c, transpose_dW=True),
                 verbose=False)
    assert r.status == "shape" and "dW_hy" in r.text and "transposed shape" in r.text
    r = ex.check("rnn_output_loss_backward", lambda d, c: out_right(d, c, bias_rows=True),
                 verbose=False)
    assert r.status == "shape" and "db_y" in r.text and "sum over axis 0" in r.text


def test_output_loss_untransposed_weight_in_dh_is_reported():
    def bad(dloss, cache):
        h, W_hy, o, targets = cache
        dz = (o - np.eye(o.shape[1])[targets]) / h.shape[0] * dloss
        return dz @ W_hy, h.T @ dz, dz.sum(axis=0)

    r = ex.check("rnn_output_loss_backward", bad, verbose=False)
    assert r.status == "error" and "missing a .T" in r.text


# ------------------------------------------------------------ BPTT over a sequence


def bptt(dhs, dh_T, cache, *, carry=True, use_dh_T=True, overwrite=False, prev_slope=False):
    x, h0, hs, W_xh, W_hh = cache
    B, T, H = hs.shape
    dx = np.zeros_like(x)
    dW_xh, dW_hh, db_h = np.zeros_like(W_xh), np.zeros_like(W_hh), np.zeros(H)
    dh_next = dh_T.copy() if use_dh_T else np.zeros((B, H))
    for t in range(T - 1, -1, -1):
        h_prev = h0 if t == 0 else hs[:, t - 1]
        h_for_slope = h_prev if prev_slope else hs[:, t]
        da = (dhs[:, t] + dh_next) * (1 - h_for_slope ** 2)
        dx[:, t] = da @ W_xh.T
        if overwrite:
            dW_xh, dW_hh, db_h = x[:, t].T @ da, h_prev.T @ da, da.sum(0)
        else:
            dW_xh += x[:, t].T @ da
            dW_hh += h_prev.T @ da
            db_h += da.sum(0)
        dh_prev = da @ W_hh.T
        dh_next = dh_prev if carry else np.zeros((B, H))
    return dx, dh_prev, dW_xh, dW_hh, db_h


def test_bptt_right_passes():
    assert ex.check("rnn_backward", bptt, verbose=False).passed


@pytest.mark.parametrize("kw, label, wrong", [
    ({"carry": False}, "dropped dh_next", "dx, dh0, dW_xh, dW_hh, db_h"),
    ({"use_dh_T": False}, "dh_T ignored", "dx, dh0, dW_xh, dW_hh, db_h"),
    ({"overwrite": True}, "weight gradients from one step only", "dW_xh, dW_hh, db_h"),
    ({"prev_slope": True}, "tanh' at the wrong point: 1 − h_{t-1}²",
     "dx, dh0, dW_xh, dW_hh, db_h"),
])
def test_bptt_mistakes_are_named(kw, label, wrong):
    r = ex.check("rnn_backward", lambda a, b, c: bptt(a, b, c, **kw), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"FAILED: wrong {wrong}" in r.text


def test_bptt_weights_from_the_last_step_only_are_named():
    def last_only(dhs, dh_T, cache):
        x, h0, hs, W_xh, W_hh = cache
        dx, dh0, *_ = bptt(dhs, dh_T, cache)
        da = (dhs[:, -1] + dh_T) * (1 - hs[:, -1] ** 2)  # only step T's pre-activation
        return dx, dh0, x[:, -1].T @ da, hs[:, -2].T @ da, da.sum(0)

    r = ex.check("rnn_backward", last_only, verbose=False)
    assert len(r.diagnoses) == 1 and "one step only (the last)" in r.diagnoses[0], r.text


def test_bptt_tanh_of_the_state_again_is_named():
    def twice(dhs, dh_T, cache):
        x, h0, hs, W_xh, W_hh = cache
        return bptt(dhs, dh_T, (x, h0, np.tanh(hs), W_xh, W_hh))

    r = ex.check("rnn_backward", twice, verbose=False)
    assert len(r.diagnoses) == 1 and "1 − tanh(h_t)²" in r.diagnoses[0], r.text
