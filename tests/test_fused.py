"""The fused in-place loops of RNN and GRU (tinyattn.fused) give the plain
loop's numbers: outputs, final states, input and state gradients, every
weight gradient."""

import numpy as np
import pytest

import tinyattn as ta

from .conftest import B, D, H, T

CELLS = {
    "rnn": lambda fused, dt: ta.RNN(D, H, rng=np.random.default_rng(0), dtype=dt, fused=fused),
    "gru": lambda fused, dt: ta.GRU(D, H, rng=np.random.default_rng(0), dtype=dt, fused=fused),
    "gru_cho": lambda fused, dt: ta.GRU(D, H, reset_after=False, rng=np.random.default_rng(0),
                                        dtype=dt, fused=fused),
}
LENGTHS = {"full": None, "ragged": np.array([T, 2]), "short": np.array([1, 3])}


def _run(layer, x, state0, lengths, dhs, dstate):
    hs, final = layer(x, state0, lengths)
    dx, dstate0 = layer.backward(dhs, dstate)
    return hs, final, dx, dstate0, {k: g.copy() for k, g in layer.grads.items()}


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_fused_equals_plain(name, lengths, dtype, rtol):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    state0 = rng.standard_normal((B, H)).astype(dtype)
    dstate = rng.standard_normal((B, H)).astype(dtype)
    plain = _run(CELLS[name](False, dtype), x, state0, lengths, dhs, dstate)
    fused = _run(CELLS[name](True, dtype), x, state0, lengths, dhs, dstate)
    pairs = [("hs", plain[0], fused[0]), ("h_T", plain[1], fused[1]), ("dx", plain[2], fused[2]),
             ("dh0", plain[3], fused[3])] + [(k, plain[4][k], fused[4][k]) for k in plain[4]]
    for label, a, b in pairs:
        assert a.dtype == b.dtype == dtype, label
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol, err_msg=label)


def test_a_wrong_fused_loop_would_be_caught(monkeypatch):
    """The comparison can fail: perturb the fused GRU's recurrent gradient."""
    layer_plain, layer_fused = CELLS["gru"](False, np.float64), CELLS["gru"](True, np.float64)
    rng = np.random.default_rng(2)
    x, dhs = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, H))
    original = type(layer_fused)._fused_backward

    def off_by_a_bit(self, dhs, dh_T):
        out = original(self, dhs, dh_T)
        self.grads["W_h"] *= 1.001
        return out

    monkeypatch.setattr(type(layer_fused), "_fused_backward", off_by_a_bit)
    plain, fused = _run(layer_plain, x, None, None, dhs, None), _run(layer_fused, x, None,
                                                                    None, dhs, None)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(fused[4]["W_h"], plain[4]["W_h"], rtol=1e-12)


def test_fused_must_be_a_bool():
    with pytest.raises(TypeError, match="fused must be True or False, got 1"):
        ta.GRU(D, H, rng=np.random.default_rng(0), fused=1)


def test_the_lstm_has_only_the_plain_loop():
    with pytest.raises(TypeError, match="fused"):
        ta.LSTM(D, H, rng=np.random.default_rng(0), fused=True)
