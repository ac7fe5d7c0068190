"""Label smoothing in `sequence_cross_entropy` (docs/equations.md §6.1).

The smoothed target of a real token is q = (1 − ε)·onehot(y) + ε·u, with u
uniform over all V classes, or over every class but ``pad_id`` when one is
given; the loss is −(1/N) Σ_real Σ_v q_v log p_v and its gradient
(p − q)·mask/N.
"""

import math
import warnings

import numpy as np
import pytest

import tinyattn as ta
from tinyattn import functional as F
from tinyattn.gradcheck import TOL_STEP, check_gradients

B, T, V = 3, 4, 6
LENGTHS = (4, 2, 1)  # real tokens per example: every row but the first has pads


def _batch(seed=0, dtype=np.float64, scale=2.0):
    """Random logits, targets in 1..V-1 (0 is kept free for a pad id) and a length mask;
    pad positions hold junk logits and out-of-range ids, which must not matter."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((B, T, V))).astype(dtype)
    targets = rng.integers(1, V, size=(B, T))
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]
    targets[~mask] = -7
    return logits, targets, mask


def _smoothed_target(targets, mask, eps, pad_id):
    """q of every real token, built directly from its definition (zero rows at pads)."""
    u = np.full(V, 1.0 / V) if pad_id is None else np.where(np.arange(V) == pad_id, 0.0,
                                                             1.0 / (V - 1))
    onehot = np.eye(V)[np.where(mask, targets, 0)]
    return ((1.0 - eps) * onehot + eps * u) * mask[..., None]


def _reference_loss(logits, targets, mask, eps, pad_id):
    q = _smoothed_target(targets, mask, eps, pad_id)
    return float(-(q * F.log_softmax(logits)).sum() / mask.sum())


def _check(logits, targets, mask, dlogits_of, **kw):
    """Float64 centered-difference check of d loss / d logits with a random upstream
    gradient; ``dlogits_of`` gives the analytic gradient under test."""
    def forward():
        return np.array(ta.sequence_cross_entropy(logits, targets, mask, **kw)[0])

    return check_gradients(forward, lambda d: {"logits": d * dlogits_of()},
                           {"logits": logits}, tol=TOL_STEP)


# ----- value and gradient ----------------------------------------------------------
@pytest.mark.parametrize("pad_id", [None, 0])
@pytest.mark.parametrize("eps", [0.1, 0.35, 0.9])
def test_the_loss_is_the_cross_entropy_with_the_smoothed_target(eps, pad_id):
    logits, targets, mask = _batch()
    loss, _ = ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=eps,
                                        pad_id=pad_id)
    assert loss == pytest.approx(_reference_loss(logits, targets, mask, eps, pad_id),
                                 rel=1e-13)


@pytest.mark.parametrize("pad_id", [None, 0, 3])
@pytest.mark.parametrize("eps", [0.1, 0.35, 0.9])
def test_gradient_check_with_smoothing_and_pads(eps, pad_id):
    logits, targets, mask = _batch(seed=1)
    if pad_id == 3:
        targets[mask & (targets == 3)] = 4  # a pad id is never a real target
    kw = {"label_smoothing": eps, "pad_id": pad_id}
    r = _check(logits, targets, mask,
               lambda: ta.sequence_cross_entropy(logits, targets, mask, **kw)[1], **kw)
    assert r.passed, str(r)
    assert r.reports[0].error < 1e-7


def _forgot_the_uniform_term(logits, targets, mask):
    """The unsmoothed gradient (p − onehot(y))·mask/N."""
    return ta.sequence_cross_entropy(logits, targets, mask)[1]


def _spread_over_the_pad_too(logits, targets, mask):
    """The gradient of smoothing over all V classes, used where the pad is excluded."""
    return ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=0.2)[1]


def _forgot_one_minus_eps(logits, targets, mask):
    """(p − onehot(y) − ε·u)·mask/N: the target's weight left at 1."""
    n = mask.sum()
    wrong = F.softmax(logits) - np.eye(V)[np.where(mask, targets, 0)] - 0.2 / (V - 1)
    wrong[..., 0] += 0.2 / (V - 1)
    return wrong * mask[..., None] / n


@pytest.mark.parametrize("wrong", [_forgot_the_uniform_term, _spread_over_the_pad_too,
                                   _forgot_one_minus_eps])
