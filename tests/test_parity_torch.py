"""Parity with PyTorch: same weights, same padded batch -> same outputs and gradients.

Every tinyattn recurrent layer that PyTorch also has (RNN tanh, GRU in its
reset-after form, LSTM; uni- and bidirectional) is run next to the
`tinyattn.interop.to_torch` copy of it on a ragged batch (PyTorch packs it)
and compared to 1e-10 in float64: outputs, final states, dx, the initial
states' gradients and every parameter gradient.
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinyattn as ta  # noqa: E402
from tinyattn.interop import from_torch, to_torch  # noqa: E402
from tinyattn.recurrent import StackState  # noqa: E402
from tinyattn.stacked import StackedRNN  # noqa: E402

pytestmark = pytest.mark.torch

B, T, D, H = 3, 5, 4, 6
ATOL = 1e-10
KINDS = ("rnn", "gru", "lstm")
TORCH_CLS = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
LENGTHS = {"full": None, "ragged": [5, 2, 4], "len1": [1, 5, 3]}

# tinyattn parameter -> (torch parameter names, transposed?). RNN/LSTM have one
# bias, and PyTorch adds bias_ih and bias_hh to the same pre-activation, so both
# of PyTorch's bias gradients must equal tinyattn's.
PARAM_MAP = {
    "rnn": {"W_xh": (["weight_ih"], True), "W_hh": (["weight_hh"], True),
            "b_h": (["bias_ih", "bias_hh"], False)},
    "gru": {"W_x": (["weight_ih"], True), "W_h": (["weight_hh"], True),
            "b_x": (["bias_ih"], False), "b_h": (["bias_hh"], False)},
    "lstm": {"W_x": (["weight_ih"], True), "W_h": (["weight_hh"], True),
             "b": (["bias_ih", "bias_hh"], False)},
}


def make_layer(kind, bidirectional, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    cls = {"rnn": ta.RNN, "gru": ta.GRU, "lstm": ta.LSTM}[kind]

    def one():
        return cls(D, H, rng=rng, dtype=dtype)

    return ta.Bidirectional(one(), one()) if bidirectional else one()


def directions(layer):
    """(torch suffix, tinyattn direction) pairs."""
    if isinstance(layer, ta.Bidirectional):
        return [("", layer.fwd), ("_reverse", layer.bwd)]
    return [("", layer)]


def to_torch_state(s, nd):
    """tinyattn (B, nd·H) = [fwd ; bwd] -> torch (nd, B, H)."""
    return np.stack(np.split(s, nd, axis=1))


def from_torch_state(s, nd):
    """torch (nd, B, H) -> tinyattn (B, nd·H)."""
    return np.concatenate(list(s), axis=1)


def run_torch(module, x, state0, lengths, nd, lstm):
    """Forward ``x (B, T, D)`` through ``module``, packed when ``lengths`` is given.

    ``state0`` is a list of tinyattn-layout initial states, ``[h0]`` or
    ``[h0, c0]``. A ``batch_first=False`` module gets the batch time-major.
    Returns ``out (B, T, nd·H)`` (a tensor), the final state tensors
    ``(nd, B, H)`` and the leaf tensors ``x_t``, ``states_t`` for gradients.
    """
    x_t = torch.tensor(x, requires_grad=True)
    states_t = [torch.tensor(to_torch_state(s, nd), requires_grad=True) for s in state0]
    hx = tuple(states_t) if lstm else states_t[0]
    bf = module.batch_first
    inp = x_t if bf else x_t.transpose(0, 1)  # (B, T, D) -> (T, B, D)
    if lengths is None:
        out, final = module(inp, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            inp, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
        out_p, final = module(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=bf,
                                                        total_length=T)
    if not bf:
        out = out.transpose(0, 1)  # (T, B, nd·H) -> (B, T, nd·H)
    finals = final if lstm else (final,)
    return out, finals, x_t, states_t


def max_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))



def assert_within(errors: dict, label: str) -> None:
    """Print the largest error (``pytest -s``) and fail on any beyond ATOL."""
    worst = max(errors, key=errors.get)
    print(f"\n[parity] {label} max abs err {errors[worst]:.2e} ({worst})")
    bad = {k: v for k, v in errors.items() if not v <= ATOL}
    assert not bad, f"mismatch beyond {ATOL}: {bad}"

@pytest.mark.parametrize("lengths_id", list(LENGTHS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_backward_parity(kind, bidirectional, lengths_id):
    seed = 100 * KINDS.index(kind) + 10 * bidirectional + list(LENGTHS).index(lengths_id)
    lengths = LENGTHS[lengths_id]
    lstm = kind == "lstm"
    nd = 2 if bidirectional else 1
    layer = make_layer(kind, bidirectional, seed)
    module = to_torch(layer)
    assert isinstance(module, TORCH_CLS[kind]) and module.bidirectional == bidirectional
    assert module.weight_ih_l0.dtype == torch.float64

    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((B, T, D))
    n_states = 2 if lstm else 1
    state0 = [rng.standard_normal((B, nd * H)) for _ in range(n_states)]
    dhs = rng.standard_normal((B, T, nd * H))  # nonzero at pads too: both ignore it
    dfinal = [rng.standard_normal((B, nd * H)) for _ in range(n_states)]

    # tinyattn
    layer.zero_grad()
    np_lengths = None if lengths is None else np.array(lengths)
    hs, final = layer(x, tuple(state0) if lstm else state0[0], np_lengths)
    finals = final if lstm else (final,)
    dx, dstate0 = layer.backward(dhs, tuple(dfinal) if lstm else dfinal[0])
    dstates0 = dstate0 if lstm else (dstate0,)

    # torch
    out, t_finals, x_t, states_t = run_torch(module, x, state0, lengths, nd, lstm)
    loss = (out * torch.tensor(dhs)).sum()
    for f, df in zip(t_finals, dfinal):
        loss = loss + (f * torch.tensor(to_torch_state(df, nd))).sum()
    module.zero_grad()
    loss.backward()

    errors = {"out": max_err(hs, out.detach().numpy()), "dx": max_err(dx, x_t.grad.numpy())}
    for k, (f, tf) in enumerate(zip(finals, t_finals)):
        errors[f"final{k}"] = max_err(f, from_torch_state(tf.detach().numpy(), nd))
    for k, (ds, st) in enumerate(zip(dstates0, states_t)):
        errors[f"dstate0_{k}"] = max_err(ds, from_torch_state(st.grad.numpy(), nd))
    for suffix, child in directions(layer):
        assert set(child.grads) == set(PARAM_MAP[kind])
        for key, (names, transposed) in PARAM_MAP[kind].items():
            for name in names:
                g = getattr(module, f"{name}_l0{suffix}").grad.numpy()
                errors[f"d{key}{suffix}<-{name}"] = max_err(child.grads[key],
                                                            g.T if transposed else g)
    assert_within(errors, f"{kind:4s} {'bi' if bidirectional else 'uni':3s} {lengths_id:6s}")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_round_trip_keeps_params(kind, bidirectional, dtype):
    layer = make_layer(kind, bidirectional, seed=7, dtype=dtype)
    module = to_torch(layer)
    assert module.weight_hh_l0.dtype == (torch.float64 if dtype is np.float64
                                         else torch.float32)
    back = from_torch(module)
    assert type(back) is type(layer) and back.dtype == layer.dtype
    assert back.input_size == D and back.hidden_size == layer.hidden_size
    for (_, a), (_, b) in zip(directions(layer), directions(back)):
        assert type(a) is type(b) and getattr(b, "reset_after", True)
        for key, value in a.params.items():
            assert b.params[key].dtype == value.dtype
            np.testing.assert_array_equal(b.params[key], value, err_msg=key)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_native_init(kind, bidirectional, batch_first):
    """PyTorch's own init has nonzero bias_hh: RNN/LSTM must sum the two biases."""
    torch.manual_seed(3)
    module = TORCH_CLS[kind](D, H, batch_first=batch_first, bidirectional=bidirectional,
                             dtype=torch.float64)
    layer = from_torch(module)
    assert layer.dtype is np.float64 and layer.hidden_size == H * (1 + bidirectional)
    lstm, nd = kind == "lstm", 1 + bidirectional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, D))
    state0 = [rng.standard_normal((B, nd * H)) for _ in range(1 + lstm)]
    lengths = [5, 2, 4]
    hs, final = layer(x, tuple(state0) if lstm else state0[0], np.array(lengths))
    with torch.no_grad():
        out, t_finals, _, _ = run_torch(module, x, state0, lengths, nd, lstm)
    np.testing.assert_allclose(hs, out.numpy(), rtol=0, atol=ATOL)
    for f, tf in zip(final if lstm else (final,), t_finals):
        np.testing.assert_allclose(f, from_torch_state(tf.numpy(), nd), rtol=0, atol=ATOL)


