"""The checker must be able to fail, and say where (docs/design.md §7)."""

import numpy as np
import pytest

import tinyattn as ta
from tinyattn import gradcheck
from tinyattn.gradcheck import check_function, check_module
from tinyattn.lstm import lstm_step_backward, lstm_step_forward
from tinyattn.rnn import rnn_step_backward, rnn_step_forward

B, T, D, H = 2, 4, 5, 6


def _lstm_args(rng):
    shapes = [(B, D), (B, H), (B, H), (D, 4 * H), (H, 4 * H), (4 * H,)]
    return [rng.standard_normal(s) for s in shapes]


def test_correct_step_functions_pass():
    rng = np.random.default_rng(0)
    r = check_function(lstm_step_forward, lstm_step_backward, *_lstm_args(rng))
    assert r.passed, str(r)
    assert [x.name for x in r.reports] == ["x_t", "h_prev", "c_prev", "W_x", "W_h", "b"]
    assert r.max_error < gradcheck.TOL_STEP


def test_wrong_forget_gate_backward_is_caught_and_located():
    """σ' dropped on the forget gate (da_f = df): only gate f is wrong."""
    rng = np.random.default_rng(0)

    def buggy_backward(dh, dc, cache):
        dx, dh_prev, dc_prev, dW_x, dW_h, db = lstm_step_backward(dh, dc, cache)
        x_t, h_prev, c_prev, W_x, W_h, i, f, g, o, tc = cache
        df = (dc + dh * o * (1 - tc**2)) * c_prev
        da = np.zeros((B, 4 * H))
        da[:, H:2 * H] = df - df * f * (1 - f)  # (buggy da_f) − (right da_f)
        return (dx + da @ W_x.T, dh_prev + da @ W_h.T, dc_prev, dW_x + x_t.T @ da,
                dW_h + h_prev.T @ da, db + da.sum(0))

    r = check_function(lstm_step_forward, buggy_backward, *_lstm_args(rng),
                       gates={"W_x": "ifgo", "W_h": "ifgo", "b": "ifgo"})
    assert not r.passed
    assert {"W_x", "W_h", "b", "x_t", "h_prev"} <= set(r.failed)
    assert "c_prev" not in r.failed
    assert r["W_h"].parts["gate f"] > 1e-3
    for gate in "igo":
        assert r["W_h"].parts[f"gate {gate}"] <= r.tol
    assert "wrong in: gate f" in str(r)
    with pytest.raises(AssertionError, match="FAILED for"):
        r.assert_ok()


def test_dropped_dh_next_is_caught_with_time_steps():
    """A sequence backward that forgets the carried dh_next fails, per step."""
    rng = np.random.default_rng(1)
    rnn = ta.RNN(D, H, rng=rng)
    x = rng.standard_normal((B, T, D))

    class Buggy(ta.RNN):
        def backward(self, dhs, dh_T=None):
            caches = self._take_cache()
            dx = np.zeros((B, T, D))
            for t in reversed(range(T)):
                dh = dhs[:, t] + (dh_T if t == T - 1 else 0.0)
                # BUG: dh_next from step t+1 is not added
                dx[:, t], _, dW_xh, dW_hh, db_h = rnn_step_backward(dh, caches[t])
                self.grads["W_xh"] += dW_xh
                self.grads["W_hh"] += dW_hh
                self.grads["b_h"] += db_h
            return dx, np.zeros((B, H))

        def forward(self, x, h0=None, lengths=None):
            h = np.zeros((B, H)) if h0 is None else h0
            hs, caches = np.zeros((B, T, H)), []
            for t in range(T):
                p = self.params
                h, cache = rnn_step_forward(x[:, t], h, p["W_xh"], p["W_hh"], p["b_h"])
                hs[:, t] = h
                caches.append(cache)
            self._cache = caches
            return hs, h

    buggy = Buggy(D, H, rng=np.random.default_rng(1))
    for k in rnn.params:
        buggy.params[k][...] = rnn.params[k]
    r = check_module(buggy, x)
    assert not r.passed
    assert "x" in r.failed and "W_hh" in r.failed
    # The last step has no dh_next to drop: right there, wrong before it.
    parts = r["x"].parts
    assert parts[f"t={T - 1}"] <= r.tol
    assert parts["t=0"] > 1e-2
    assert check_module(rnn, x).passed  # the library's own backward passes


def test_float32_is_refused():
    rng = np.random.default_rng(0)
    args = [a.astype(np.float32) for a in _lstm_args(rng)]
    with pytest.raises(TypeError, match="float64.*x_t has dtype float32"):
        check_function(lstm_step_forward, lstm_step_backward, *args)


def test_wrong_gradient_shape_named():
    rng = np.random.default_rng(0)

    def backward(dh, cache):
        dx, dh_prev, dW_xh, dW_hh, db_h = rnn_step_backward(dh, cache)
        return dx, dh_prev, dW_xh.T, dW_hh, db_h  # a transposed weight gradient

    args = [rng.standard_normal(s) for s in [(B, D), (B, H), (D, H), (H, H), (H,)]]
    with pytest.raises(ValueError, match="shape .6, 5. for W_xh"):
        check_function(rnn_step_forward, backward, *args)


def test_tiny_true_gradients_are_no_false_alarm():
    """Saturated tanh: gradients ~1e-8 whose differences are mostly noise."""
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s) * 6 for s in [(B, D), (B, H), (D, H), (H, H), (H,)]]
    r = check_function(rnn_step_forward, rnn_step_backward, *args)
    assert np.abs(r["W_xh"].analytic).min() < 1e-6
    assert r.passed, str(r)


def test_numerical_gradient_of_known_function():
    x = np.array([0.3, -1.2, 2.0])
    g = gradcheck.numerical_gradient(lambda: float(np.sum(np.sin(x))), x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-9)


def test_a_backward_that_writes_into_its_inputs_and_douts_changes_nothing():
    """The checker restores the arrays and hands the backward a copy of douts."""
    rng = np.random.default_rng(1)
    args = [rng.standard_normal(s) for s in [(2, 5), (2, 6), (5, 6), (6, 6), (6,)]]
    before = [a.copy() for a in args]

    def scribbling_backward(dh, cache):
        grads = rnn_step_backward(dh, cache)
        for a in (*args, dh):
            a *= 3.0  # a careless in-place update of its inputs and of dh
        return grads

    r = check_function(rnn_step_forward, scribbling_backward, *args)
    assert r.passed, str(r)
    assert all(np.array_equal(a, b) for a, b in zip(args, before))
    assert r.douts.shape == (2, 6)


def test_a_backward_that_writes_then_raises_leaves_the_arrays_as_they_were():
    rng = np.random.default_rng(2)
    args = [rng.standard_normal(s) for s in [(2, 5), (2, 6), (5, 6), (6, 6), (6,)]]
    before = [a.copy() for a in args]

    def failing_backward(dh, cache):
        args[2][...] = 0.0
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        check_function(rnn_step_forward, failing_backward, *args)
    assert all(np.array_equal(a, b) for a, b in zip(args, before))