def test_the_check_catches_a_wrong_gradient(wrong):
    """The same check as above fails on a plausible mistake: it can tell."""
    logits, targets, mask = _batch(seed=2)
    r = _check(logits, targets, mask, lambda: wrong(logits, targets, mask),
               label_smoothing=0.2, pad_id=0)
    assert not r.passed
    assert r.reports[0].error > 1e-3


# ----- padding, the pad class ------------------------------------------------------
@pytest.mark.parametrize("pad_id", [None, 0])
def test_padding_changes_nothing(pad_id):
    """The padded batch scores the mean over all real tokens: each example alone,
    weighted by its token count; its gradient is each example's, rescaled, and 0 at pads."""
    logits, targets, mask = _batch(seed=3)
    kw = {"label_smoothing": 0.25, "pad_id": pad_id}
    loss, dlogits = ta.sequence_cross_entropy(logits, targets, mask, **kw)
    n = sum(LENGTHS)
    weighted = 0.0
    for b, n_b in enumerate(LENGTHS):
        alone, d_alone = ta.sequence_cross_entropy(
            logits[b:b + 1, :n_b].copy(), targets[b:b + 1, :n_b], np.ones((1, n_b), bool), **kw)
        weighted += n_b * alone
        np.testing.assert_allclose(dlogits[b, :n_b], d_alone[0] * n_b / n, rtol=1e-13,
                                   atol=1e-17)
    assert loss == pytest.approx(weighted / n, rel=1e-13)
    assert (dlogits[~mask] == 0.0).all()
    # other junk at the pads: the same loss, bit for bit
    logits[~mask] = 1e300
    targets[~mask] = 10**9
    again, d_again = ta.sequence_cross_entropy(logits, targets, mask, **kw)
    assert again == loss
    np.testing.assert_array_equal(d_again, dlogits)


def test_the_smoothed_target_puts_no_mass_on_the_pad():
    logits, targets, mask = _batch(seed=4)
    eps, pad, n = 0.3, 0, mask.sum()
    _, dlogits = ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=eps,
                                           pad_id=pad)
    p = F.softmax(logits)
    # the pad column is p_pad · mask / N: q_pad = 0
    np.testing.assert_allclose(dlogits[..., pad], p[..., pad] * mask / n, rtol=1e-14, atol=0)
    # q read back from the gradient, q = p − dlogits·N, at the real tokens
    q = (p - dlogits * n)[mask]
    np.testing.assert_allclose(q[:, pad], 0.0, atol=1e-15)
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(q, _smoothed_target(targets, mask, eps, pad)[mask], atol=1e-15)
    # without a pad id, the pad class gets ε / V like any other non-target
    _, d_all = ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=eps)
    np.testing.assert_allclose((p - d_all * n)[mask][:, pad], eps / V, rtol=1e-12)


def test_a_real_target_equal_to_pad_id_is_refused():
    logits, targets, mask = _batch()
    targets[1, 1] = 0
    with pytest.raises(ValueError, match=r"targets must not be pad_id \(0\) at a real token.*"
                                         r"targets\[1, 1\] = 0"):
        ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=0.1, pad_id=0)
    targets[1, 2] = 0  # a pad position may hold it
    targets[1, 1] = 1
    ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=0.1, pad_id=0)


# ----- ε = 0 is the old code path ---------------------------------------------------
def _before_label_smoothing(logits, targets, mask):
    """The computation of `sequence_cross_entropy` before it had ``label_smoothing``
    (frozen here, checks left out, to compare the ε = 0 path against it bit for bit)."""
    from tinyattn.losses import _mean_nll

    n_real = int(mask.sum())
    safe_targets = np.where(mask, targets, 0)[..., None]
    with np.errstate(over="ignore", under="ignore"):
        m = logits.max(axis=-1, keepdims=True)
        z = logits - m
        probs = np.exp(z)
        total = probs.sum(axis=-1, keepdims=True)
        log_total = np.log(total)
        probs /= total
        picked = (np.take_along_axis(z, safe_targets, axis=-1) - log_total)[..., 0]
        loss = _mean_nll(picked[mask], n_real)
        if not math.isfinite(loss):
            x_t = np.take_along_axis(logits, safe_targets, axis=-1)[..., 0][mask]
            picked64 = (x_t.astype(np.float64) - m[..., 0][mask]
                        - log_total[..., 0][mask].astype(np.float64))
            loss = _mean_nll(picked64, n_real)
        dlogits = probs
        np.put_along_axis(dlogits, safe_targets,
                          np.take_along_axis(dlogits, safe_targets, axis=-1) - 1.0, axis=-1)
        dlogits *= (mask / n_real)[..., None].astype(logits.dtype)
    return loss + 0.0, dlogits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 30.0, "extreme"])
