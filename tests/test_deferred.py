"""Deferred weight gradients (one product after a step loop) equal the
per-step products of the plain step functions."""

import numpy as np
import pytest

from tinyattn.decoders import add_hidden
from tinyattn.gru import gru_step_backward
from tinyattn.lstm import lstm_step_backward
from tinyattn.recurrent import DeferredGrads
from tinyattn.rnn import rnn_step_backward

from .conftest import LAYERS, B, D, T, is_lstm, make_state

PURE = {"rnn": rnn_step_backward, "gru": gru_step_backward, "gru_cho": gru_step_backward,
        "lstm": lstm_step_backward}


def _pure_backward(name, layer, upstreams, caches):
    """The reference: the plain step functions, their weight gradients summed per step."""
    grads = {key: np.zeros_like(value) for key, value in layer.params.items()}
    dstate, dxs = make_state(layer, np.random.default_rng(3)), []
    for t in reversed(range(len(caches))):
        up = add_hidden(dstate, upstreams[t])
        if is_lstm(layer):
            dx, dh_prev, dc_prev, *dweights = PURE[name](*up, caches[t])
            dstate = (dh_prev, dc_prev)
        else:
            dx, dstate, *dweights = PURE[name](up, caches[t])
        for key, grad in zip(grads, dweights):  # params are registered in argument order
            grads[key] += grad
        dxs.append(dx)
    return dxs, grads


@pytest.mark.parametrize("name", ["rnn", "gru", "gru_cho", "lstm"])
@pytest.mark.parametrize("deferring", [False, True])
def test_step_backward_equals_the_plain_step_functions(name, deferring):
    """With or without ``defer``, a module's step_backward gives the gradients
    of the pure step functions, products summed per step."""
    rng = np.random.default_rng(7)
    layer = LAYERS[name](np.random.default_rng(0), np.float64)
    xs = rng.standard_normal((T, B, D))
    state = make_state(layer, rng)
    caches = []
    for t in range(T):
        state, cache = layer.step(xs[t], state)
        caches.append(cache)
    upstreams = [(make_state(layer, rng)[0] if is_lstm(layer) else make_state(layer, rng))
                 for _ in range(T)]
    ref_dxs, ref_grads = _pure_backward(name, layer, upstreams, caches)

    defer = DeferredGrads() if deferring else None
    dstate, dxs = make_state(layer, np.random.default_rng(3)), []
    for t in reversed(range(T)):
        dx, dstate = layer.step_backward(add_hidden(dstate, upstreams[t]), caches[t], defer)
        dxs.append(dx)
    if defer is not None:
        for key in layer.grads:  # nothing lands before the flush
            assert not layer.grads[key].any(), key
        defer.flush()
    for a, b in zip(dxs, ref_dxs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for key in ref_grads:
        np.testing.assert_allclose(layer.grads[key], ref_grads[key], rtol=1e-12,
                                   atol=1e-13, err_msg=key)
        assert ref_grads[key].any(), key


def test_flush_stacks_each_argument_once_and_clears():
    """flush calls each queued function once, with every argument's rows stacked
    in queue order (None stays None), and empties the queue."""
    rng = np.random.default_rng(1)
    grads = np.zeros((2, 3))
    calls = []

    def accumulate(left, right, absent):
        calls.append((left.shape, right.shape, absent))
        grads[...] += left.T @ right

    defer = DeferredGrads()
    lefts = [rng.standard_normal((4, 2)) for _ in range(3)]
    rights = [rng.standard_normal((4, 3)) for _ in range(3)]
    for left, right in zip(lefts, rights):
        defer.add(accumulate, left, right, None)
    assert not calls  # nothing runs before the flush
    defer.flush()
    assert calls == [((12, 2), (12, 3), None)]
    np.testing.assert_allclose(grads, sum(a.T @ b for a, b in zip(lefts, rights)), rtol=1e-13)
    defer.flush()  # the queue was cleared: a second flush calls nothing
    assert len(calls) == 1
