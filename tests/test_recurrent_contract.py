"""The layer contract (docs/design.md §2, §7) over every recurrent layer and option."""

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.gradcheck import _flatten as flatten
from tinyattn.recurrent import zeros_like_state

from .conftest import LAYERS, B, D, T, is_lstm, make_state

LENGTHS = [None, np.array([4, 2]), np.array([1, 3])]


def _zeros_like_out(layer, out_state):
    return zeros_like_state(out_state)  # an array, a pair, or a StackState


@pytest.mark.parametrize("lengths", LENGTHS, ids=["full", "len42", "len13"])
def test_gradcheck_every_input_and_parameter(layer_name, lengths, rng):
    layer = LAYERS[layer_name](rng, np.float64)
    x = rng.standard_normal((B, T, D))
    state0 = make_state(layer, rng)
    result = check_module(layer, x, state0, lengths=lengths)
    checked = {r.name for r in result.reports}
    assert {name for name, _, _ in layer.named_parameters()} <= checked
    assert "x" in checked and len(checked) == len(list(layer.named_parameters())) + 1 + len(
        flatten(state0))
    assert result.max_error <= TOL_LAYER, str(result)


def test_final_state_path_alone(layer_name, rng):
    """Only the final state reaches the loss: gradients must still be right."""
    layer = LAYERS[layer_name](rng, np.float64)
    x = rng.standard_normal((B, T, D))
    lengths = np.array([3, 4])
    state0 = make_state(layer, rng)

    def forward():
        return layer(x, state0, lengths)[1]

    def backward(dstate):
        layer.zero_grad()
        _, final = layer(x, state0, lengths)
        dhs = np.zeros((B, T, layer.hidden_size))
        dx, dstate0 = layer.backward(dhs, dstate)
        grads = {"x": dx}
        for k, g in enumerate(flatten(dstate0)):
            grads[f"s{k}"] = g
        grads.update({n: g.copy() for n, _, g in layer.named_parameters()})
        return grads

    from tinyattn.gradcheck import check_gradients

    arrays = {"x": x, **{f"s{k}": s for k, s in enumerate(flatten(state0))}}
    arrays.update({n: v for n, v, _ in layer.named_parameters()})
    result = check_gradients(forward, backward, arrays, tol=TOL_LAYER)
    assert result.passed, str(result)


def test_gradients_accumulate(layer_name, rng):
    layer = LAYERS[layer_name](rng, np.float64)
    x = rng.standard_normal((B, T, D))
    dhs = rng.standard_normal((B, T, layer.hidden_size))
    layer(x)
    layer.backward(dhs)
    once = {n: g.copy() for n, _, g in layer.named_parameters()}
    layer(x)
    layer.backward(dhs)
    for n, _, g in layer.named_parameters():
        np.testing.assert_allclose(g, 2 * once[n], rtol=1e-12, atol=1e-14)
    layer.zero_grad()
    assert all(not g.any() for _, _, g in layer.named_parameters())


def test_backward_without_forward_raises(layer_name, rng):
    layer = LAYERS[layer_name](rng, np.float64)
    dhs = np.zeros((B, T, layer.hidden_size))
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(dhs)
    layer(rng.standard_normal((B, T, D)))
    layer.backward(dhs)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(dhs)  # one forward allows one backward


def test_inputs_not_mutated(layer_name, rng):
    layer = LAYERS[layer_name](rng, np.float64)
    x = rng.standard_normal((B, T, D))
    state0 = make_state(layer, rng)
    dhs = rng.standard_normal((B, T, layer.hidden_size))
    lengths = np.array([4, 2])
    hs, final = layer(x, state0, lengths)
    dfinal = _zeros_like_out(layer, final)
    copies = [a.copy() for a in [x, dhs, lengths, *flatten(state0), *flatten(dfinal)]]
    layer.backward(dhs, dfinal)
    for a, c in zip([x, dhs, lengths, *flatten(state0), *flatten(dfinal)], copies):
        np.testing.assert_array_equal(a, c)


def test_outputs_do_not_alias_buffers(layer_name, rng):
    """Buffers are reused across calls; returned arrays must not be them."""
    layer = LAYERS[layer_name](rng, np.float64)
    x1, x2 = rng.standard_normal((2, B, T, D))
    hs1, final1 = layer(x1)
    keep = [a.copy() for a in [hs1, *flatten(final1)]]
    layer(x2)
    for a, c in zip([hs1, *flatten(final1)], keep):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", ["rnn", "gru", "gru_cho", "lstm"])
