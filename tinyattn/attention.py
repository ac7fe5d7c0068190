"""Bahdanau (additive) and Luong (dot, general, concat, scaled dot) attention.

Every attention here turns queries and encoder annotations into weights
and a context vector (docs/equations.md §4–§5)::

    scores  = score(queries, keys)              (B, T, S)
    alpha   = masked_softmax(scores, mask)      (B, T, S), 0 on pads, rows sum to 1
    context = alpha @ annotations               (B, T, Hk)

The score functions are pure forward/backward pairs at the top of this
file: two kernels, `dot_score_forward` (dot, scaled dot, and general
after its key projection) and `additive_score_forward` (Bahdanau and
concat after their projections), and `general_score_forward`, Luong's
general score as one pair. `SCORES` says how each named score splits
into a key projection (once per source batch), a query projection and a
kernel; `Attention` runs any of them from that table.

Two ways to call a module:

- whole sequences, when all queries are known (Luong without input
  feeding, tests, lessons): ``context, alpha = attn(queries, enc_hs,
  src_mask)`` and ``dqueries, denc_hs = attn.backward(dcontext, dalpha)``;
- one query at a time, for a decoder: ``memory = attn.prepare(enc_hs,
  src_mask)`` once per source batch (a `tinyattn.memory.Memory`; the key
  projection, e.g. Bahdanau's ``h_j @ U_a``, does not depend on the
  query), then per step ``context, alpha, cache = attn.step(query,
  memory, t)`` and ``dquery = attn.step_backward(dcontext, cache,
  memory)``, and finally ``denc_hs = attn.prepare_backward(memory)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyattn._validate import check_array, check_dim, check_mask, check_options, check_rng
from tinyattn.functional import masked_softmax_backward, masked_softmax_forward, matmul_last
from tinyattn.memory import Memory
from tinyattn.module import Module


# ----- score functions: pure pairs -----------------------------------------
def dot_score_forward(queries, keys, scale=1.0):
    """Dot-product scores ``e[b, t, s] = scale · queries[b, t] · keys[b, s]``.

    Parameters
    ----------
    queries : ndarray of shape (B, T, K)
    keys : ndarray of shape (B, S, K)
    scale : float
        1 for Luong's dot and general scores, 1/√Hk for scaled dot.

    Returns
    -------
    scores : ndarray of shape (B, T, S)
    cache : tuple
    """
    scores = queries @ keys.transpose(0, 2, 1)  # (B, T, K) @ (B, K, S) -> (B, T, S)
    if scale != 1.0:
        scores *= scale
    return scores, (queries, keys, scale)


def dot_score_backward(dscores, cache):
    """Backward of `dot_score_forward`: ``dqueries, dkeys``."""
    queries, keys, scale = cache
    if scale != 1.0:
        dscores = dscores * scale
    dqueries = dscores @ keys  # (B, T, S) @ (B, S, K) -> (B, T, K)
    dkeys = dscores.transpose(0, 2, 1) @ queries  # (B, S, T) @ (B, T, K) -> (B, S, K)
    return dqueries, dkeys


def additive_score_forward(q_proj, k_proj, v_a):
    """Additive scores ``e[b, t, s] = v_a · tanh(q_proj[b, t] + k_proj[b, s])``.

    Parameters
    ----------
    q_proj : ndarray of shape (B, T, A)
        Projected queries (``s_{i-1} @ W_a`` in Bahdanau's notation).
    k_proj : ndarray of shape (B, S, A)
        Projected keys (``h_j @ U_a``).
    v_a : ndarray of shape (A,)

    Returns
    -------
    scores : ndarray of shape (B, T, S)
    cache : tuple
    """
    # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A): every query against every key
    feats = np.tanh(q_proj[:, :, None, :] + k_proj[:, None, :, :])
    scores = feats @ v_a  # (B, T, S, A) @ (A,) -> (B, T, S)
    return scores, (feats, v_a)


def additive_score_backward(dscores, cache):
    """Backward of `additive_score_forward`: ``dq_proj, dk_proj, dv_a``."""
    feats, v_a = cache
    dv_a = np.tensordot(dscores, feats, axes=([0, 1, 2], [0, 1, 2]))  # Σ_bts dscores · feats
    dfeats = dscores[..., None] * v_a  # (B, T, S, 1) * (A,) -> (B, T, S, A)
    dfeats *= 1.0 - feats * feats  # tanh' = 1 − feats²; reuse the output
    return dfeats.sum(axis=2), dfeats.sum(axis=1), dv_a  # q broadcast over S, k over T


def general_score_forward(queries, enc_hs, W_a):
    """Luong's general scores ``score[b, t, s] = queries[b, t] · (enc_hs[b, s] @ W_a.T)``.

    Parameters
    ----------
    queries : ndarray of shape (B, T, Hq)
        Decoder states h_t.
    enc_hs : ndarray of shape (B, S, Hk)
        Encoder states h̄_s.
    W_a : ndarray of shape (Hq, Hk)

    Returns
    -------
    scores : ndarray of shape (B, T, S)
    cache : tuple
        ``(queries, enc_hs, W_a, keys)``.

    Notes
    -----
    Row-vector form of ``score(h_t, h̄_s) = h_t^T W_a h̄_s`` (docs/equations.md
    §5, Luong et al. 2015): the key projection, then `dot_score_forward`::

        keys   = enc_hs @ W_a.T                    (B, S, Hq)
        scores = queries @ keys.transpose(0, 2, 1)  (B, T, S)

    `LuongAttention` does the same in two parts: the key projection once per
    source batch (`Attention.prepare`), the dot kernel per decoder step.
    """
    keys = matmul_last(enc_hs, W_a.T)  # (B, S, Hk) @ (Hk, Hq) -> (B, S, Hq)
    scores, _ = dot_score_forward(queries, keys)
    return scores, (queries, enc_hs, W_a, keys)


def general_score_backward(dscores, cache):
    """Backward of `general_score_forward`: ``dqueries, denc_hs, dW_a``."""
    queries, enc_hs, W_a, keys = cache
    dqueries, dkeys = dot_score_backward(dscores, (queries, keys, 1.0))
    denc_hs = matmul_last(dkeys, W_a)  # keys = enc W_a^T -> denc = dkeys W_a
    dW_a = np.einsum("bsq,bsk->qk", dkeys, enc_hs)  # Σ_b dkeys_b^T enc_b, (Hq, Hk)
    return dqueries, denc_hs, dW_a


# ----- the table: how each score splits ------------------------------------
@dataclass(frozen=True)
class ScoreSpec:
    """How a named score function runs: ``kernel`` ("dot" or "additive"),
    and where its key and query projections take their weight.

    A projection is ``(param, part)``: ``part`` None uses the whole matrix,
    "T" its transpose, "top"/"bottom" the rows for the query / the key of a
    stacked ``W_a (Hq + Hk, A)``. None means no projection.
    """

    kernel: str
    key_proj: tuple | None
    query_proj: tuple | None


SCORES = {
    #                             kernel      key projection     query projection
    "bahdanau": ScoreSpec("additive", ("U_a", None), ("W_a", None)),
    "dot": ScoreSpec("dot", None, None),
    "scaled_dot": ScoreSpec("dot", None, None),
    "general": ScoreSpec("dot", ("W_a", "T"), None),
    "concat": ScoreSpec("additive", ("W_a", "bottom"), ("W_a", "top")),
}
KERNELS = {"dot": (dot_score_forward, dot_score_backward),
           "additive": (additive_score_forward, additive_score_backward)}


class Attention(Module):
    """Any score of `SCORES` with masked softmax and context, in both call forms.

    Subclasses register the parameters their score needs (`BahdanauAttention`,
    `LuongAttention`); everything else runs from the score's `ScoreSpec`.
    """

    def __init__(self, query_size, key_size, *, score, rng, dtype=np.float64):
        super().__init__(dtype)
        self.query_size = check_dim(query_size, "query_size")
        self.key_size = check_dim(key_size, "key_size")
        self._rng = check_rng(rng)
        self.score = score
        self._spec = SCORES[score]
        # A Python float: under NumPy 2's promotion rules an np.float64 scalar
        # would turn float32 scores into float64.
        self._scale = float(1.0 / np.sqrt(self.key_size)) if score == "scaled_dot" else 1.0
        self.positions = None  # local attention's p_t (B, T) from the last call

    def _init(self, fan_in, *shape):
        k = 1.0 / np.sqrt(fan_in)
        return self._rng.uniform(-k, k, shape)

    def _weight(self, projection):
        """A projection's matrix and its gradient, as views of the parameter."""
        name, part = projection
        W, G = self.params[name], self.grads[name]
        rows = {"top": slice(None, self.query_size), "bottom": slice(self.query_size, None)}
        if part == "T":
            return W.T, G.T
        if part in rows:
            return W[rows[part]], G[rows[part]]
        return W, G

    # ----- the memory, once per source batch -----------------------------
    def prepare(self, enc_hs, src_mask) -> Memory:
        """Check the encoder states and mask; project the keys once."""
        check_array(enc_hs, "enc_hs", (None, None, self.key_size), self.dtype)
        B, S, _ = enc_hs.shape
        src_mask = check_mask(src_mask, "src_mask", B, S, "source")
        keys = enc_hs
        if self._spec.key_proj is not None:
            keys = matmul_last(enc_hs, self._weight(self._spec.key_proj)[0])  # (B, S, K)
        return Memory(enc_hs, src_mask, keys)

    def prepare_backward(self, memory: Memory) -> np.ndarray:
        """Finish the backward: ``denc_hs (B, S, Hk)``, and every weight
        gradient whose product waited for all steps."""
        memory.deferred.flush()
        denc_hs = memory.dkeys
        if self._spec.key_proj is not None:
            W, G = self._weight(self._spec.key_proj)
            B, S, Hk = memory.annotations.shape
            # keys = enc_hs @ W: dW = enc^T dkeys over all B·S rows, denc = dkeys W^T
            G += memory.annotations.reshape(B * S, Hk).T @ memory.dkeys.reshape(B * S, -1)
            denc_hs = matmul_last(memory.dkeys, W.T)
        if memory.pending:
            alphas, dcontexts = zip(*memory.pending)
            alpha = np.concatenate(alphas, axis=1)  # T steps of (B, 1, S) -> (B, T, S)
            dcontext = np.concatenate(dcontexts, axis=1)  # -> (B, T, Hk)
            denc_hs = denc_hs + alpha.transpose(0, 2, 1) @ dcontext  # context = alpha @ enc_hs
            memory.pending.clear()
        return denc_hs

    # ----- the attention proper -----------------------------------------
    def attend(self, queries, memory: Memory, steps=None):
        """Attend with queries (B, T, Hq) to a prepared memory.

        ``steps`` (T,) are the queries' target positions (local-m needs
        them; default 0..T-1). Returns ``context (B, T, Hk)``,
        ``alpha (B, T, S)`` and a cache for `attend_backward`.
        """
        check_array(queries, "queries", (memory.annotations.shape[0], None, self.query_size),
                    self.dtype)
        steps = np.arange(queries.shape[1]) if steps is None else np.asarray(steps)
        scores, score_cache = self._scores(queries, memory, steps)  # (B, T, S)
        mask = self._mask(memory, score_cache)  # (B, 1, S), or (B, T, S) with a window
        alpha, sm_cache = masked_softmax_forward(scores, mask)
        context = alpha @ memory.annotations  # (B, T, S) @ (B, S, Hk) -> (B, T, Hk)
        return context, alpha, (score_cache, sm_cache, alpha)

    def attend_backward(self, dcontext, cache, memory: Memory, dalpha=None):
        """Backward of `attend`: ``dqueries``; key gradients accumulate in ``memory``."""
        score_cache, sm_cache, alpha = cache
        # context = alpha @ annotations
        dalpha_total = dcontext @ memory.annotations.transpose(0, 2, 1)  # (B, T, S)
        if dalpha is not None:
            dalpha_total += dalpha
        memory.pending.append((alpha, dcontext))  # denc_hs, in prepare_backward
        dscores = masked_softmax_backward(dalpha_total, sm_cache)
        return self._scores_backward(dscores, score_cache, memory)

    def _scores(self, queries, memory: Memory, steps):
        """The score's forward: query projection (if any), then its kernel."""
        spec = self._spec
        q = queries
        if spec.query_proj is not None:  # (B, T, Hq) @ (Hq, A) -> (B, T, A)
            q = matmul_last(queries, self._weight(spec.query_proj)[0])
        extra = self._scale if spec.kernel == "dot" else self.params["v_a"]
        scores, cache = KERNELS[spec.kernel][0](q, memory.keys, extra)
        return scores, (cache, queries)

    def _scores_backward(self, dscores, cache, memory: Memory):
        kernel_cache, queries = cache
        dq, dkeys, *dv_a = KERNELS[self._spec.kernel][1](dscores, kernel_cache)
        if dv_a:  # the additive kernel's v_a
            self.grads["v_a"] += dv_a[0]
        memory.dkeys += dkeys
        if self._spec.query_proj is None:
            return dq
        B, T, Hq = queries.shape
        # dW = queries^T dq_proj: one product over all steps, in prepare_backward
        memory.deferred.add(self._add_query_grad, queries.reshape(B * T, Hq),
                            dq.reshape(B * T, -1))
        return matmul_last(dq, self._weight(self._spec.query_proj)[0].T)  # (B, T, A) @ (A, Hq)

    def _add_query_grad(self, queries, dq_proj):
        grad = self._weight(self._spec.query_proj)[1]
        grad += queries.T @ dq_proj  # q_proj = queries @ W

    def _mask(self, memory: Memory, score_cache):
        return memory.mask[:, None, :]  # (B, S) -> (B, 1, S), explicit broadcast

    # ----- whole sequences -------------------------------------------------
    def forward(self, queries, enc_hs, src_mask):
        """Attend with every query: ``context (B, T, Hk)``, ``alpha (B, T, S)``."""
        memory = self.prepare(enc_hs, src_mask)
        context, alpha, cache = self.attend(queries, memory)
        self._cache = (cache, memory, queries.shape)
        return context, alpha

    def backward(self, dcontext, dalpha=None):
        """``dqueries (B, T, Hq)``, ``denc_hs (B, S, Hk)``; adds parameter grads."""
        cache, memory, qshape = self._take_cache()
        B, T, _ = qshape
        S = memory.annotations.shape[1]
        check_array(dcontext, "dcontext", (B, T, self.key_size), self.dtype)
        if dalpha is not None:
            check_array(dalpha, "dalpha", (B, T, S), self.dtype)
        dqueries = self.attend_backward(dcontext, cache, memory, dalpha)
        return dqueries, self.prepare_backward(memory)

    # ----- one query at a time -------------------------------------------
    def step(self, query, memory: Memory, t: int = 0):
        """One decoder step: ``context (B, Hk)``, ``alpha (B, S)``, ``cache``.

        ``t`` is the target position (used by local-m attention only).
        """
        check_array(query, "query", (memory.annotations.shape[0], self.query_size), self.dtype)
        context, alpha, cache = self.attend(query[:, None, :], memory, np.array([t]))
        return context[:, 0], alpha[:, 0], cache  # (B, 1, ·) -> (B, ·)

    def step_backward(self, dcontext, cache, memory: Memory, dalpha=None):
        """Backward of `step`: ``dquery (B, Hq)``.

        Key gradients go into ``memory``; the weight gradients are
        complete once `prepare_backward` has run after the last step.
        """
        dalpha = None if dalpha is None else dalpha[:, None, :]
        dq = self.attend_backward(dcontext[:, None, :], cache, memory, dalpha)
        return dq[:, 0]


class BahdanauAttention(Attention):
    """Additive attention (Bahdanau et al. 2015; document 003's e_ij, α_ij, c_i).

    Parameters
    ----------
    query_size : int
        Hq, the decoder state size (the query is ``s_{i-1}``).
    key_size : int
        Hk, the encoder annotation size (2H for a bidirectional encoder).
    attn_size : int
        A.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    Row-vector form of docs/equations.md §4::

        e_ij = v_a · tanh(s_{i-1} @ W_a + h_j @ U_a)      W_a (Hq, A), U_a (Hk, A), v_a (A,)
        α_ij = softmax_j(e_ij)      c_i = Σ_j α_ij h_j

    ``h_j @ U_a`` is computed once per source batch (`prepare`). Paper to
    code: s_{i-1} → ``queries``, h_j → ``enc_hs[:, j]``, e_ij →
    ``scores``, α_ij → ``alpha``, c_i → ``context``.

    References
    ----------
    .. [1] D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by
       Jointly Learning to Align and Translate", ICLR 2015.

    Examples
    --------
    >>> attn = BahdanauAttention(4, 6, 5, rng=np.random.default_rng(0))
    >>> mask = np.array([[True, True, True], [True, False, False]])
    >>> context, alpha = attn(np.ones((2, 2, 4)), np.ones((2, 3, 6)), mask)
    >>> context.shape, alpha[1].round(2).tolist()
    ((2, 2, 6), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    """

    def __init__(self, query_size, key_size, attn_size, *, rng, dtype=np.float64):
        super().__init__(query_size, key_size, score="bahdanau", rng=rng, dtype=dtype)
        self.attn_size = check_dim(attn_size, "attn_size")
        self.add_param("W_a", self._init(self.query_size, self.query_size, self.attn_size))
        self.add_param("U_a", self._init(self.key_size, self.key_size, self.attn_size))
        self.add_param("v_a", self._init(self.attn_size, self.attn_size))


LUONG_SCORES = ("dot", "general", "concat", "scaled_dot")


class LuongAttention(Attention):
    """Global multiplicative attention (Luong et al. 2015; document 003 fig. 11).

    Parameters
    ----------
    query_size : int
        Hq, the decoder state size (the query is ``h_t``, after the cell).
    key_size : int
        Hk, the encoder state size. dot and scaled_dot need Hq == Hk.
    score : {"dot", "general", "concat", "scaled_dot"}
    attn_size : int, optional
        A, for "concat" only (default Hq).
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    Row-vector form of docs/equations.md §5::

        dot         score(h_t, h̄_s) = h_t · h̄_s
        scaled_dot  score(h_t, h̄_s) = h_t · h̄_s / sqrt(Hk)         (Vaswani et al. 2017)
        general     score(h_t, h̄_s) = h_t · (h̄_s @ W_a.T)           W_a (Hq, Hk)
        concat      score(h_t, h̄_s) = v_a · tanh([h_t ; h̄_s] @ W_a)  W_a (Hq + Hk, A), v_a (A,)

    "concat" splits ``[h_t ; h̄_s] @ W_a`` into ``h_t @ W_a[:Hq] +
    h̄_s @ W_a[Hq:]``, the same additive form as Bahdanau's, so the key
    half is projected once per source batch (see `SCORES`). Without input
    feeding all T×S scores come from one batched product.

    References
    ----------
    .. [1] M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to
       Attention-based Neural Machine Translation", EMNLP 2015.
    """

    def __init__(self, query_size, key_size, *, score, attn_size=None, rng,
                 dtype=np.float64):
        check_options("score", score, LUONG_SCORES)
        super().__init__(query_size, key_size, score=score, rng=rng, dtype=dtype)
        Hq, Hk = self.query_size, self.key_size
        if score in ("dot", "scaled_dot") and Hq != Hk:
            raise ValueError(
                f"score={score!r} needs query_size == key_size, got {Hq} and {Hk}; "
                "use 'general' or 'concat' for different sizes"
            )
        if attn_size is not None and score != "concat":
            raise ValueError(f"attn_size is only used by score='concat', got score={score!r}")
        if score == "general":
            self.add_param("W_a", self._init(Hk, Hq, Hk))
        elif score == "concat":
            self.attn_size = check_dim(Hq if attn_size is None else attn_size, "attn_size")
            self.add_param("W_a", self._init(Hq + Hk, Hq + Hk, self.attn_size))
            self.add_param("v_a", self._init(self.attn_size, self.attn_size))
