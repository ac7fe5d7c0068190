"""Lesson 04's exercise `plain_decoder_backward`: the exercise's forward is
the library's bridge and `PlainDecoder`, a learner's right backward passes,
and each classic mistake is named, alone. The buggy backwards are written
here as a learner would write them, independently of the package's
predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.bridge import bridge_backward, bridge_forward
from tinyattn.exercises._ex_plain_decoder import GRU_WEIGHTS, plain_decoder_forward, solution
from tinyattn.gru import gru_step_backward
from tinyattn.seq2seq import Seq2Seq


def learner(dlogits, cache, bug=None):
    """A learner's backward, step by step; ``bug`` names one mistake."""
    emb, c, s0, W_s, W_o, states, steps = cache
    B, T, E = emb.shape
    Hd, C = states.shape[2], c.shape[1]
    demb, dc = np.zeros_like(emb), np.zeros_like(c)
    dW_o, db_o = np.zeros_like(W_o), np.zeros(W_o.shape[1])
    ds = np.zeros_like(s0)
    for i in range(T - 1, -1, -1):
        feat = np.concatenate([states[:, i], c, emb[:, i]], axis=1)
        dW_o += feat.T @ dlogits[:, i]
        db_o += dlogits[:, i].sum(axis=0)
        dfeat = dlogits[:, i] @ W_o.T
        d_s, d_c_out, d_e_out = dfeat[:, :Hd], dfeat[:, Hd:Hd + C], dfeat[:, Hd + C:]
        dx, dh_prev = gru_step_backward(d_s if bug == "no carry" else d_s + ds, steps[i])[:2]
        if bug == "order":
            d_c_in, d_e_in = dx[:, :C], dx[:, C:]
        else:
            d_e_in, d_c_in = dx[:, :E], dx[:, E:]
        demb[:, i] = d_e_out + d_e_in
        if bug == "last step" and i < T - 1:
            pass
        elif bug == "no out path":
            dc += d_c_in
        elif bug == "no cell path":
            dc += d_c_out
        else:
            dc += d_c_out + d_c_in
        ds = dh_prev
    dz = ds if bug == "no tanh'" else ds * (1 - s0**2)
    if bug != "no bridge path":
        dc += dz @ (W_s if bug == "W_s untransposed" else W_s.T)
    return demb, dc, c.T @ dz, dz.sum(axis=0), dW_o, db_o


def test_the_forward_is_the_library_bridge_and_plain_decoder():
    rng = np.random.default_rng(5)
    B, T, E, H, V = 2, 3, 4, 3, 7
    model = Seq2Seq(5, V, emb_size=E, hidden_size=H, attention=None, rng=rng)
    cell, out = model.decoder.cell, model.decoder.out
    for name, w in zip(("W_x", "W_h", "b_x", "b_h"), GRU_WEIGHTS):
        cell.params[name][...] = w
    emb, c = rng.standard_normal((B, T, E)), rng.standard_normal((B, 2 * H))
    state0 = bridge_forward((model.bridge,), c)
    memory = model.decoder.prepare(None, None, c)
    want, _ = model.decoder(emb, memory, state0)
    got, cache = plain_decoder_forward(emb, c, model.bridge.params["W"], model.bridge.params["b"],
                                       out.params["W"], out.params["b"])
    assert np.allclose(got, want, rtol=1e-12, atol=1e-13)

    # and the exercise's solution is the library's backward
    dlogits = rng.standard_normal(want.shape)
    model.zero_grad()
    demb, dmemory, dstate0 = model.decoder.backward(dlogits)
    dc = dmemory.context + bridge_backward((model.bridge,), dstate0, state0)
    mine = solution(dlogits, cache)
    expected = (demb, dc, model.bridge.grads["W"], model.bridge.grads["b"], out.grads["W"],
                out.grads["b"])
    for m, w in zip(mine, expected):
        assert np.allclose(m, w, rtol=1e-10, atol=1e-12)


def test_a_learner_version_passes():
    assert ex.check("plain_decoder_backward", learner, verbose=False).passed


@pytest.mark.parametrize("bug, label", [
    ("no tanh'", "bridge's tanh' is missing"),
    ("no out path", "missing the output layer's path"),
    ("no cell path", "missing the cell-input path"),
    ("no bridge path", "missing the bridge's path"),
    ("last step", "dc from the last step only"),
    ("order", "read as [c ; E y]"),
    ("no carry", "not carried back between steps"),
    ("W_s untransposed", "W_s not transposed"),
])
def test_mistakes_are_named(bug, label):
    r = ex.check("plain_decoder_backward", lambda d, cache: learner(d, cache, bug),
                 verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text


def test_a_transposed_weight_gradient_is_named():
    def transposed_dW_s(d, cache):
        grads = list(learner(d, cache))
        grads[2] = grads[2].T  # dW_s = dz.T @ c: square, so only the values show it
        return tuple(grads)

    r = ex.check("plain_decoder_backward", transposed_dW_s, verbose=False)
    assert r.status == "failed" and "wrong dW_s" in r.text
    assert any("transpose" in d for d in r.diagnoses), r.text

    def transposed_dW_o(d, cache):
        grads = list(learner(d, cache))
        grads[4] = grads[4].T
        return tuple(grads)

    r = ex.check("plain_decoder_backward", transposed_dW_o, verbose=False)
    assert r.status == "shape" and "transposed" in r.text
