"""SelfAttention: gradients, padding invariance, the causal mask, bad input, torch parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyattn as ta
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.self_attention import SelfAttention

B, T, D, DK, DV = 2, 4, 5, 6, 7
LENGTHS = np.array([4, 2])


def _make(seed=0, dtype=np.float64, d_v=DV):
    return SelfAttention(D, DK, d_v, rng=np.random.default_rng(seed), dtype=dtype)


def _run(sa, x, dout, dalpha=None, **kwargs):
    sa.zero_grad()
    out, alpha = sa(x, **kwargs)
    dx = sa.backward(dout, dalpha)
    return out, alpha, dx, {n: g.copy() for n, _, g in sa.named_parameters()}


def test_exported_from_the_package():
    assert ta.SelfAttention is SelfAttention


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("padding", [None, "lengths", "mask"])
def test_gradcheck_every_input_and_parameter(causal, padding):
    rng = np.random.default_rng(1)
    sa = _make()
    x = rng.standard_normal((B, T, D))
    kwargs = {"causal": causal}
    if padding == "lengths":
        kwargs["lengths"] = LENGTHS
    elif padding == "mask":
        kwargs["mask"] = np.array([[True, False, True, True], [False, True, True, False]])
    result = check_module(sa, x, **kwargs)
    assert {r.name for r in result.reports} == {"x", "W_q", "W_k", "W_v"}
    assert result.passed and result.max_error <= TOL_LAYER, str(result)


def test_gradcheck_with_d_v_equal_to_d_k_and_one_step():
    rng = np.random.default_rng(2)
    sa = SelfAttention(3, 4, rng=rng)
    assert sa.params["W_v"].shape == (3, 4)
    for steps in (1, 3):
        result = check_module(sa, rng.standard_normal((2, steps, 3)), causal=True)
        assert result.passed, str(result)


def test_equals_the_plain_equations():
    rng = np.random.default_rng(3)
    sa = _make()
    x = rng.standard_normal((B, T, D))
    out, alpha = sa(x)
    Q, K, V = (x @ sa.params[n] for n in ("W_q", "W_k", "W_v"))
    for b in range(B):
        s = Q[b] @ K[b].T / np.sqrt(DK)  # (T, T)
        a = np.exp(s - s.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(alpha[b], a, rtol=1e-12)
        np.testing.assert_allclose(out[b], a @ V[b], rtol=1e-12)
    assert out.shape == (B, T, DV) and alpha.shape == (B, T, T)


def test_backward_equals_the_hand_derivation():
    rng = np.random.default_rng(4)
    sa = _make()
    x, dout = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, DV))
    _, A, dx, grads = _run(sa, x, dout)
    W_q, W_k, W_v = (sa.params[n] for n in ("W_q", "W_k", "W_v"))
    Q, K, V = x @ W_q, x @ W_k, x @ W_v
    dV = A.transpose(0, 2, 1) @ dout
    dA = dout @ V.transpose(0, 2, 1)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    dQ, dK = dS @ K / np.sqrt(DK), dS.transpose(0, 2, 1) @ Q / np.sqrt(DK)
    np.testing.assert_allclose(dx, dQ @ W_q.T + dK @ W_k.T + dV @ W_v.T, rtol=1e-10, atol=1e-12)
    for name, d in (("W_q", dQ), ("W_k", dK), ("W_v", dV)):
        want = np.einsum("btd,bte->de", x, d)
        np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       causal=st.booleans(), seed=st.integers(0, 2**16))
def test_padded_batch_equals_each_example_alone(lengths, causal, seed):
    rng = np.random.default_rng(seed)
    sa = SelfAttention(D, DK, DV, rng=rng)
    n, steps = len(lengths), max(lengths) + 1  # always at least one pad column
    lengths = np.array(lengths)
    x = rng.standard_normal((n, steps, D))
    pad = np.arange(steps)[None, :] >= lengths[:, None]
    x[pad] = 1e3  # garbage in the pads must change nothing
    dout = rng.standard_normal((n, steps, DV))
    dalpha = rng.standard_normal((n, steps, steps))
    out, alpha, dx, grads = _run(sa, x, dout, dalpha, lengths=lengths, causal=causal)
    total = {k: np.zeros_like(g) for k, g in grads.items()}
    for b, L in enumerate(lengths):
        out_b, alpha_b, dx_b, grads_b = _run(sa, x[b:b + 1, :L], dout[b:b + 1, :L],
                                             dalpha[b:b + 1, :L, :L], causal=causal)
        np.testing.assert_allclose(out[b:b + 1, :L], out_b, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(alpha[b:b + 1, :L, :L], alpha_b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dx[b:b + 1, :L], dx_b, rtol=1e-10, atol=1e-12)
        assert not out[b, L:].any(), "outputs at pad queries must be exactly 0"
        assert not alpha[b, :, L:].any() and not alpha[b, L:].any(), "pads get weight 0"
        assert not dx[b, L:].any(), "no gradient may flow into pads"
        for k in total:
            total[k] += grads_b[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_lengths_and_the_equivalent_mask_agree():
    rng = np.random.default_rng(5)
    sa = _make()
    x = rng.standard_normal((B, T, D))
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    out_l, alpha_l = sa(x, lengths=LENGTHS)
    out_m, alpha_m = sa(x, mask=mask)
    np.testing.assert_array_equal(out_l, out_m)
    np.testing.assert_array_equal(alpha_l, alpha_m)
    np.testing.assert_allclose(alpha_l[mask].sum(axis=-1), 1.0, rtol=1e-12)


def test_causal_mask_hides_the_future():
    rng = np.random.default_rng(6)
    sa = _make()
    x = rng.standard_normal((B, T, D))
    out, alpha = sa(x, causal=True)
    assert np.all(alpha[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0.0)
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(alpha[:, 0, 0], 1.0)  # the first token sees only itself
    # position i's output depends on x[:, :i + 1] only: change the last token
    x2 = x.copy()
    x2[:, -1] += 10.0
    out2, _ = sa(x2, causal=True)
    np.testing.assert_array_equal(out[:, :-1], out2[:, :-1])
    assert not np.allclose(out[:, -1], out2[:, -1])
    # and the prefix of a sequence gives the prefix of the outputs
    out3, _ = sa(x[:, :2], causal=True)
    np.testing.assert_allclose(out3, out[:, :2], rtol=1e-12)


def test_causal_with_a_leading_pad_raises_no_error_and_zeroes_it():
    rng = np.random.default_rng(7)
    sa = _make()
    mask = np.array([[False, True, True, True], [True, True, False, False]])
    out, alpha = sa(rng.standard_normal((B, T, D)), mask=mask, causal=True)
    assert not out[0, 0].any() and not alpha[0, 0].any() and not alpha[0, :, 0].any()
    np.testing.assert_allclose(alpha[0, 1, 1], 1.0)  # its first real token sees only itself
    np.testing.assert_allclose(alpha[mask].sum(axis=-1), 1.0, rtol=1e-12)


def test_gradients_accumulate_and_backward_needs_forward():
    rng = np.random.default_rng(8)
    sa = _make()
    x, dout = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, DV))
    _, _, _, once = _run(sa, x, dout)
    sa(x)
    sa.backward(dout)
    for n, _, g in sa.named_parameters():
        np.testing.assert_allclose(g, 2 * once[n], rtol=1e-12)
    with pytest.raises(RuntimeError, match="without a forward"):
        sa.backward(dout)


def test_inputs_not_mutated_and_alpha_is_a_copy():
    rng = np.random.default_rng(9)
    sa = _make()
    x, dout = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, DV))
    x0, dout0 = x.copy(), dout.copy()
    out, alpha = sa(x, lengths=LENGTHS)
    alpha[:] = 0.0  # the caller's copy: the cache must not see it
    dx = sa.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)
    _, _, dx2, _ = _run(sa, x, dout, lengths=LENGTHS)
    np.testing.assert_array_equal(dx, dx2)


def test_float32_runs_in_float32():
    rng = np.random.default_rng(10)
    sa = _make(dtype=np.float32)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    out, alpha = sa(x, lengths=LENGTHS, causal=True)
    dx = sa.backward(np.ones((B, T, DV), np.float32), np.ones((B, T, T), np.float32))
    assert out.dtype == alpha.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for _, _, g in sa.named_parameters())
    ref = _make(dtype=np.float64)
    out64, _ = ref(x.astype(np.float64), lengths=LENGTHS, causal=True)
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)


def test_a_wrong_backward_is_caught():
    """The checker can fail: dropping the 1/sqrt(d_k) from dQ and dK is reported
    for x, W_q and W_k, while W_v (whose path does not scale) passes."""

    class ForgotTheScale(SelfAttention):
        def backward(self, dout, dalpha=None):
            scale, self.scale = self.scale, 1.0
            try:
                return super().backward(dout, dalpha)
            finally:
                self.scale = scale

    rng = np.random.default_rng(11)
    bad = ForgotTheScale(D, DK, DV, rng=rng)
    result = check_module(bad, rng.standard_normal((B, T, D)), lengths=LENGTHS)
    assert not result.passed
    assert set(result.failed) == {"x", "W_q", "W_k"}
    assert result["W_v"].passed


@pytest.mark.parametrize("call, error, message", [
    (lambda sa: sa(np.zeros((B, T, D + 1))), ValueError, r"x must have shape \(\?, \?, 5\)"),
    (lambda sa: sa(np.zeros((B, T, D), np.float32)), TypeError, "x must have dtype float64"),
    (lambda sa: sa(np.full((B, T, D), np.nan)), ValueError, "x contains NaN"),
    (lambda sa: sa(np.zeros((0, T, D))), ValueError, "at least one sequence"),
    (lambda sa: sa(np.zeros((B, T, D)), mask=np.ones((B, T), int)), ValueError,
     "mask must be a bool array of shape"),
    (lambda sa: sa(np.zeros((B, T, D)), mask=np.ones((B, T + 1), bool)), ValueError,
     r"shape \(2, 4\)"),
    (lambda sa: sa(np.zeros((B, T, D)), mask=np.array([[True] * T, [False] * T])), ValueError,
     r"mask\[1\] has no True entry"),
    (lambda sa: sa(np.zeros((B, T, D)), lengths=np.array([4, 0])), ValueError,
     r"lengths must be in 1..4"),
    (lambda sa: sa(np.zeros((B, T, D)), lengths=LENGTHS, mask=np.ones((B, T), bool)),
     ValueError, "mask or lengths, not both"),
    (lambda sa: sa(np.zeros((B, T, D)), causal="yes"), TypeError, "causal must be a bool"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call(_make())


def test_bad_backward_input_and_bad_sizes():
    sa = _make()
    sa(np.zeros((B, T, D)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 7\)"):
        sa.backward(np.zeros((B, T, DK)))
    sa(np.zeros((B, T, D)))
    with pytest.raises(ValueError, match=r"dalpha must have shape \(2, 4, 4\)"):
        sa.backward(np.zeros((B, T, DV)), np.zeros((B, T, T + 1)))
    with pytest.raises(ValueError, match="d_k must be a positive int"):
        SelfAttention(D, 0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        SelfAttention(D, DK, rng=0)
    with pytest.raises(TypeError, match="dtype must be"):
        SelfAttention(D, DK, rng=np.random.default_rng(0), dtype=np.int32)


@pytest.mark.torch
@pytest.mark.parametrize("causal", [False, True])
def test_parity_with_torch_scaled_dot_product_attention(causal):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(12)
    sa = _make()
    x = rng.standard_normal((B, T, D))
    dout = rng.standard_normal((B, T, DV))
    real = np.arange(T)[None, :] < LENGTHS[:, None]
    out, _, dx, grads = _run(sa, x, dout, lengths=LENGTHS, causal=causal)

    xt = torch.tensor(x, requires_grad=True)
    W = {n: torch.tensor(sa.params[n], requires_grad=True) for n in ("W_q", "W_k", "W_v")}
    allowed = torch.tensor(real)[:, None, :] & torch.ones(T, T, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()
    o = F.scaled_dot_product_attention(xt @ W["W_q"], xt @ W["W_k"], xt @ W["W_v"],
                                       attn_mask=allowed)
    o = o * torch.tensor(real, dtype=torch.float64)[:, :, None]  # tinyattn zeroes pad queries
    (o * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, o.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for n in W:
        np.testing.assert_allclose(grads[n], W[n].grad.numpy(), rtol=1e-10, atol=1e-12)
