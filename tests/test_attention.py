"""Attention modules: gradients, masks, properties, step form, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyattn.attention import BahdanauAttention, LuongAttention
from tinyattn.gradcheck import TOL_LAYER, check_module
from tinyattn.local_attention import LocalAttention

B, T, S, HQ, HK, A = 2, 3, 5, 6, 6, 7
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)


def _make(name, rng, dtype=np.float64, hk=HK):
    if name == "bahdanau":
        return BahdanauAttention(HQ, hk, A, rng=rng, dtype=dtype)
    if name.startswith("local"):
        mode, score = name.rsplit("-", 1) if name.count("-") == 2 else (name, "general")
        return LocalAttention(HQ, hk, mode=mode, window=2, score=score, rng=rng, dtype=dtype)
    return LuongAttention(HQ, hk, score=name, attn_size=A if name == "concat" else None,
                          rng=rng, dtype=dtype)


GLOBAL = ["bahdanau", "dot", "general", "concat", "scaled_dot"]
LOCAL = [f"{m}-{s}" for m in ("local-m", "local-p") for s in ("dot", "general", "concat")]
ALL = GLOBAL + LOCAL


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_gradcheck_queries_keys_and_params(name, masked):
    rng = np.random.default_rng(0)
    attn = _make(name, rng)
    q, enc = rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK))
    mask = MASK if masked else np.ones((B, S), bool)
    result = check_module(attn, q, enc, mask)
    assert {"queries", "enc_hs"} <= {r.name for r in result.reports}
    assert set(attn.params) <= {r.name for r in result.reports}
    assert result.max_error <= TOL_LAYER, str(result)


@pytest.mark.parametrize("name", ALL)
def test_rows_sum_to_one_and_pads_are_exactly_zero(name):
    rng = np.random.default_rng(1)
    attn = _make(name, rng)
    context, alpha = attn(rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK)), MASK)
    assert alpha.shape == (B, T, S) and context.shape == (B, T, HK)
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(alpha[1, :, 3:] == 0.0)


@pytest.mark.parametrize("name", ALL)
def test_step_form_equals_whole_sequence(name):
    """Step by step with keys prepared once = the whole-sequence call,
    in values and in every gradient."""
    rng = np.random.default_rng(2)
    attn = _make(name, rng)
    q, enc = rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK))
    dctx, dalpha = rng.standard_normal((B, T, HK)), rng.standard_normal((B, T, S))
    context, alpha = attn(q, enc, MASK)
    dq, denc = attn.backward(dctx, dalpha)
    whole = {n: g.copy() for n, _, g in attn.named_parameters()}
    attn.zero_grad()
    keys = attn.prepare(enc, MASK)
    caches = []
    for t in range(T):
        c_t, a_t, cache = attn.step(q[:, t], keys, t)
        np.testing.assert_allclose(c_t, context[:, t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a_t, alpha[:, t], rtol=1e-12, atol=1e-14)
        caches.append(cache)
    for t in reversed(range(T)):
        dq_t = attn.step_backward(dctx[:, t], caches[t], keys, dalpha[:, t])
        np.testing.assert_allclose(dq_t, dq[:, t], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(attn.prepare_backward(keys), denc, rtol=1e-10, atol=1e-12)
    for n, _, g in attn.named_parameters():
        np.testing.assert_allclose(g, whole[n], rtol=1e-10, atol=1e-12, err_msg=n)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(GLOBAL), seed=st.integers(0, 2**16), data=st.data())
def test_permuting_source_positions_permutes_alpha(name, seed, data):
    rng = np.random.default_rng(seed)
    attn = _make(name, rng)
    q, enc = rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK))
    mask = rng.random((B, S)) < 0.7
    mask[:, 0] = True
    perm = np.array(data.draw(st.permutations(range(S))))
    ctx, alpha = attn(q, enc, mask)
    ctx_p, alpha_p = attn(q, enc[:, perm], mask[:, perm])
    np.testing.assert_allclose(alpha_p, alpha[:, :, perm], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(ctx_p, ctx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-12)
    assert np.all(alpha[np.broadcast_to(~mask[:, None, :], alpha.shape)] == 0.0)


def test_local_m_positions_and_window():
    rng = np.random.default_rng(3)
    attn = LocalAttention(HQ, HK, mode="local-m", window=1, rng=rng)
    T_long = 6  # longer than the second source (3 real tokens): p_t is clamped
    _, alpha = attn(rng.standard_normal((B, T_long, HQ)), rng.standard_normal((B, S, HK)), MASK)
    np.testing.assert_array_equal(attn.positions, [[0, 1, 2, 3, 4, 4], [0, 1, 2, 2, 2, 2]])
    for b in range(B):
        for t in range(T_long):
            p = int(attn.positions[b, t])
            outside = [s for s in range(S) if abs(s - p) > 1]
            assert np.all(alpha[b, t, outside] == 0.0)


def test_local_p_positions_stay_on_real_tokens():
    rng = np.random.default_rng(4)
    attn = LocalAttention(HQ, HK, mode="local-p", window=1, rng=rng)
    attn.params["v_p"] *= 50  # push σ towards 0 and 1
    q = rng.standard_normal((B, T, HQ)) * 5
    _, alpha = attn(q, rng.standard_normal((B, S, HK)), MASK)
    p = attn.positions
    assert p.shape == (B, T)
    assert np.all(p >= 0) and np.all(p[0] <= 4) and np.all(p[1] <= 2)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("make, error, message", [
    (lambda r: LuongAttention(HQ, HK, score="dott", rng=r), ValueError,
     r"score must be one of .*got 'dott'"),
    (lambda r: LuongAttention(HQ, 4, score="dot", rng=r), ValueError,
     "needs query_size == key_size"),
    (lambda r: LuongAttention(HQ, HK, score="general", attn_size=3, rng=r), ValueError,
     "attn_size is only used by score='concat'"),
    (lambda r: LocalAttention(HQ, HK, mode="local", window=2, rng=r), ValueError,
     r"mode must be one of .*got 'local'"),
    (lambda r: LocalAttention(HQ, HK, mode="local-p", window=0, rng=r), ValueError,
     "window must be a positive int"),
    (lambda r: BahdanauAttention(HQ, HK, 0, rng=r), ValueError, "attn_size must be a positive"),
])
def test_bad_options(make, error, message):
    with pytest.raises(error, match=message):
        make(np.random.default_rng(0))


def test_bad_inputs():
    rng = np.random.default_rng(5)
    attn = BahdanauAttention(HQ, HK, A, rng=rng)
    q, enc = rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK))
    with pytest.raises(ValueError, match=r"src_mask\[1\] has no True entry: an all-pad source"):
        attn(q, enc, np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], bool))
    with pytest.raises(ValueError, match=r"src_mask must be a bool array of shape \(2, 5\)"):
        attn(q, enc, np.ones((B, S)))
    with pytest.raises(ValueError, match=r"src_mask must be a bool array of shape \(2, 5\)"):
        attn(q, enc, np.ones((B, S - 1), bool))
    with pytest.raises(ValueError, match=r"queries must have shape \(2, \?, 6\), got \(2, 3, 5\)"):
        attn(q[..., :5], enc, MASK)
    with pytest.raises(ValueError, match=r"enc_hs must have shape \(\?, \?, 6\)"):
        attn(q, enc[..., :4], MASK)
    with pytest.raises(TypeError, match="queries must have dtype float64"):
        attn(q.astype(np.float32), enc, MASK)
    attn(q, enc, MASK)
    with pytest.raises(ValueError, match=r"dcontext must have shape \(2, 3, 6\)"):
        attn.backward(np.zeros((B, T, HQ + 1)))
    with pytest.raises(RuntimeError, match="without a forward"):
        attn.backward(np.zeros((B, T, HK)))


@pytest.mark.parametrize("name", ALL)
def test_float32_preserved_and_close(name):
    a64 = _make(name, np.random.default_rng(6))
    a32 = _make(name, np.random.default_rng(6), np.float32)
    rng = np.random.default_rng(7)
    q, enc = rng.standard_normal((B, T, HQ)), rng.standard_normal((B, S, HK))
    dctx = rng.standard_normal((B, T, HK))
    c64, al64 = a64(q, enc, MASK)
    c32, al32 = a32(q.astype(np.float32), enc.astype(np.float32), MASK)
    dq64, de64 = a64.backward(dctx)
    dq32, de32 = a32.backward(dctx.astype(np.float32))
    for x32, x64 in [(c32, c64), (al32, al64), (dq32, dq64), (de32, de64)] + [
            (g32, g64) for (_, _, g32), (_, _, g64) in zip(a32.named_parameters(),
                                                          a64.named_parameters())]:
        assert x32.dtype == np.float32
        np.testing.assert_allclose(x32, x64, rtol=1e-4, atol=1e-5)
