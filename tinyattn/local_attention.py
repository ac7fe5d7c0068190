"""Luong's local attention: attend only to a window around a position p_t.

docs/equations.md §5 (Luong et al. 2015, §3.2)::

    local-m   p_t = t                                          (monotonic)
    local-p   p_t = (S_b − 1) · σ(v_p · tanh(h_t @ W_p))      (predicted)
    window    positions s with |s − p_t| ≤ w
    local-m   a_t(s) = softmax over the window of score(h_t, h̄_s)
    local-p   a_t(s) = softmax over the window of score(h_t, h̄_s) − (s − p_t)² / (2σ²),  σ = w / 2

Two choices, written down here because the paper leaves them open:

- Positions count from 0 and S_b is each sequence's own real length, so
  p_t lies in [0, S_b − 1] and the window always holds a real token (the
  paper's p_t ∈ [0, S] can sit past the last word). local-m clamps
  p_t = min(t, S_b − 1) for targets longer than their source.
- local-p multiplies the aligned weights by the Gaussian *and
  renormalises* (the Gaussian enters as a log-term before the softmax), so
  every row sums to 1 like every other attention here; Luong's eq. 10
  multiplies after the softmax and leaves rows summing to less than 1.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_dim, check_options, check_size
from tinyattn.attention import LUONG_SCORES, LuongAttention
from tinyattn.functional import matmul_last, sigmoid

LOCAL_MODES = ("local-m", "local-p")


class LocalAttention(LuongAttention):
    """Local attention around a monotonic (local-m) or predicted (local-p) position.

    Parameters
    ----------
    query_size, key_size : int
        Hq and Hk.
    mode : {"local-m", "local-p"}
    window : int
        Half-width w of the window ``[p_t − w, p_t + w]`` (Luong's D).
    score : {"dot", "general", "concat", "scaled_dot"}
        The alignment score inside the window (default "general").
    attn_size : int, optional
        A for local-p's ``W_p (Hq, A)``, ``v_p (A,)`` and for "concat"
        (default Hq). Checked (a positive int) in every case; local-m with
        another score has no such size and does not read it.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    After each call, ``positions`` holds p_t of shape (B, T) for plotting
    on the alignment heatmap. See the module docstring for the equations.
    """

    def __init__(self, query_size, key_size, *, mode, window, score="general",
                 attn_size=None, rng, dtype=np.float64):
        check_options("mode", mode, LOCAL_MODES)
        check_options("score", score, LUONG_SCORES)
        attn_size = check_dim(attn_size, "attn_size", none_ok=True)
        super().__init__(query_size, key_size, score=score,
                         attn_size=attn_size if score == "concat" else None, rng=rng,
                         dtype=dtype)
        self.mode = mode
        self.window = check_size(window, "window")
        self.sigma = self.window / 2.0
        if mode == "local-p":
            A = check_dim(self.query_size if attn_size is None else attn_size, "attn_size")
            self.add_param("W_p", self._init(self.query_size, self.query_size, A))
            self.add_param("v_p", self._init(A, A))

    def _positions(self, queries, memory, steps):
        """p_t (B, T) and what its backward needs."""
        last = (memory.lengths - 1).astype(self.dtype)[:, None]  # (B, 1): S_b − 1
        if self.mode == "local-m":
            return np.minimum(steps[None, :].astype(self.dtype), last), None
        u_h = np.tanh(matmul_last(queries, self.params["W_p"]))  # (B, T, Hq) @ (Hq, A) -> (B, T, A)
        sig = sigmoid(u_h @ self.params["v_p"])  # (B, T)
        return last * sig, (queries, u_h, sig, last)

    def _scores(self, queries, memory, steps):
        scores, base_cache = super()._scores(queries, memory, steps)  # (B, T, S)
        p, p_cache = self._positions(queries, memory, steps)
        S = memory.annotations.shape[1]
        diff = np.arange(S, dtype=self.dtype)[None, None, :] - p[:, :, None]  # (B, T, S)
        window = np.abs(diff) <= self.window
        if self.mode == "local-p":
            scores = scores - diff * diff / (2.0 * self.sigma**2)  # log of the Gaussian
        self.positions = p.copy()
        return scores, (base_cache, window, diff, p_cache)

    def _mask(self, memory, score_cache):
        window = score_cache[1]
        return memory.mask[:, None, :] & window  # (B, 1, S) & (B, T, S) -> (B, T, S)

    def _scores_backward(self, dscores, cache, memory):
        base_cache, window, diff, p_cache = cache
        dqueries = super()._scores_backward(dscores, base_cache, memory)
        if self.mode == "local-p":
            queries, u_h, sig, last = p_cache
            # d/dp of −(s − p)²/(2σ²) is (s − p)/σ²; sum over s
            dp = np.sum(dscores * diff, axis=2) / self.sigma**2  # (B, T)
            du = dp * last * sig * (1.0 - sig)  # p = last · σ(u)
            self.grads["v_p"] += np.tensordot(du, u_h, axes=([0, 1], [0, 1]))
            du_h = du[..., None] * self.params["v_p"]  # (B, T, 1) * (A,) -> (B, T, A)
            du_h *= 1.0 - u_h * u_h  # tanh' from the output
            B, T, Hq = queries.shape
            self.grads["W_p"] += queries.reshape(B * T, Hq).T @ du_h.reshape(B * T, -1)
            dqueries = dqueries + matmul_last(du_h, self.params["W_p"].T)
        return dqueries