@pytest.mark.parametrize("zero", [None, 0.0, 0, -0.0, np.float32(0.0)])
def test_eps_zero_is_the_old_function_bit_for_bit(dtype, scale, zero):
    for seed in range(3):
        if scale == "extreme":  # logits spanning twice the float range: the float64 redo
            logits, targets, mask = _batch(seed, dtype)
            big = np.finfo(dtype).max
            logits[..., 1], logits[..., 2] = big, -big / 2
            if dtype == np.float64:
                targets[mask] = 1
        else:
            logits, targets, mask = _batch(seed, dtype, scale)
        kw = {} if zero is None else {"label_smoothing": zero, "pad_id": 0}
        loss, dlogits = ta.sequence_cross_entropy(logits, targets, mask, **kw)
        old_loss, old_dlogits = _before_label_smoothing(logits, targets, mask)
        assert np.float64(loss).tobytes() == np.float64(old_loss).tobytes()
        assert dlogits.dtype == old_dlogits.dtype
        assert dlogits.tobytes() == old_dlogits.tobytes()


# ----- ±finfo.max ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pad_id, want", [(None, 1.0), (2, 1.0), (1, 0.5)])
def test_extreme_logits_give_the_exact_smoothed_loss_without_a_warning(dtype, pad_id, want):
    """Row (max, −max, 0), target 0: log p = (0, −2·max, −max) while 2·max overflows.
    −Σ_v q_v log p_v = max − Σ_v q_v x_v = ε·max over all classes or with the pad at 2,
    ε·max/2 with the pad at 1 (the −max class then gets no mass)."""
    big, eps = np.finfo(dtype).max, 0.1
    logits = np.array([[[big, -big, 0.0], [big, -big, 0.0]]], dtype)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = ta.sequence_cross_entropy(
            logits, np.array([[0, 0]]), np.ones((1, 2), bool), label_smoothing=eps,
            pad_id=pad_id)
    assert math.isfinite(loss)
    assert loss == pytest.approx(want * eps * float(big), rel=1e-14)
    k = 3 if pad_id is None else 2
    u = np.full(3, eps / k)
    if pad_id is not None:
        u[pad_id] = 0.0
    want_d = (np.array([1.0, 0.0, 0.0]) - (1 - eps) * np.array([1.0, 0.0, 0.0]) - u) / 2
    np.testing.assert_allclose(dlogits[0], [want_d, want_d], rtol=1e-6, atol=1e-7)


def test_a_finite_mean_of_one_term_beyond_the_range_is_still_finite():
    """One token's −Σ q log p is (2 − ε)·max, beyond float64; the mean over three
    tokens, ((2 − ε)·max + 2·log 2) / 3, is not, and comes out."""
    big, eps = np.finfo(np.float64).max, 0.1
    logits = np.zeros((1, 3, 2))
    logits[0, 0] = [big, -big]
    with np.errstate(all="raise"):
        loss, dlogits = ta.sequence_cross_entropy(
            logits, np.array([[1, 0, 0]]), np.ones((1, 3), bool), label_smoothing=eps)
    assert loss == pytest.approx((2 - eps) / 3 * big, rel=1e-14)
    assert np.isfinite(dlogits).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_overflow_of_the_mean_of_z_is_redone(dtype):
    """Many large-but-finite z: their float sum overflows, the mean does not."""
    big = np.finfo(dtype).max
    logits = np.full((1, 1, 8), -big / 2, dtype)
    logits[0, 0, 3] = big / 2
    with np.errstate(all="raise"):
        loss, _ = ta.sequence_cross_entropy(logits, np.array([[3]]), np.ones((1, 1), bool),
                                            label_smoothing=0.2)
    # −Σ q log p = max_x − Σ_v q_v x_v = big/2 − (0.8·big/2 + 0.2·(−6/8)·big/2)
    assert loss == pytest.approx(0.2 * (1 + 6 / 8) * float(big) / 2, rel=1e-12)


