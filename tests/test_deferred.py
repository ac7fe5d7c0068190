"""Deferred weight gradients (one product after a step loop) equal the
per-step products of the plain step functions."""

import numpy as np
import pytest

from tinyattn._recurrent import DeferredGrads
from tinyattn.decoders import add_hidden

from .conftest import LAYERS, B, D, T, is_lstm, make_state


@pytest.mark.parametrize("name", ["rnn", "gru", "gru_cho", "lstm"])
def test_step_backward_with_defer_equals_per_step_products(name):
    rng = np.random.default_rng(7)
    plain, deferred = LAYERS[name](np.random.default_rng(0), np.float64), \
        LAYERS[name](np.random.default_rng(0), np.float64)
    xs = rng.standard_normal((T, B, D))
    state = make_state(plain, rng)
    caches = []
    for t in range(T):
        state, cache = plain.step(xs[t], state)
        caches.append(cache)
    dstates = [make_state(plain, rng) for _ in range(T)]
    results = []
    for layer, defer in ((plain, None), (deferred, DeferredGrads())):
        dstate = make_state(plain, np.random.default_rng(3))
        dxs = []
        for t in reversed(range(T)):
            upstream = add_hidden(dstate, dstates[t][0] if is_lstm(layer) else dstates[t])
            dx, dstate = layer.step_backward(upstream, caches[t], defer)
            dxs.append(dx)
        if defer is not None:
            for key in layer.grads:  # nothing lands before the flush
                assert not layer.grads[key].any(), key
            defer.flush()
        results.append((dxs, dstate))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for key in plain.grads:
        np.testing.assert_allclose(deferred.grads[key], plain.grads[key], rtol=1e-12,
                                   atol=1e-13, err_msg=key)
        assert plain.grads[key].any(), key


def test_flush_slices_rows_and_cols_and_clears():
    class Holder:
        grads = {"W": np.zeros((4, 6))}

    rng = np.random.default_rng(1)
    holder, defer = Holder(), DeferredGrads()
    lefts = [rng.standard_normal((3, 2)) for _ in range(2)]
    rights = [rng.standard_normal((3, 3)) for _ in range(2)]
    for left, right in zip(lefts, rights):
        defer.add(holder, "W", right, left, rows=(2, 4), cols=(3, 6))
    defer.flush()
    expected = np.zeros((4, 6))
    expected[2:, 3:] = sum(a.T @ b for a, b in zip(lefts, rights))
    np.testing.assert_allclose(holder.grads["W"], expected, rtol=1e-13)
    defer.flush()  # the queue was cleared: a second flush adds nothing
    np.testing.assert_allclose(holder.grads["W"], expected, rtol=1e-13)
