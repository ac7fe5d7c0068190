"""Lesson 07's exercise `local_p_attention`: the right local-p passes, the
classic mistakes are named. The buggy versions are written here as a learner
would write them, one example and one step at a time, independently of the
package's predictions."""

import math

import numpy as np
import pytest

import tinyattn.exercises as ex
from tinyattn.exercises._ex_local import LOCAL_P


def learner(h, enc_hs, lengths, W_a, W_p, v_p, w, mistake=None):
    B, T, _ = h.shape
    S = enc_hs.shape[1]
    p = np.zeros((B, T))
    alpha = np.zeros((B, T, S))
    sigma = w if mistake == "sigma = w" else w / 2
    for b in range(B):
        n = int(lengths[b])
        for t in range(T):
            rho = 1 / (1 + math.exp(-float(v_p @ np.tanh(h[b, t] @ W_p))))
            scale = {"padded": S - 1, "paper": S, "from 1": n}.get(mistake, n - 1)
            p[b, t] = min(t, n - 1) if mistake == "local-m" else scale * rho
            upto = S if mistake == "no clip" else n
            lo, hi = p[b, t] - w, p[b, t] + w
            inside = [s for s in range(upto) if mistake == "no window" or lo <= s <= hi]
            e = np.array([h[b, t] @ W_a @ enc_hs[b, s] for s in inside])
            g = np.array([math.exp(-(s - p[b, t]) ** 2 / ((1 if mistake == "no 2" else 2)
                                                         * sigma**2)) for s in inside])
            if mistake == "after":
                a = np.exp(e - e.max()) / np.exp(e - e.max()).sum() * g
            elif mistake == "times":
                z = e * g
                a = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            elif mistake in ("no gauss", "local-m"):
                a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            else:
                z = np.exp(e - e.max()) * g
                a = z / z.sum()
            alpha[b, t, inside] = a
    return p, alpha


def test_a_learner_version_passes():
    assert ex.check("local_p_attention", learner, verbose=False).passed


@pytest.mark.parametrize("mistake, label, wrong", [
    ("padded", "p_t scaled by the padded length", {"alpha", "p"}),
    ("paper", "eq. 9 as printed", {"alpha", "p"}),
    ("from 1", "positions counted from 1", {"alpha", "p"}),
    ("local-m", "local-m's position p_t = t", {"alpha", "p"}),
    ("sigma = w", "σ = w instead of w / 2", {"alpha"}),
    ("no 2", "the 2 of 2σ² missing", {"alpha"}),
    ("after", "multiplied after the softmax, not renormalised", {"alpha"}),
    ("times", "the Gaussian multiplied into the scores", {"alpha"}),
    ("no gauss", "Gaussian left out", {"alpha"}),
    ("no clip", "pads inside the window get weight", {"alpha"}),
    ("no window", "no window", {"alpha"}),
])
def test_mistakes_are_named(mistake, label, wrong):
    r = ex.check("local_p_attention", lambda *a: learner(*a, mistake=mistake), verbose=False)
    assert r.status == "failed"
    assert len(r.diagnoses) == 1 and label in r.diagnoses[0], r.text
    assert f"wrong {', '.join(sorted(wrong))}" in r.text


@pytest.mark.parametrize("mistake", ["padded", "no clip"])
def test_a_padding_bug_passes_the_unpadded_case(mistake):
    r = ex.check("local_p_attention", lambda *a: learner(*a, mistake=mistake), verbose=False)
    unpadded = r.text.split("no padding")[1].split("FAILED")[0]
    assert "✗" not in unpadded and "✗" in r.text.split("no padding")[0]


def test_the_window_and_the_pads_get_exactly_zero():
    for _, args in LOCAL_P.cases(np.random.default_rng(0)):
        h, enc_hs, lengths, *_, w = args
        p, alpha = LOCAL_P.solution(*args)
        s = np.arange(enc_hs.shape[1])
        outside = (np.abs(s[None, None, :] - p[:, :, None]) > w) | (s >= lengths[:, None, None])
        assert outside.any() and np.all(alpha[outside] == 0.0)
        assert np.allclose(alpha.sum(axis=2), 1.0)
        assert np.all((p >= 0) & (p <= (lengths - 1)[:, None]))
