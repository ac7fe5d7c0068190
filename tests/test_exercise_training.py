"""Lesson 10's exercises `masked_cross_entropy` and `adam_step`: a right version
passes, each classic mistake is named, and only it. The buggy versions are
written here as a learner would write them, independently of the package's
predictions."""

import numpy as np
import pytest

import tinyattn.exercises as ex


def _softmax(logits, shift=True):
    z = logits - logits.max(axis=-1, keepdims=True) if shift else logits
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(logits, targets, mask, *, count="real", use_mask=True, grad_by=None,
                  shift=True):
    B, T, V = logits.shape
    p = _softmax(logits, shift)
    weights = mask.astype(float) if use_mask else np.ones((B, T))
    n = {"real": mask.sum(), "padded": B * T}[count]
    nll = -np.log(p[np.arange(B)[:, None], np.arange(T)[None, :], targets])
    loss = (nll * weights).sum() / n
    grad = p.copy()
    grad[np.arange(B)[:, None], np.arange(T)[None, :], targets] -= 1.0
    grad *= weights[:, :, None] / (grad_by or n)
    return loss, grad


def right_ce(logits, targets, mask):
    return cross_entropy(logits, targets, mask)


def ce_mean_over_padded_length(logits, targets, mask):  # d2l issue 2076
    return cross_entropy(logits, targets, mask, count="padded")


def ce_pads_not_masked(logits, targets, mask):
    return cross_entropy(logits, targets, mask, count="padded", use_mask=False)


def ce_grad_by_batch(logits, targets, mask):
    return cross_entropy(logits, targets, mask, grad_by=logits.shape[0])


def ce_unshifted(logits, targets, mask):
    with np.errstate(over="ignore", invalid="ignore"):
        return cross_entropy(logits, targets, mask, shift=False)


def test_a_right_cross_entropy_passes_with_its_gradient_checked():
    r = ex.check("masked_cross_entropy", right_ce, verbose=False)
    assert r.passed, r.text
    assert "dlogits" in r.errors and r.errors["dlogits"] < 1e-7


@pytest.mark.parametrize("fn, label, wrong", [
    (ce_mean_over_padded_length, "mean over the padded length", {"loss", "dlogits"}),
    (ce_pads_not_masked, "pads not masked", {"loss", "dlogits"}),
    (ce_grad_by_batch, "divided by the batch size", {"dlogits"}),
    (ce_unshifted, "without subtracting the row maximum", {"loss", "dlogits"}),
])
def test_cross_entropy_mistakes_are_named(fn, label, wrong):
    r = ex.check("masked_cross_entropy", fn, verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"wrong {', '.join(sorted(wrong))}" in r.text


def test_padding_mistakes_pass_the_unpadded_case():
    r = ex.check("masked_cross_entropy", ce_mean_over_padded_length, verbose=False)
    unpadded = r.text.split("no padding")[1].split("FAILED")[0]
    assert "✗" not in unpadded


def adam(w, g, m, v, t, lr, beta1, beta2, eps, *, correct=True, t0=False, eps_in=False,
         swap=False, sign=1.0):
    b1, b2 = (beta2, beta1) if swap else (beta1, beta2)
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * g**2
    k = t - 1 if t0 else t
    with np.errstate(divide="ignore", invalid="ignore"):
        m_hat = m_new / (1 - beta1**k) if correct else m_new
        v_hat = v_new / (1 - beta2**k) if correct else v_new
        step = m_hat / (np.sqrt(v_hat + eps) if eps_in else np.sqrt(v_hat) + eps)
    return w - sign * lr * step, m_new, v_new


def right_adam(*args):
    return adam(*args)


@pytest.mark.parametrize("kw, label, wrong", [
    ({"correct": False}, "bias correction missing", {"w"}),
    ({"t0": True}, "t counted from 0", {"w"}),
    ({"eps_in": True}, "eps inside the square root", {"w"}),
    ({"swap": True}, "β1 and β2 swapped", {"m", "v", "w"}),
    ({"sign": -1.0}, "wrong sign", {"w"}),
])
def test_adam_mistakes_are_named(kw, label, wrong):
    r = ex.check("adam_step", lambda *a: adam(*a, **kw), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"wrong {', '.join(sorted(wrong))}" in r.text


def test_a_right_adam_passes():
    assert ex.check("adam_step", right_adam, verbose=False).passed


def test_a_right_adam_matches_the_library_over_several_steps():
    from tinyattn.training.optim import Adam
    rng = np.random.default_rng(3)
    w = rng.standard_normal(5)
    grad = np.zeros(5)
    opt = Adam([("w", w, grad)], lr=0.01)
    mine, m, v = w.copy(), np.zeros(5), np.zeros(5)
    for t in range(1, 6):
        grad[...] = rng.standard_normal(5)
        opt.step()
        mine, m, v = right_adam(mine, grad, m, v, t, 0.01, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(mine, w, rtol=1e-12)
