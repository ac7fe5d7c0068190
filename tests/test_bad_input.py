"""Bad input gets an error naming the argument, the expected and the received
value (docs/design.md §5); nothing is silently broadcast."""

import numpy as np
import pytest

import tinyattn as ta

from .conftest import LAYERS, B, D, T, is_lstm


@pytest.fixture
def layer(layer_name, rng):
    return LAYERS[layer_name](rng, np.float64)


def _x(rng, shape=(B, T, D), dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def test_x_wrong_rank_or_size(layer, rng):
    with pytest.raises(ValueError, match=r"x must have shape \(\?, \?, 5\), got \(2, 4\)"):
        layer(_x(rng, (B, T)))
    with pytest.raises(ValueError, match=r"x must have shape \(\?, \?, 5\), got \(2, 4, 4\)"):
        layer(_x(rng, (B, T, 4)))
    with pytest.raises(TypeError, match="x must be a numpy ndarray, got list"):
        layer([[[0.0] * D]])


def test_x_dtype_mismatch_is_not_silently_cast(layer, rng):
    with pytest.raises(TypeError, match="x must have dtype float64.*got float32"):
        layer(_x(rng, dtype=np.float32))


def test_float32_layer_refuses_float64_input(layer_name, rng):
    layer = LAYERS[layer_name](rng, np.float32)
    with pytest.raises(TypeError, match="x must have dtype float32.*got float64"):
        layer(_x(rng))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_inputs(layer, rng, bad):
    x = _x(rng)
    x[1, 2, 3] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        layer(x)


def test_initial_state_wrong_shape(layer, rng):
    Hs = layer.hidden_size
    bad = np.zeros((B, Hs + 1))
    if is_lstm(layer):
        with pytest.raises(ValueError, match=rf"\(2, {Hs}\), got \(2, {Hs + 1}\)"):
            layer(_x(rng), (np.zeros((B, Hs)), bad))  # c0 wrong
        with pytest.raises(ValueError, match=rf"\(2, {Hs}\), got \(2, {Hs + 1}\)"):
            layer(_x(rng), (bad, np.zeros((B, Hs))))  # h0 wrong
        with pytest.raises(TypeError, match="tuple"):
            layer(_x(rng), np.zeros((B, Hs)))
    else:
        msg = rf"h0 must have shape \(2, {Hs}\), got \(2, {Hs + 1}\)"
        with pytest.raises(ValueError, match=msg):
            layer(_x(rng), bad)
        with pytest.raises(ValueError, match=rf"h0 must have shape \(2, {Hs}\), got \({Hs},\)"):
            layer(_x(rng), np.zeros(Hs))  # no broadcasting a single state


@pytest.mark.parametrize("lengths, message", [
    (np.array([0, 4]), r"lengths must be in 1..4 .*got lengths\[0\] = 0"),
    (np.array([2, 5]), r"lengths must be in 1..4 .*got lengths\[1\] = 5"),
    (np.array([2, 3, 4]), r"lengths must have shape \(2,\), got \(3,\)"),
    (np.array([2.0, 3.0]), r"lengths must hold integers, got dtype float64"),
])
def test_bad_lengths(layer, rng, lengths, message):
    with pytest.raises((ValueError, TypeError), match=message):
        layer(_x(rng), None, lengths)


def test_bad_upstream_gradients(layer, rng):
    layer(_x(rng))
    Hs = layer.hidden_size
    msg = rf"dhs must have shape \(2, 4, {Hs}\), got \(2, 3, {Hs}\)"
    with pytest.raises(ValueError, match=msg):
        layer.backward(np.zeros((B, T - 1, Hs)))
    layer(_x(rng))
    with pytest.raises(TypeError, match="dhs must have dtype float64"):
        layer.backward(np.zeros((B, T, Hs), np.float32))
    layer(_x(rng))
    dhs = np.zeros((B, T, Hs))
    dhs[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="dhs contains NaN"):
        layer.backward(dhs)


def test_empty_batch(layer, rng):
    with pytest.raises(ValueError, match="at least one sequence"):
        layer(np.zeros((0, T, D)))


@pytest.mark.parametrize("make, message", [
    (lambda r: ta.GRU(D, 3, reset_after="yes", rng=r), "reset_after must be True or False"),
    (lambda r: ta.LSTM(D, 0, rng=r), "hidden_size must be a positive int, got 0"),
    (lambda r: ta.RNN(2.5, 3, rng=r), "input_size must be a positive int, got 2.5"),
    (lambda r: ta.RNN(D, 3, rng=0), "rng must be a numpy.random.Generator"),
    (lambda r: ta.RNN(D, 3, rng=r, dtype=np.float16), "dtype must be np.float32 or np.float64"),
    (lambda r: ta.RNN(D, 3, rng=r, dtype="int"), "dtype must be np.float32 or np.float64"),
    (lambda r: ta.GRU(D, 3, rng=r, reset_before=True),
     "unexpected keyword argument 'reset_before'"),
    (lambda r: ta.Bidirectional(ta.GRU(D, 3, rng=r), ta.LSTM(D, 3, rng=r)), "must match"),
    (lambda r: ta.Bidirectional(ta.GRU(D, 3, rng=r),
                                ta.GRU(D, 3, reset_after=False, rng=r)), "must match"),
    (lambda r: ta.Bidirectional(ta.Linear(D, 3, rng=r), ta.Linear(D, 3, rng=r)),
     "must be an RNN, GRU or LSTM"),
])
def test_bad_options(make, message, rng):
    with pytest.raises((ValueError, TypeError), match=message):
        make(rng)
