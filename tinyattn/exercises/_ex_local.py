"""Lesson 07's exercise: local-p attention's position, window and Gaussian.

The learner computes p_t from the decoder state, the window around it on
each sentence's real tokens, and the weights with the Gaussian factor, as
`tinyattn.LocalAttention(mode="local-p", score="general")` does
(docs/equations.md §5.3, window half-width w). Graded by outputs against
the library; the score itself is lesson 06's general score.

The library has no pure backward for the position (it lives in
`LocalAttention._scores_backward`, a method that accumulates into its
parameters' gradients), so the exercise is the forward only.
"""

from __future__ import annotations

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.functional import masked_softmax_forward, sigmoid
from tinyattn.local_attention import LocalAttention

# All sizes distinct, so that a transposed weight cannot pass unnoticed.
_B, _T, _S, _HQ, _HK, _A, _W = 3, 4, 9, 5, 6, 2, 3


def _solution(h, enc_hs, lengths, W_a, W_p, v_p, w):
    Hq, Hk = W_a.shape
    attn = LocalAttention(Hq, Hk, mode="local-p", window=w, score="general",
                          attn_size=W_p.shape[1], rng=np.random.default_rng(0))
    for name, value in (("W_a", W_a), ("W_p", W_p), ("v_p", v_p)):
        attn.params[name][...] = value
    src_mask = np.arange(enc_hs.shape[1])[None, :] < lengths[:, None]  # (B, S)
    _, alpha = attn(h, enc_hs, src_mask)
    return attn.positions, alpha


def _cases(rng):
    def one(lengths):
        h = rng.standard_normal((_B, _T, _HQ))
        enc_hs = rng.standard_normal((_B, _S, _HK))
        enc_hs[np.arange(_S)[None, :] >= lengths[:, None]] = 0.0  # the encoder's pads are 0
        W_a = rng.standard_normal((_HQ, _HK))
        while True:  # a p_t scaled by S must keep a real token in reach (no empty window)
            W_p = rng.standard_normal((_HQ, _A))
            v_p = 2.0 * rng.standard_normal(_A)  # spreads p_t over the sentence
            rho = sigmoid(np.tanh(h @ W_p) @ v_p)  # (B, T)
            if np.all(_S * rho - _W <= (lengths - 1)[:, None]):
                return h, enc_hs, lengths, W_a, W_p, v_p, _W
    return [(f"a padded batch, lengths [9, 6, 4], w = {_W}", one(np.array([_S, 6, 4]))),
            (f"no padding, lengths [9, 9, 9], w = {_W}", one(np.full(_B, _S)))]


def _local_p(h, enc_hs, lengths, W_a, W_p, v_p, w, *, scale="real", sigma=0.5,
             two=2.0, gauss="log", clip=True, window=True):
    """local-p attention with one of the classic mistakes switched on."""
    S = enc_hs.shape[1]
    scores = h @ (enc_hs @ W_a.T).transpose(0, 2, 1)  # (B, T, S)
    rho = sigmoid(np.tanh(h @ W_p) @ v_p)  # (B, T)
    if scale == "local-m":  # p_t = t, clamped to the last real token; no Gaussian
        p = np.minimum(np.arange(h.shape[1])[None, :], (lengths - 1)[:, None]).astype(float)
        gauss = "none"
    else:
        size = {"real": lengths - 1, "padded": np.full_like(lengths, S - 1),
                "paper": np.full_like(lengths, S), "from 1": lengths}[scale]
        p = size[:, None] * rho  # (B, T)
    diff = np.arange(S)[None, None, :] - p[:, :, None]  # (B, T, S)
    sig = sigma * w
    log_g = -diff**2 / (two * sig**2)
    mask = np.ones(diff.shape, dtype=bool)
    if window:
        mask &= np.abs(diff) <= w
    if clip:
        mask &= (np.arange(S)[None, :] < lengths[:, None])[:, None, :]
    if gauss == "log":
        z = scores + log_g
    elif gauss == "times scores":
        z = scores * np.exp(log_g)
    else:
        z = scores
    alpha = masked_softmax_forward(z, mask)[0]  # over the window: 0 outside it
    if gauss == "after":
        alpha = alpha * np.exp(log_g)  # eq. 10 as printed: not renormalised
    return p, alpha


def _bug(**kw):
    return lambda *args: _local_p(*args, **kw)


