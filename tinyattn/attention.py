"""Bahdanau (additive) and Luong (dot, general, concat, scaled dot) attention.

Every attention here turns queries and encoder states into weights and a
context vector (EQUATIONS.md §4–§5)::

    scores = score(queries, enc_hs)              (B, T, S)
    alpha  = masked_softmax(scores, src_mask)    (B, T, S), 0 on pads, rows sum to 1
    context = alpha @ enc_hs                     (B, T, Hk)

Two ways to call a module:

- whole sequences, when all queries are known (Luong without input
  feeding, tests, lessons): ``context, alpha = attn(queries, enc_hs,
  src_mask)`` and ``dqueries, denc_hs = attn.backward(dcontext, dalpha)``;
- one query at a time, for a decoder: ``keys = attn.prepare(enc_hs,
  src_mask)`` once per source batch (the key projection, e.g. Bahdanau's
  ``U_a h_j``, does not depend on the query), then per step
  ``context, alpha, cache = attn.step(query, keys, t)`` and
  ``dquery = attn.step_backward(dcontext, cache)``, and finally
  ``denc_hs = attn.prepare_backward(keys)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyattn._recurrent import DeferredGrads
from tinyattn._validate import check_array, check_mask, check_options, check_rng, check_size
from tinyattn.functional import masked_softmax_backward, masked_softmax_forward, matmul_last
from tinyattn.module import Module


def additive_score_forward(q_proj, k_proj, v_a):
    """Additive scores ``e[b, t, s] = v_a · tanh(q_proj[b, t] + k_proj[b, s])``.

    Parameters
    ----------
    q_proj : ndarray of shape (B, T, A)
        Projected queries (``s_{i-1} W_a`` in Bahdanau's notation).
    k_proj : ndarray of shape (B, S, A)
        Projected keys (``h_j U_a``).
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


@dataclass
class Keys:
    """What `prepare` computes once per source batch, and its gradients.

    ``keys`` is the projected form the score needs (``enc_hs @ U_a`` for
    Bahdanau, ``enc_hs @ W_a.T`` for general, ``enc_hs`` itself for dot).
    ``dkeys`` accumulates over decoder steps. Products that would run once
    per decoder step on B rows wait in ``contexts`` (the ``alpha`` and
    ``dcontext`` of each step, for ``denc_hs``) and ``deferred`` (the
    query-side weight gradients) until `Attention.prepare_backward` runs
    each as one product over all steps.
    """

    enc_hs: np.ndarray  # (B, S, Hk)
    src_mask: np.ndarray  # (B, S) bool
    keys: np.ndarray  # (B, S, K)
    lengths: np.ndarray  # (B,) real source lengths
    dkeys: np.ndarray = field(default=None, repr=False)
    contexts: list = field(default_factory=list, repr=False)
    deferred: DeferredGrads = field(default_factory=DeferredGrads, repr=False)

    def __post_init__(self):
        self.dkeys = np.zeros_like(self.keys)


class Attention(Module):
    """Shared machinery: checks, masked softmax, context, the two call forms.

    Subclasses implement ``_project_keys``/``_project_keys_backward`` and
    ``_scores``/``_scores_backward``.
    """

    def __init__(self, query_size, key_size, *, rng, dtype=np.float64):
        super().__init__(dtype)
        self.query_size = check_size(query_size, "query_size")
        self.key_size = check_size(key_size, "key_size")
        self._rng = check_rng(rng)
        self.positions = None  # local attention's p_t (B, T) from the last call

    def _init(self, fan_in, *shape):
        k = 1.0 / np.sqrt(fan_in)
        return self._rng.uniform(-k, k, shape)

    # ----- keys, once per source batch ------------------------------------
    def prepare(self, enc_hs, src_mask) -> Keys:
        """Check the encoder states and mask; project the keys once."""
        check_array(enc_hs, "enc_hs", (None, None, self.key_size), self.dtype)
        B, S, _ = enc_hs.shape
        src_mask = check_mask(src_mask, "src_mask", B, S, "source")
        keys = self._project_keys(enc_hs)
        return Keys(enc_hs, src_mask, keys, src_mask.sum(axis=1))

    def prepare_backward(self, prepared: Keys) -> np.ndarray:
        """Finish the backward: ``denc_hs (B, S, Hk)``, and every weight
        gradient whose product waited for all steps."""
        prepared.deferred.flush()
        denc_hs = self._project_keys_backward(prepared.dkeys, prepared.enc_hs)
        if prepared.contexts:
            alphas, dcontexts = zip(*prepared.contexts)
            alpha = np.concatenate(alphas, axis=1)  # T steps of (B, 1, S) -> (B, T, S)
            dcontext = np.concatenate(dcontexts, axis=1)  # -> (B, T, Hk)
            denc_hs += alpha.transpose(0, 2, 1) @ dcontext  # context = alpha @ enc_hs
            prepared.contexts.clear()
        return denc_hs

    # ----- the attention proper -----------------------------------------
    def attend(self, queries, prepared: Keys, steps=None):
        """Attend with queries (B, T, Hq) to prepared keys.

        ``steps`` (T,) are the queries' target positions (local-m needs
        them; default 0..T-1). Returns ``context (B, T, Hk)``,
        ``alpha (B, T, S)`` and a cache for `attend_backward`.
        """
        check_array(queries, "queries", (prepared.enc_hs.shape[0], None, self.query_size),
                    self.dtype)
        steps = np.arange(queries.shape[1]) if steps is None else np.asarray(steps)
        scores, score_cache = self._scores(queries, prepared, steps)  # (B, T, S)
        mask = self._mask(prepared, score_cache)  # (B, 1, S), or (B, T, S) with a window
        alpha, sm_cache = masked_softmax_forward(scores, mask)
        context = alpha @ prepared.enc_hs  # (B, T, S) @ (B, S, Hk) -> (B, T, Hk)
        return context, alpha, (score_cache, sm_cache, alpha)

    def attend_backward(self, dcontext, cache, prepared: Keys, dalpha=None):
        """Backward of `attend`: ``dqueries``; key gradients accumulate in ``prepared``."""
        score_cache, sm_cache, alpha = cache
        # context = alpha @ enc_hs
        dalpha_total = dcontext @ prepared.enc_hs.transpose(0, 2, 1)  # (B, T, S)
        if dalpha is not None:
            dalpha_total += dalpha
        prepared.contexts.append((alpha, dcontext))  # denc_hs, in prepare_backward
        dscores = masked_softmax_backward(dalpha_total, sm_cache)
        return self._scores_backward(dscores, score_cache, prepared)

    def _mask(self, prepared: Keys, score_cache):
        return prepared.src_mask[:, None, :]  # (B, S) -> (B, 1, S), explicit broadcast

    # ----- whole sequences -------------------------------------------------
    def forward(self, queries, enc_hs, src_mask):
        """Attend with every query: ``context (B, T, Hk)``, ``alpha (B, T, S)``."""
        prepared = self.prepare(enc_hs, src_mask)
        context, alpha, cache = self.attend(queries, prepared)
        self._cache = (cache, prepared, queries.shape)
        return context, alpha

    def backward(self, dcontext, dalpha=None):
        """``dqueries (B, T, Hq)``, ``denc_hs (B, S, Hk)``; adds parameter grads."""
        cache, prepared, qshape = self._take_cache()
        B, T, _ = qshape
        S = prepared.enc_hs.shape[1]
        check_array(dcontext, "dcontext", (B, T, self.key_size), self.dtype)
        if dalpha is not None:
            check_array(dalpha, "dalpha", (B, T, S), self.dtype)
        dqueries = self.attend_backward(dcontext, cache, prepared, dalpha)
        return dqueries, self.prepare_backward(prepared)

    # ----- one query at a time -------------------------------------------
    def step(self, query, prepared: Keys, t: int = 0):
        """One decoder step: ``context (B, Hk)``, ``alpha (B, S)``, ``cache``.

        ``t`` is the target position (used by local-m attention only).
        """
        check_array(query, "query", (prepared.enc_hs.shape[0], self.query_size), self.dtype)
        context, alpha, cache = self.attend(query[:, None, :], prepared, np.array([t]))
        return context[:, 0], alpha[:, 0], cache  # (B, 1, ·) -> (B, ·)

    def step_backward(self, dcontext, cache, prepared: Keys, dalpha=None):
        """Backward of `step`: ``dquery (B, Hq)``.

        Key gradients go into ``prepared``; the weight gradients are
        complete once `prepare_backward` has run after the last step.
        """
        dalpha = None if dalpha is None else dalpha[:, None, :]
        dq = self.attend_backward(dcontext[:, None, :], cache, prepared, dalpha)
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
    Row-vector form of EQUATIONS.md §4::

        e_ij = v_a · tanh(s_{i-1} @ W_a + h_j @ U_a)      W_a (Hq, A), U_a (Hk, A), v_a (A,)
        α_ij = softmax_j(e_ij)      c_i = Σ_j α_ij h_j

    ``h_j @ U_a`` is computed once per source batch (`prepare`). Paper to
    code: s_{i-1} → ``queries``, h_j → ``enc_hs[:, j]``, e_ij →
    ``scores``, α_ij → ``alpha``, c_i → ``context``.

    References
    ----------
    .. [1] D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by
       Jointly Learning to Align and Translate", ICLR 2015.
    """

    def __init__(self, query_size, key_size, attn_size, *, rng, dtype=np.float64):
        super().__init__(query_size, key_size, rng=rng, dtype=dtype)
        self.attn_size = check_size(attn_size, "attn_size")
        self.add_param("W_a", self._init(self.query_size, self.query_size, self.attn_size))
        self.add_param("U_a", self._init(self.key_size, self.key_size, self.attn_size))
        self.add_param("v_a", self._init(self.attn_size, self.attn_size))

    def _project_keys(self, enc_hs):
        return matmul_last(enc_hs, self.params["U_a"])  # (B, S, Hk) @ (Hk, A) -> (B, S, A)

    def _project_keys_backward(self, dkeys, enc_hs):
        B, S, Hk = enc_hs.shape
        self.grads["U_a"] += enc_hs.reshape(B * S, Hk).T @ dkeys.reshape(B * S, -1)
        return matmul_last(dkeys, self.params["U_a"].T)

    def _scores(self, queries, prepared, steps):
        q_proj = matmul_last(queries, self.params["W_a"])  # (B, T, Hq) @ (Hq, A) -> (B, T, A)
        scores, cache = additive_score_forward(q_proj, prepared.keys, self.params["v_a"])
        return scores, (cache, queries)

    def _scores_backward(self, dscores, cache, prepared):
        add_cache, queries = cache
        dq_proj, dkeys, dv_a = additive_score_backward(dscores, add_cache)
        self.grads["v_a"] += dv_a
        prepared.dkeys += dkeys
        B, T, Hq = queries.shape
        # dW_a = queries^T dq_proj, one product over all steps in prepare_backward
        prepared.deferred.add(self._add_query_grad, queries.reshape(B * T, Hq),
                              dq_proj.reshape(B * T, -1))
        return matmul_last(dq_proj, self.params["W_a"].T)  # (B, T, A) @ (A, Hq)

    def _add_query_grad(self, queries, dq_proj):
        self.grads["W_a"] += queries.T @ dq_proj  # q_proj = queries @ W_a


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
    Row-vector form of EQUATIONS.md §5::

        dot         score(h_t, h̄_s) = h_t · h̄_s
        scaled_dot  score(h_t, h̄_s) = h_t · h̄_s / sqrt(Hk)         (Vaswani et al. 2017)
        general     score(h_t, h̄_s) = h_t · (h̄_s @ W_a.T)           W_a (Hq, Hk)
        concat      score(h_t, h̄_s) = v_a · tanh([h_t ; h̄_s] @ W_a)  W_a (Hq + Hk, A), v_a (A,)

    "concat" splits ``[h_t ; h̄_s] @ W_a`` into ``h_t @ W_a[:Hq] +
    h̄_s @ W_a[Hq:]``, the same additive form as Bahdanau's, so the key
    half is projected once per source batch. Without input feeding all
    T×S scores come from one batched product.

    References
    ----------
    .. [1] M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to
       Attention-based Neural Machine Translation", EMNLP 2015.
    """

    def __init__(self, query_size, key_size, *, score, attn_size=None, rng,
                 dtype=np.float64):
        super().__init__(query_size, key_size, rng=rng, dtype=dtype)
        check_options("score", score, LUONG_SCORES)
        self.score = score
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
            self.attn_size = check_size(Hq if attn_size is None else attn_size, "attn_size")
            self.add_param("W_a", self._init(Hq + Hk, Hq + Hk, self.attn_size))
            self.add_param("v_a", self._init(self.attn_size, self.attn_size))
        # A Python float: under NumPy 2's promotion rules an np.float64 scalar
        # would turn float32 scores into float64.
        self._scale = float(1.0 / np.sqrt(Hk)) if score == "scaled_dot" else 1.0

    def _project_keys(self, enc_hs):
        if self.score == "general":
            return matmul_last(enc_hs, self.params["W_a"].T)  # (B, S, Hk) @ (Hk, Hq) -> (B, S, Hq)
        if self.score == "concat":
            return matmul_last(enc_hs, self.params["W_a"][self.query_size:])  # (B, S, Hk) @ (Hk, A)
        return enc_hs

    def _project_keys_backward(self, dkeys, enc_hs):
        if self.score in ("dot", "scaled_dot"):
            return dkeys
        B, S, Hk = enc_hs.shape
        e2, dk2 = enc_hs.reshape(B * S, Hk), dkeys.reshape(B * S, -1)
        if self.score == "general":
            self.grads["W_a"] += dk2.T @ e2  # keys = enc W_a^T -> dW_a = dkeys^T enc
            return matmul_last(dkeys, self.params["W_a"])
        self.grads["W_a"][self.query_size:] += e2.T @ dk2
        return matmul_last(dkeys, self.params["W_a"][self.query_size:].T)

    def _scores(self, queries, prepared, steps):
        if self.score == "concat":
            q_proj = matmul_last(queries, self.params["W_a"][: self.query_size])  # (B, T, A)
            scores, cache = additive_score_forward(q_proj, prepared.keys, self.params["v_a"])
            return scores, (cache, queries)
        # (B, T, Hq) @ (B, Hq, S) -> (B, T, S): all scores in one batched product
        scores = queries @ prepared.keys.transpose(0, 2, 1)
        if self._scale != 1.0:
            scores *= self._scale
        return scores, queries

    def _scores_backward(self, dscores, cache, prepared):
        if self.score == "concat":
            add_cache, queries = cache
            dq_proj, dkeys, dv_a = additive_score_backward(dscores, add_cache)
            self.grads["v_a"] += dv_a
            prepared.dkeys += dkeys
            B, T, Hq = queries.shape
            W_q = self.params["W_a"][:Hq]
            # dW_a[:Hq] = queries^T dq_proj, in prepare_backward
            prepared.deferred.add(self._add_query_grad, queries.reshape(B * T, Hq),
                                  dq_proj.reshape(B * T, -1))
            return matmul_last(dq_proj, W_q.T)
        queries = cache
        if self._scale != 1.0:
            dscores = dscores * self._scale
        prepared.dkeys += dscores.transpose(0, 2, 1) @ queries  # (B, S, T) @ (B, T, Hq)
        return dscores @ prepared.keys  # (B, T, S) @ (B, S, Hq)

    def _add_query_grad(self, queries, dq_proj):
        # concat: q_proj = queries @ W_a[:Hq]
        self.grads["W_a"][: self.query_size] += queries.T @ dq_proj
