"""Optimisers, gradient clipping and the lr schedule: hand-computed updates,
dtype preservation, in-place updates and exact resumption from a state dict."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyattn as ta
from tinyattn.module import Module
from tinyattn.training.optim import SGD, Adam, clip_grad_norm
from tinyattn.training.schedules import StepDecay


class Quad(Module):
    """``f(w) = 0.5 * sum(a * (w - c)**2)``: gradient ``a * (w - c)``, minimum at ``c``."""

    def __init__(self, w0, a=None, c=None, dtype=np.float64):
        super().__init__(dtype)
        w0 = np.asarray(w0, dtype=dtype)
        self.add_param("w", w0)
        self.a = np.ones_like(w0) if a is None else np.asarray(a, dtype=dtype)
        self.c = np.zeros_like(w0) if c is None else np.asarray(c, dtype=dtype)

    def backward(self):
        self.grads["w"] += self.a * (self.params["w"] - self.c)


def _run(model, opt, steps, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        model.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return model.params["w"].copy()


def _trajectory(model, opt, steps):
    return [_run(model, opt, 1)[0] for _ in range(steps)]


# f(w) = w**2 (a = 2), so g = 2w; from w0 = 1 with lr = 0.1:
def test_sgd_three_steps_by_hand():
    m = Quad([1.0], a=[2.0])
    assert np.allclose(_trajectory(m, SGD(m.named_parameters(), lr=0.1), 3), [0.8, 0.64, 0.512])


def test_sgd_momentum_three_steps_by_hand():
    # b1 = 2, w1 = 0.8; g2 = 1.6, b2 = 0.9*2 + 1.6 = 3.4, w2 = 0.46;
    # g3 = 0.92, b3 = 0.9*3.4 + 0.92 = 3.98, w3 = 0.46 - 0.398 = 0.062
    m = Quad([1.0], a=[2.0])
    opt = SGD(m.named_parameters(), lr=0.1, momentum=0.9)
    assert np.allclose(_trajectory(m, opt, 3), [0.8, 0.46, 0.062], rtol=0, atol=1e-12)


def test_sgd_weight_decay_three_steps_by_hand():
    # g + 0.5 w = 2.5 w, so w <- 0.75 w
    m = Quad([1.0], a=[2.0])
    opt = SGD(m.named_parameters(), lr=0.1, weight_decay=0.5)
    assert np.allclose(_trajectory(m, opt, 3), [0.75, 0.5625, 0.421875], rtol=0, atol=1e-12)
    assert np.array_equal(m.grads["w"], [2 * 0.5625])  # the stored grad is not decayed


def _adam_reference(w, a, lr, b1, b2, eps, wd, steps):
    """Algorithm 1 of Kingma & Ba (2015) on Python floats, one coordinate at a time."""
    w, out = list(w), []
    m, v = [0.0] * len(w), [0.0] * len(w)
    for t in range(1, steps + 1):
        for i in range(len(w)):
            g = a[i] * w[i] + wd * w[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            w[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(list(w))
    return out


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_three_steps_match_the_paper(wd):
    w0, a = [1.0, -2.0, 0.5], [2.0, 1.0, 4.0]
    m = Quad(w0, a=a)
    opt = Adam(m.named_parameters(), lr=0.1, betas=(0.8, 0.99), eps=1e-8, weight_decay=wd)
    got = [_run(m, opt, 1) for _ in range(3)]
    want = _adam_reference(w0, a, 0.1, 0.8, 0.99, 1e-8, wd, 3)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    # the first step moves every coordinate by lr against its gradient's sign
    np.testing.assert_allclose(np.array(want[0]) - w0, [-0.1, 0.1, -0.1], rtol=1e-7)
    assert opt.t == 3


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: Adam(p, lr=0.01, weight_decay=0.01),
], ids=["sgd", "adam"])
def test_float32_stays_float32_and_updates_in_place(make):
    lin = ta.Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    arrays = {name: value for name, value, _ in lin.named_parameters()}
    before = {name: value.copy() for name, value in arrays.items()}
    opt = make(lin.named_parameters())
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for _ in range(3):
        opt.zero_grad()
        lin(x)
        lin.backward(np.ones((4, 2), np.float32))
        opt.step()
    for name, value, grad in lin.named_parameters():
        assert value is arrays[name] and value.dtype == grad.dtype == np.float32
        assert not np.array_equal(value, before[name])
    for slot in opt.state.values():
        assert all(buf.dtype == np.float32 for buf in slot.values())
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items() if "/" in k)


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.9),
    lambda p: Adam(p, lr=0.05),
], ids=["sgd", "adam"])
def test_minimising_a_quadratic_converges(make):
    c = np.array([3.0, -1.0, 0.5])
    m = Quad([0.0, 0.0, 0.0], a=[1.0, 4.0, 0.5], c=c)
    np.testing.assert_allclose(_run(m, make(m.named_parameters()), 1000), c, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: Adam(p, lr=0.05, weight_decay=0.01),
], ids=["sgd", "adam"])
def test_state_dict_round_trip_resumes_exactly(make, tmp_path):
    def fresh():
        m = Quad([1.0, -2.0, 0.5], a=[1.0, 4.0, 0.5], c=[3.0, -1.0, 0.5])
        opt = make(m.named_parameters())
        return m, opt, StepDecay(opt, step_size=2, gamma=0.5)

    m, opt, sched = fresh()
    want = _run(m, opt, 6, sched)
    m, opt, sched = fresh()
    _run(m, opt, 3, sched)
    np.savez(tmp_path / "s.npz", w=m.params["w"], **{f"o/{k}": v for k, v in
                                                      opt.state_dict().items()},
             **{f"s/{k}": v for k, v in sched.state_dict().items()})
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        saved = {k: z[k] for k in z.files}
    m2, opt2, sched2 = fresh()
    m2.params["w"][...] = saved["w"]
    opt2.load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("o/")})
    sched2.load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("s/")})
    assert opt2.lr == opt.lr and opt2.t == 3 and sched2.epoch == 3
    np.testing.assert_array_equal(_run(m2, opt2, 3, sched2), want)


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    m = Quad([1.0, 2.0])
    opt = Adam(m.named_parameters(), lr=0.1)
    _run(m, opt, 2)
    good = opt.state_dict()
    other = Adam(Quad([0.0, 0.0]).named_parameters(), lr=0.5)
    snapshot = other.state_dict()
    cases = [({**good, "m/extra": good["m/w"]}, r"unknown keys \['m/extra'\]"),
             ({k: v for k, v in good.items() if k != "v/w"}, r"missing keys \['v/w'\]"),
             ({**good, "m/w": np.zeros(3)}, r"m/w: expected shape \(2,\) and dtype float64, "
                                            r"got shape \(3,\)"),
             ({**good, "v/w": good["v/w"].astype(np.float32)}, "v/w: .* dtype float32"),
             ({**good, "t": np.array(-1)}, r"t: .*value -1"),
             ({**good, "lr": np.array(-1.0)}, r"lr must be a number in \(0, inf\), got -1.0"),
             (SGD(m.named_parameters(), lr=0.1).state_dict(),
              "state is the state_dict of optimizer 'SGD', not of 'Adam'")]
    for state, match in cases:
        with pytest.raises(ValueError, match=match):
            other.load_state_dict(state)
        for k, v in other.state_dict().items():
            np.testing.assert_array_equal(v, snapshot[k])
    other.load_state_dict(good)
    assert other.lr == 0.1 and other.t == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), r"lr must be a number in \(0, inf\), got 0.0"),
    (dict(lr=-1), r"lr must be a number in \(0, inf\), got -1"),
    (dict(lr=float("nan")), r"lr must be .* got nan"),
    (dict(lr="0.1"), r"lr must be .* got '0.1'"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\] must be a number in \[0, 1\), got 1.0"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\] must be a number in \[0, 1\), got -0.1"),
    (dict(betas=0.9), r"betas must be a pair"),
    (dict(eps=0.0), r"eps must be a number in \(0, inf\), got 0.0"),
    (dict(weight_decay=-0.1), r"weight_decay must be a number in \[0, inf\), got -0.1"),
])
def test_adam_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam(Quad([1.0]).named_parameters(), **{"lr": 1e-3, **kwargs})


def test_sgd_rejects_bad_arguments():
    p = Quad([1.0])
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\), got 1.0"):
        SGD(p.named_parameters(), lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="params is empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params must yield \(name, value, grad\) triples"):
        SGD([("w", p.params["w"])], lr=0.1)
    with pytest.raises(TypeError, match="one shape and dtype"):
        SGD([("w", p.params["w"], np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="names must be unique"):
        SGD(list(p.named_parameters()) * 2, lr=0.1)
    opt = SGD(p, lr=0.1)  # a Module is accepted too
    with pytest.raises(ValueError, match=r"lr must be a number in \(0, inf\), got 0"):
        opt.lr = 0
    assert opt.lr == 0.1


def test_zero_grad_and_sgd_without_momentum_keeps_no_buffers():
    m = Quad([1.0, 2.0])
    opt = SGD(m.named_parameters(), lr=0.1)
    m.backward()
    opt.zero_grad()
    assert not m.grads["w"].any() and opt.state == {}
    assert set(opt.state_dict()) == {"optimizer", "t", "lr", "momentum", "weight_decay"}


def _grads(seed, scale, dtype=np.float64):
    lin = ta.Linear(3, 2, rng=np.random.default_rng(seed), dtype=dtype)
    for _, _, g in lin.named_parameters():
        g[...] = np.random.default_rng(seed + 1).standard_normal(g.shape) * scale
    return lin


def _norm(model):
    return math.sqrt(sum(float((g.astype(np.float64) ** 2).sum())
                         for _, _, g in model.named_parameters()))


def test_clip_grad_norm_clips_to_exactly_max_norm():
    lin = _grads(0, 10.0)
    before = {n: g.copy() for n, _, g in lin.named_parameters()}
    norm = _norm(lin)
    assert clip_grad_norm(lin, 1.0) == pytest.approx(norm, rel=1e-12)
    assert _norm(lin) == pytest.approx(1.0, rel=1e-12)
    for n, _, g in lin.named_parameters():  # one factor for all: direction kept
        np.testing.assert_allclose(g, before[n] / norm, rtol=1e-12)


def test_clip_grad_norm_leaves_small_grads_alone_and_accepts_triples():
    lin = _grads(0, 0.01)
    before = {n: g.copy() for n, _, g in lin.named_parameters()}
    assert clip_grad_norm(lin.named_parameters(), 5.0) == pytest.approx(_norm(lin))
    for n, _, g in lin.named_parameters():
        np.testing.assert_array_equal(g, before[n])


def test_clip_grad_norm_float32():
    lin = _grads(0, 10.0, np.float32)
    clip_grad_norm(lin, 0.5)
    assert lin.grads["W"].dtype == np.float32 and _norm(lin) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_raises_on_non_finite_and_changes_nothing(bad):
    lin = _grads(0, 10.0)
    lin.grads["b"][1] = bad
    before = {n: g.copy() for n, _, g in lin.named_parameters()}
    with pytest.raises(ValueError, match=r"gradient norm is (nan|inf).*'b'"):
        clip_grad_norm(lin, 1.0)
    for n, _, g in lin.named_parameters():
        np.testing.assert_array_equal(g, before[n])
    with pytest.raises(ValueError, match=r"max_norm must be a number in \(0, inf\], got 0"):
        clip_grad_norm(_grads(0, 1.0), 0)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-6, 1e6), max_norm=st.floats(1e-3, 1e3))
def test_clip_grad_norm_property(seed, scale, max_norm):
    lin = _grads(seed, scale)
    norm = _norm(lin)
    assert clip_grad_norm(lin, max_norm) == pytest.approx(norm, rel=1e-12)
    assert _norm(lin) == pytest.approx(min(norm, max_norm), rel=1e-9)


def test_step_decay_schedule_and_state():
    opt = SGD(Quad([1.0]).named_parameters(), lr=1.0)
    sched = StepDecay(opt, step_size=2, gamma=0.5)
    lrs = [opt.lr] + [sched.step() for _ in range(5)]
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25] and opt.lr == 0.25
    opt2 = SGD(Quad([1.0]).named_parameters(), lr=0.25)  # base lr differs from the saved one
    sched2 = StepDecay(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.lr == 0.25 and sched2.step() == 0.125
    with pytest.raises(ValueError, match="state_dict must be"):
        sched2.load_state_dict({"epoch": np.array(-1), "base_lr": np.array(1.0)})
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\], got 1.5"):
        StepDecay(opt, step_size=2, gamma=1.5)
    with pytest.raises(ValueError, match="step_size must be a positive int, got 0"):
        StepDecay(opt, step_size=0, gamma=0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_in_pieces_equals_the_whole_array_formula_bit_for_bit(dtype, wd):
    """Adam.step updates in cache-sized pieces with in-place operations; the numbers must be
    the docstring's whole-array expressions exactly: sizes below, at and across the piece
    size, and a non-contiguous parameter (updated whole)."""
    from tinyattn.training.optim import _CHUNK
    rng = np.random.default_rng(3)
    shapes = [(5,), (_CHUNK,), (3, _CHUNK // 2 + 7), (2 * _CHUNK + 11,)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    base = rng.standard_normal((40, 6)).astype(dtype)
    values.append(base.T)  # (6, 40), not C-contiguous: a flat view would be a copy
    grads = [np.empty_like(v) for v in values]
    params = [(f"p{i}", v, g) for i, (v, g) in enumerate(zip(values, grads))]
    opt = Adam(params, lr=0.003, betas=(0.85, 0.98), eps=1e-7, weight_decay=wd)
    want = [v.copy() for v in values]
    m = [np.zeros_like(v) for v in values]
    s = [np.zeros_like(v) for v in values]
    b1, b2 = 0.85, 0.98
    for t in range(1, 4):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        opt.step()
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        for i, g in enumerate(grads):
            gg = g + wd * want[i] if wd else g
            m[i] = b1 * m[i] + (1.0 - b1) * gg
            s[i] = b2 * s[i] + (1.0 - b2) * (gg * gg)
            want[i] = want[i] - (0.003 / c1) * m[i] / (np.sqrt(s[i] / c2) + 1e-7)
    for got, expected, mi, si, name in zip(values, want, m, s, [p[0] for p in params]):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected, err_msg=name)
        np.testing.assert_array_equal(opt.state["m"][name], mi, err_msg=name)
        np.testing.assert_array_equal(opt.state["v"][name], si, err_msg=name)
    np.testing.assert_array_equal(base, want[-1].T)  # the array behind the view was updated


def test_clip_grad_norm_float32_pieces_match_float64_and_survive_float32_overflow():
    """float32 gradients are summed in float32 pieces: close to the float64 norm across
    several pieces, and a piece whose float32 square sum overflows is redone in float64."""
    from tinyattn.training.optim import _CHUNK
    rng = np.random.default_rng(5)
    g = rng.standard_normal(3 * _CHUNK + 5).astype(np.float32)  # many pieces of 4,096
    params = [("g", np.zeros_like(g), g)]
    want = math.sqrt(float((g.astype(np.float64) ** 2).sum()))
    assert clip_grad_norm(params, np.inf) == pytest.approx(want, rel=1e-8)
    huge = np.full(7, 3e19, np.float32)  # Σ g² = 6.3e39: beyond float32, fine in float64
    assert clip_grad_norm([("h", np.zeros_like(huge), huge)], np.inf) == pytest.approx(
        3e19 * math.sqrt(7), rel=1e-7)