def test_one_step_sequence_equals_step(name, rng):
    layer = LAYERS[name](rng, np.float64)
    x = rng.standard_normal((B, 1, D))
    state0 = make_state(layer, rng)
    hs, final = layer(x, state0)
    out, _ = layer.step(x[:, 0], state0)
    for a, b in zip(flatten(final), flatten(out)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(hs[:, 0], flatten(out)[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", ["rnn", "gru", "gru_cho", "lstm"])
@pytest.mark.parametrize("lengths", [None, np.array([4, 2])], ids=["full", "padded"])
def test_fast_path_equals_naive_step_loop(name, lengths, rng):
    """The vectorised module agrees with a plain loop of the step functions."""
    layer = LAYERS[name](rng, np.float64)
    x = rng.standard_normal((B, T, D))
    state0 = make_state(layer, rng)
    dhs = rng.standard_normal((B, T, layer.hidden_size))
    hs, final = layer(x, state0, lengths)
    dx, dstate0 = layer.backward(dhs)
    fast = {n: g.copy() for n, _, g in layer.named_parameters()}
    layer.zero_grad()
    # Naive reference: each sequence alone, step by step, with step/step_backward.
    Ls = [T] * B if lengths is None else list(lengths)
    for b in range(B):
        st = tuple(s[b:b + 1] for s in state0) if is_lstm(layer) else state0[b:b + 1]
        caches, outs = [], []
        for t in range(Ls[b]):
            st, cache = layer.step(x[b:b + 1, t], st)
            caches.append(cache)
            outs.append(flatten(st)[0])
        np.testing.assert_allclose(np.concatenate(outs), hs[b, :Ls[b]], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(hs[b, Ls[b]:], 0.0)
        for got, want in zip(flatten(final), flatten(st)):
            np.testing.assert_allclose(got[b:b + 1], want, rtol=1e-12, atol=1e-13)
        dst = (np.zeros((1, layer.hidden_size)),) * 2 if is_lstm(layer) else np.zeros(
            (1, layer.hidden_size))
        for t in reversed(range(Ls[b])):
            if is_lstm(layer):
                dst = (dst[0] + dhs[b:b + 1, t], dst[1])
            else:
                dst = dst + dhs[b:b + 1, t]
            dx_t, dst = layer.step_backward(dst, caches[t])
            np.testing.assert_allclose(dx[b:b + 1, t], dx_t, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx[b, Ls[b]:], 0.0)
        for got, want in zip(flatten(dstate0), flatten(dst)):
            np.testing.assert_allclose(got[b:b + 1], want, rtol=1e-10, atol=1e-12)
    for n, _, g in layer.named_parameters():
        np.testing.assert_allclose(fast[n], g, rtol=1e-10, atol=1e-12, err_msg=n)


def test_two_stacked_layers_compose(rng):
    """Stacking is composing modules: layer 2 reads layer 1's outputs."""
    first = ta.Bidirectional(ta.GRU(D, 3, rng=rng), ta.GRU(D, 3, rng=rng))
    second = ta.LSTM(6, 4, rng=rng)

    class Stack(ta.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = first, second

        def forward(self, x, lengths=None):
            hs1, _ = self.first(x, None, lengths)
            return self.second(hs1, None, lengths)

        def backward(self, dhs, dstate=None):
            dhs1, _ = self.second.backward(dhs, dstate)
            dx, _ = self.first.backward(dhs1)
            return dx

    stack = Stack()
    x = rng.standard_normal((B, T, D))
    result = check_module(stack, x, lengths=np.array([2, 4]))
    assert result.passed, str(result)
    assert [n for n, _, _ in stack.named_parameters()][:2] == ["first.fwd.W_x", "first.fwd.W_h"]


@pytest.mark.parametrize("lengths", [None, np.array([4, 2])], ids=["full", "padded"])
def test_float32_matches_float64(layer_name, lengths, rng):
    l64 = LAYERS[layer_name](np.random.default_rng(7), np.float64)
    l32 = LAYERS[layer_name](np.random.default_rng(7), np.float32)
    x = rng.standard_normal((B, T, D))
    dhs = rng.standard_normal((B, T, l64.hidden_size))
    hs64, fin64 = l64(x, None, lengths)
    hs32, fin32 = l32(x.astype(np.float32), None, lengths)
    dx64, _ = l64.backward(dhs)
    dx32, _ = l32.backward(dhs.astype(np.float32))
    outs32 = [hs32, *flatten(fin32), dx32] + [g for _, _, g in l32.named_parameters()]
    outs64 = [hs64, *flatten(fin64), dx64] + [g for _, _, g in l64.named_parameters()]
    for a32, a64 in zip(outs32, outs64):
        assert a32.dtype == np.float32  # no silent upcast anywhere
        np.testing.assert_allclose(a32, a64, rtol=1e-5, atol=1e-5)


def test_named_parameters_order_and_shapes(rng):
    lstm = ta.LSTM(D, 6, rng=rng)
    assert [(n, v.shape) for n, v, _ in lstm.named_parameters()] == [
        ("W_x", (D, 24)), ("W_h", (6, 24)), ("b", (24,))]
    gru = ta.Bidirectional(ta.GRU(D, 6, rng=rng), ta.GRU(D, 6, rng=rng))
    assert [n for n, _, _ in gru.named_parameters()] == [
        "fwd.W_x", "fwd.W_h", "fwd.b_x", "fwd.b_h", "bwd.W_x", "bwd.W_h", "bwd.b_x", "bwd.b_h"]
    rnn = ta.RNN(D, 6, rng=rng)
    assert [n for n, _, _ in rnn.named_parameters()] == ["W_xh", "W_hh", "b_h"]
    for module in (lstm, gru, rnn):
        for _, v, g in module.named_parameters():
            assert v.shape == g.shape and v.dtype == g.dtype
    assert [(p, type(m).__name__) for p, m in gru.named_modules()] == [
        ("", "Bidirectional"), ("fwd.", "GRU"), ("bwd.", "GRU")]
    assert [p + n for p, m in gru.named_modules() for n in m.params] == [
        n for n, _, _ in gru.named_parameters()]
