"""Padding invariance: a padded batch gives the same outputs, final states
and gradients as running each example alone, unpadded (docs/design.md §3)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyattn as ta
from tinyattn.gradcheck import _flatten as flatten

from .conftest import LAYERS, D, is_lstm, make_state

T_MAX = 5


def _run(layer, x, state0, lengths, dhs, dfinal):
    layer.zero_grad()
    hs, final = layer(x, state0, lengths)
    dx, dstate0 = layer.backward(dhs, dfinal)
    grads = {n: g.copy() for n, _, g in layer.named_parameters()}
    return hs, flatten(final), dx, flatten(dstate0), grads


def _slice_state(state, b):
    """Row b of a state: an array, a pair, or a StackState (whose type is kept)."""
    if isinstance(state, tuple):
        return type(state)(_slice_state(s, b) for s in state)
    return state[b:b + 1]


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(LAYERS)),
       lengths=st.lists(st.integers(1, T_MAX), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_padded_batch_equals_each_example_alone(name, lengths, seed):
    rng = np.random.default_rng(seed)
    layer = LAYERS[name](rng, np.float64)
    B = len(lengths)
    T = max(lengths) + 1  # always at least one pad column
    lengths = np.array(lengths)
    x = rng.standard_normal((B, T, D))
    state0 = make_state(layer, rng, batch=B)
    dhs = rng.standard_normal((B, T, layer.hidden_size))
    dfinal = make_state(layer, rng, batch=B)
    # Garbage in the pads must change nothing.
    pad = np.arange(T)[None, :] >= lengths[:, None]
    x[pad] = 1e3
    hs, final, dx, dstate0, grads = _run(layer, x, state0, lengths, dhs, dfinal)
    total = {n: np.zeros_like(g) for n, g in grads.items()}
    for b, L in enumerate(lengths):
        hs_b, final_b, dx_b, dstate0_b, grads_b = _run(
            layer, x[b:b + 1, :L], _slice_state(state0, b), None, dhs[b:b + 1, :L],
            _slice_state(dfinal, b))
        np.testing.assert_allclose(hs[b:b + 1, :L], hs_b, rtol=1e-12, atol=1e-13)
        assert not hs[b, L:].any(), "outputs at pads must be exactly 0"
        assert not dx[b, L:].any(), "no gradient may flow into pads"
        np.testing.assert_allclose(dx[b:b + 1, :L], dx_b, rtol=1e-10, atol=1e-12)
        for got, want in zip(final, final_b):
            np.testing.assert_allclose(got[b:b + 1], want, rtol=1e-12, atol=1e-13)
        for got, want in zip(dstate0, dstate0_b):
            np.testing.assert_allclose(got[b:b + 1], want, rtol=1e-10, atol=1e-12)
        for n in total:
            total[n] += grads_b[n]
    for n in grads:
        np.testing.assert_allclose(grads[n], total[n], rtol=1e-10, atol=1e-12, err_msg=n)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["rnn", "gru", "lstm"]),
       lengths=st.lists(st.integers(1, T_MAX), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_bidirectional_backward_half_is_reversed_run(kind, lengths, seed):
    """The backward direction equals the backward layer run alone on each
    sequence reversed within its own length (not reversed with its pads)."""
    rng = np.random.default_rng(seed)
    make = {"rnn": ta.RNN, "gru": ta.GRU, "lstm": ta.LSTM}[kind]
    fwd, bwd = make(D, 3, rng=rng), make(D, 3, rng=rng)
    bi = ta.Bidirectional(fwd, bwd)
    B, T = len(lengths), T_MAX
    x = rng.standard_normal((B, T, D))
    hs, final = bi(x, None, np.array(lengths))
    for b, L in enumerate(lengths):
        rev = x[b:b + 1, :L][:, ::-1].copy()
        hs_b, final_b = bwd(rev)
        np.testing.assert_allclose(hs[b, :L, 3:], hs_b[0, ::-1], rtol=1e-12, atol=1e-13)
        hs_f, final_f = fwd(x[b:b + 1, :L].copy())
        np.testing.assert_allclose(hs[b, :L, :3], hs_f[0], rtol=1e-12, atol=1e-13)
        want = np.concatenate([flatten(final_f)[0], flatten(final_b)[0]], axis=1)
        np.testing.assert_allclose(flatten(final)[0][b:b + 1], want, rtol=1e-12, atol=1e-13)
        # ←h's final state belongs to position 0: it equals hs[b, 0, H:]
        np.testing.assert_allclose(flatten(final)[0][b, 3:], hs[b, 0, 3:], rtol=1e-12)
        assert not hs[b, L:].any()


def test_reverse_index_is_an_involution():
    from tinyattn.bidirectional import reverse_index

    idx = reverse_index(np.array([3, 1, 5]), 3, 5)
    np.testing.assert_array_equal(idx, [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    again = np.take_along_axis(idx, idx, axis=1)
    np.testing.assert_array_equal(again, np.broadcast_to(np.arange(5), (3, 5)))
    assert is_lstm(ta.Bidirectional(ta.LSTM(2, 2, rng=np.random.default_rng(0)),
                                    ta.LSTM(2, 2, rng=np.random.default_rng(1))))