def local_p_attention(h, enc_hs, lengths, W_a, W_p, v_p, w):
    """local-p attention weights, as `LocalAttention(mode="local-p", score="general")`.

    h (B, T, Hq) decoder states; enc_hs (B, S, Hk) encoder states, 0 past
    ``lengths[b]``; W_a (Hq, Hk); W_p (Hq, A); v_p (A,); w the window's
    half-width (an int). docs/equations.md §5.3, positions counted from 0:

        score_ts = h_t @ W_a @ h̄_sᵀ                   (lesson 06's general score)
        p_t      = (S_b − 1) · sigmoid(v_p · tanh(h_t @ W_p))      S_b = lengths[b]
        window   the real positions s (0 ≤ s < S_b) with |s − p_t| ≤ w
        a_t(s)   = softmax over the window of [score_ts − (s − p_t)² / (2σ²)],  σ = w / 2

    (the softmax of the window, times the Gaussian, renormalised), 0 outside
    the window. Returns ``p (B, T)`` and ``alpha (B, T, S)``.
    """
    raise NotImplementedError  # your code here


LOCAL_P = OutputExercise(
    "local_p_attention",
    "p, alpha = local_p_attention(h, enc_hs, lengths, W_a, W_p, v_p, w)",
    _solution,
    _cases,
    ("p", "alpha"),
    "docs/equations.md §5.3 (Luong et al. 2015, §3.2, eqs. 9–10): "
    "p_t = (S_b − 1) · sigmoid(v_p · tanh(h_t @ W_p)); window |s − p_t| ≤ w on real tokens; "
    "a_t = softmax over the window of score − (s − p_t)² / (2σ²), σ = w / 2",
    [
        Bug("p_t scaled by the padded length",
            "S_b is each sentence's own real length (lengths[b]), not the padded S: with "
            "(S − 1) · sigmoid a short sentence's p_t can land on its pads",
            _bug(scale="padded")),
        Bug("p_t = S · sigmoid(…) with the padded S (eq. 9 as printed)",
            "the library counts positions from 0 and uses the real length: "
            "p_t = (S_b − 1) · sigmoid(…), which lies in [0, S_b − 1]",
            _bug(scale="paper")),
        Bug("p_t = S_b · sigmoid(…): positions counted from 1",
            "positions count from 0, so the last real token is S_b − 1: "
            "p_t = (S_b − 1) · sigmoid(…)",
            _bug(scale="from 1")),
        Bug("local-m's position p_t = t, and no Gaussian",
            "that is local-m; local-p predicts its position from the state, "
            "p_t = (S_b − 1) · sigmoid(v_p · tanh(h_t @ W_p)), and weighs the window with "
            "the Gaussian centred there",
            _bug(scale="local-m")),
        Bug("σ = w instead of w / 2",
            "the Gaussian's width is half the window's half-width, σ = w / 2 (Luong §3.2): "
            "with σ = w it is four times too flat in the exponent",
            _bug(sigma=1.0)),
        Bug("the 2 of 2σ² missing",
            "the Gaussian is exp(−(s − p_t)² / (2σ²)); dividing by σ² alone makes it twice "
            "as steep in the exponent",
            _bug(two=1.0)),
        Bug("the Gaussian multiplied after the softmax, not renormalised (eq. 10 as printed)",
            "the library renormalises: add the Gaussian's log, −(s − p_t)² / (2σ²), to the "
            "scores before the softmax (the same as dividing eq. 10 by its row sum), so "
            "each row sums to 1",
            _bug(gauss="after")),
        Bug("the Gaussian multiplied into the scores",
            "score × exp(…) before the softmax shrinks the scores instead of the weights; "
            "the Gaussian multiplies exp(score), that is, its log is *added* to the score",
            _bug(gauss="times scores")),
        Bug("Gaussian left out",
            "multiply the window's softmax by exp(−(s − p_t)² / (2σ²)) and renormalise: "
            "add −(s − p_t)² / (2σ²) to the scores before the softmax",
            _bug(gauss="none")),
        Bug("the window not clipped to the sentence: pads inside the window get weight",
            "the window holds only real positions: mask s ≥ S_b as well as |s − p_t| > w",
            _bug(clip=False)),
        Bug("no window: the Gaussian alone over the whole sentence",
            "positions with |s − p_t| > w must get exactly 0: mask them like pads before "
            "the softmax",
            _bug(window=False)),
    ],
    starter=local_p_attention,
)

EXERCISES = [LOCAL_P]