def test_from_torch_float32_and_rng():
    layer = from_torch(torch.nn.LSTM(D, H), rng=np.random.default_rng(1))
    assert layer.dtype is np.float32 and layer.params["W_x"].shape == (D, 4 * H)


@pytest.mark.parametrize("make, match", [
    (lambda: torch.nn.RNN(D, H, nonlinearity="relu"), "tanh only"),
    (lambda: torch.nn.LSTM(D, H, bias=False), "bias=False"),
    (lambda: torch.nn.LSTM(D, H, proj_size=3), "proj_size=3"),
    (lambda: torch.nn.Linear(D, H), "got Linear"),
    (lambda: torch.nn.GRU(D, H, dtype=torch.float16), "float32 or float64"),
], ids=["relu", "no_bias", "proj", "not_rnn", "float16"])
def test_from_torch_refuses(make, match):
    with pytest.raises(ValueError, match=match):
        from_torch(make())


def make_stack(kind, bidirectional, seed, num_layers=3, dropout=0.0):
    rng = np.random.default_rng(seed)
    cls = {"rnn": ta.RNN, "gru": ta.GRU, "lstm": ta.LSTM}[kind]
    nd = 2 if bidirectional else 1

    def one(d):
        return ta.Bidirectional(cls(d, H, rng=rng), cls(d, H, rng=rng)) if bidirectional \
            else cls(d, H, rng=rng)

    return StackedRNN([one(D if k == 0 else nd * H) for k in range(num_layers)],
                      dropout=dropout)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_stacked_parity(kind, bidirectional):
    """A StackedRNN of three layers next to to_torch's ``num_layers=3`` module, in
    eval mode (no dropout), on a ragged batch: outputs, every layer's final and
    initial state (and gradient), dx and every parameter gradient to 1e-10."""
    L, lstm, nd = 3, kind == "lstm", 2 if bidirectional else 1
    stack = make_stack(kind, bidirectional, seed=11, dropout=0.3).eval()
    module = to_torch(stack).eval()
    assert module.num_layers == L and module.dropout == 0.3
    rng = np.random.default_rng(12)
    x = rng.standard_normal((B, T, D))
    lengths = [5, 2, 4]
    n_states = 2 if lstm else 1
    # per state kind (h, c): every layer's (B, nd·H), side by side = torch's (L·nd, B, H)
    state0 = [rng.standard_normal((B, L * nd * H)) for _ in range(n_states)]
    dfinal = [rng.standard_normal((B, L * nd * H)) for _ in range(n_states)]
    dhs = rng.standard_normal((B, T, nd * H))

    def per_layer(states):  # [h (B, L·nd·H), c] -> StackState of per-layer states
        split = [np.split(s, L, axis=1) for s in states]
        return StackState(tuple(s[k] for s in split) if lstm else split[0][k]
                          for k in range(L))

    def joined(stack_state):  # the inverse
        parts = [s if lstm else (s,) for s in stack_state]
        return [np.concatenate([p[i] for p in parts], axis=1) for i in range(n_states)]

    stack.zero_grad()
    hs, final = stack(x, per_layer(state0), np.array(lengths))
    dx, dstate0 = stack.backward(dhs, per_layer(dfinal))
    out, t_finals, x_t, states_t = run_torch(module, x, state0, lengths, L * nd, lstm)
    loss = (out * torch.tensor(dhs)).sum()
    for f, df in zip(t_finals, dfinal):
        loss = loss + (f * torch.tensor(to_torch_state(df, L * nd))).sum()
    module.zero_grad()
    loss.backward()
    errors = {"out": max_err(hs, out.detach().numpy()), "dx": max_err(dx, x_t.grad.numpy())}
    for i, (f, tf, ds, st) in enumerate(zip(joined(final), t_finals, joined(dstate0),
                                            states_t)):
        errors[f"final{i}"] = max_err(f, from_torch_state(tf.detach().numpy(), L * nd))
        errors[f"dstate0_{i}"] = max_err(ds, from_torch_state(st.grad.numpy(), L * nd))
    for k, layer in enumerate(stack.layers):
        for suffix, child in directions(layer):
            for key, (names, transposed) in PARAM_MAP[kind].items():
                for name in names:
                    g = getattr(module, f"{name}_l{k}{suffix}").grad.numpy()
                    errors[f"l{k}.d{key}{suffix}<-{name}"] = max_err(
                        child.grads[key], g.T if transposed else g)
    assert_within(errors, f"stacked {kind:4s} {'bi' if bidirectional else 'uni':3s}")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_stacked_round_trip(bidirectional):
    stack = make_stack("lstm", bidirectional, seed=2, num_layers=2, dropout=0.25)
    back = from_torch(to_torch(stack))
    assert isinstance(back, StackedRNN) and back.dropout == 0.25 and back.num_layers == 2
    for (n, a, _), (m, b, _) in zip(stack.named_parameters(), back.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(a, b, err_msg=n)
    torch.manual_seed(0)
    native = torch.nn.GRU(D, H, num_layers=2, dropout=0.5, bidirectional=bidirectional,
                          batch_first=True, dtype=torch.float64).eval()
    layer = from_torch(native)
    assert isinstance(layer, StackedRNN) and layer.layers[1].input_size == H * (1 +
                                                                              bidirectional)
    x = np.random.default_rng(3).standard_normal((B, T, D))
    with torch.no_grad():
        want = native(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(layer.eval()(x)[0], want, rtol=0, atol=ATOL)


def test_to_torch_refuses_cho_gru():
    gru = ta.GRU(D, H, reset_after=False, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="only has the reset-after form"):
        to_torch(gru)
    with pytest.raises(ValueError, match="reset-after"):
        to_torch(ta.Bidirectional(gru, ta.GRU(D, H, reset_after=False,
                                              rng=np.random.default_rng(1))))
    with pytest.raises(TypeError, match="RNN, GRU, LSTM"):
        to_torch(ta.Linear(D, H, rng=np.random.default_rng(0)))
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="reset-after"):  # any layer of a stack
        to_torch(StackedRNN([ta.GRU(D, H, rng=rng), ta.GRU(H, H, reset_after=False, rng=rng)]))


def test_import_without_torch(monkeypatch):
    """Importing the bridge never imports torch; using it without torch says how to fix."""
    code = "import sys, tinyattn.interop; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match="pip install torch"):
        to_torch(ta.RNN(D, H, rng=np.random.default_rng(0)))