def test_a_smoothed_loss_beyond_float64_is_a_non_finite_error():
    big = np.finfo(np.float64).max
    with pytest.raises(ta.NonFiniteError, match="label-smoothed loss"):
        ta.sequence_cross_entropy(np.array([[[big, -big]]]), np.array([[1]]),
                                  np.ones((1, 1), bool), label_smoothing=0.1)


@pytest.mark.parametrize("pad_id", [None, 0])
def test_float32_agrees_with_float64(pad_id):
    logits, targets, mask = _batch(seed=5)
    kw = {"label_smoothing": 0.1, "pad_id": pad_id}
    l64, d64 = ta.sequence_cross_entropy(logits, targets, mask, **kw)
    l32, d32 = ta.sequence_cross_entropy(logits.astype(np.float32), targets, mask, **kw)
    assert d32.dtype == np.float32
    assert l32 == pytest.approx(l64, rel=1e-6)
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-7)


# ----- PyTorch -----------------------------------------------------------------------
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_matches_torch_cross_entropy_with_label_smoothing(eps):
    """PyTorch spreads ε over all V classes: our pad_id=None. Pads are its ignore_index."""
    torch = pytest.importorskip("torch")
    logits, targets, mask = _batch(seed=6)
    targets[~mask] = -100
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.cross_entropy(
        x.reshape(-1, V), torch.tensor(targets.reshape(-1)), ignore_index=-100,
        label_smoothing=eps, reduction="mean")
    want.backward()
    loss, dlogits = ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=eps)
    assert abs(loss - want.item()) <= 1e-12 * abs(want.item())
    np.testing.assert_allclose(dlogits, x.grad.numpy(), rtol=1e-12, atol=1e-15)


# ----- bad arguments ---------------------------------------------------------------
@pytest.mark.parametrize("bad", [-0.1, 1.0, math.nan, math.inf, "0.1", True, None, [0.1],
                                 np.array(0.1)])
def test_bad_label_smoothing_is_named(bad):
    logits, targets, mask = _batch()
    with pytest.raises((ValueError, TypeError), match=r"label_smoothing must be a number "
                                                      r"in \[0, 1\), got"):
        ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=bad)


@pytest.mark.parametrize("bad", [-1, V, V + 10, 1.0, "0", True])
def test_bad_pad_id_is_named(bad):
    logits, targets, mask = _batch()
    with pytest.raises((ValueError, TypeError), match=rf"pad_id must be None or an id in "
                                                      rf"0..{V - 1}, got"):
        ta.sequence_cross_entropy(logits, targets, mask, label_smoothing=0.1, pad_id=bad)


def test_the_new_arguments_are_keyword_only():
    logits, targets, mask = _batch()
    with pytest.raises(TypeError):
        ta.sequence_cross_entropy(logits, targets, mask, 0.1)


# ----- through the model: Seq2Seq(label_smoothing=...) ----------------------
def _seq2seq(**kw):
    from tinyattn import Seq2Seq

    from .test_seq2seq import V_SRC, V_TGT

    return Seq2Seq(V_SRC, V_TGT, emb_size=3, hidden_size=2, attention="bahdanau",
                   rng=np.random.default_rng(0), **kw)


def test_seq2seq_smooths_in_train_mode_only():
    from .test_seq2seq import loss_of

    smooth, plain = _seq2seq(label_smoothing=0.2), _seq2seq()
    assert loss_of(smooth) != loss_of(plain)  # the smoothed target is another loss
    smooth.eval()
    assert loss_of(smooth) == loss_of(plain.eval())  # eval: the plain cross-entropy
    assert smooth.config["label_smoothing"] == 0.2


def test_seq2seq_gradcheck_and_padding_with_smoothing():
    from tinyattn.gradcheck import TOL_MODEL, check_gradients

    from .test_seq2seq import assert_padding_invariant, grads_of, loss_of

    model = _seq2seq(label_smoothing=0.3)
    result = check_gradients(lambda: np.array(loss_of(model)),
                             lambda d: {n: g * d for n, g in grads_of(model)[1].items()},
                             {n: v for n, v, _ in model.named_parameters()}, tol=TOL_MODEL)
    assert result.passed, str(result)
    assert_padding_invariant(model)
