"""Shared fixtures: small distinct sizes so a transposed axis fails loudly."""

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.recurrent import StackState
from tinyattn.stacked import StackedRNN

B, T, D, H = 2, 4, 5, 6

# name -> factory(rng, dtype). Every recurrent layer and option is listed
# once here, so the contract tests cover all of them.
LAYERS = {
    "rnn": lambda rng, dt: ta.RNN(D, H, rng=rng, dtype=dt),
    "gru": lambda rng, dt: ta.GRU(D, H, rng=rng, dtype=dt),
    "gru_cho": lambda rng, dt: ta.GRU(D, H, reset_after=False, rng=rng, dtype=dt),
    "lstm": lambda rng, dt: ta.LSTM(D, H, rng=rng, dtype=dt),
    # RNN and GRU also have the plain loop over the gates functions (fused=False)
    "rnn_plain": lambda rng, dt: ta.RNN(D, H, rng=rng, dtype=dt, fused=False),
    "gru_plain": lambda rng, dt: ta.GRU(D, H, rng=rng, dtype=dt, fused=False),
    "gru_cho_plain": lambda rng, dt: ta.GRU(D, H, reset_after=False, rng=rng, dtype=dt,
                                            fused=False),
    "bi_gru_plain": lambda rng, dt: ta.Bidirectional(
        ta.GRU(D, H, rng=rng, dtype=dt, fused=False),
        ta.GRU(D, H, rng=rng, dtype=dt, fused=False)),
    "bi_rnn": lambda rng, dt: ta.Bidirectional(ta.RNN(D, H, rng=rng, dtype=dt),
                                               ta.RNN(D, H, rng=rng, dtype=dt)),
    "bi_gru": lambda rng, dt: ta.Bidirectional(ta.GRU(D, H, rng=rng, dtype=dt),
                                               ta.GRU(D, H, rng=rng, dtype=dt)),
    "bi_gru_cho": lambda rng, dt: ta.Bidirectional(
        ta.GRU(D, H, reset_after=False, rng=rng, dtype=dt),
        ta.GRU(D, H, reset_after=False, rng=rng, dtype=dt)),
    "bi_lstm": lambda rng, dt: ta.Bidirectional(ta.LSTM(D, H, rng=rng, dtype=dt),
                                                ta.LSTM(D, H, rng=rng, dtype=dt)),
    # stacks (tinyattn.stacked): the state is a StackState, one state per layer
    "stacked_gru": lambda rng, dt: StackedRNN([ta.GRU(D, H, rng=rng, dtype=dt),
                                               ta.GRU(H, H, rng=rng, dtype=dt)]),
    "stacked_bi_lstm": lambda rng, dt: StackedRNN([
        ta.Bidirectional(ta.LSTM(D, H, rng=rng, dtype=dt), ta.LSTM(D, H, rng=rng, dtype=dt)),
        ta.Bidirectional(ta.LSTM(2 * H, H, rng=rng, dtype=dt),
                         ta.LSTM(2 * H, H, rng=rng, dtype=dt))]),
}


def is_lstm(layer) -> bool:
    if isinstance(layer, StackedRNN):
        return is_lstm(layer.layers[0])
    inner = getattr(layer, "fwd", layer)
    return isinstance(inner, ta.LSTM)


def make_state(layer, rng, batch=B, dtype=np.float64):
    """A random initial state: (B, H') array, or a (h, c) pair for LSTMs; for a
    stack, a StackState of one such state per layer."""
    if isinstance(layer, StackedRNN):
        return StackState(make_state(lay, rng, batch, dtype) for lay in layer.layers)
    Hs = layer.hidden_size
    if is_lstm(layer):
        return (rng.standard_normal((batch, Hs)).astype(dtype),
                rng.standard_normal((batch, Hs)).astype(dtype))
    return rng.standard_normal((batch, Hs)).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=sorted(LAYERS))
def layer_name(request):
    return request.param
