"""The Transformer lessons' exercises (lesson 14: multi-head attention; lesson 15:
layer normalisation).

`attention_mask` is graded by its outputs: which keys each query may read,
from the keys' lengths and the causal flag (docs/equations.md §7.1). It is
where a causal mask goes off by one, a mistake no backward can show: the
backward reads the mask only through the weights A, which are exactly 0
where the forward masked.

`multihead_attention_backward` is graded by the library's gradient checker
on a batched, padded cross-attention (B = 3: a softmax backward divided by
the batch size is exact at B = 1 and wrong here). The forward is the
library's `tinyattn.multihead` pieces; the known mistakes below predict
what a backward with each of them returns.

`layer_norm_backward` is graded by the gradient checker on a (B, T, d)
input with a random gain γ (standard normal, never all 1: with γ = 1, or
any γ equal across features, a gain applied outside the means is exact)
and ε = 0.1: with PyTorch's 1e-5 and rows of variance near 1, ε outside
the square root changes dx by about 1e-5 of its largest entry, the
diagnosis's own resolution.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._outputs import OutputExercise
from tinyattn.exercises._registry import Exercise
from tinyattn.functional import masked_softmax_forward
from tinyattn.layernorm import LayerNorm
from tinyattn.multihead import attention_mask as _library_mask
from tinyattn.multihead import merge_heads, split_heads

# ----- lesson 14: the attention mask (graded by outputs) ---------------------------------


def _mask_cases(rng):
    del rng  # fixed cases: every mistake shows on one of them
    return [
        ("cross-attention, key_lengths [5, 3, 1], T = 4, S = 5, causal=False",
         (np.array([5, 3, 1]), 4, 5, False)),
        ("causal self-attention, no padding: key_lengths [4, 4], T = S = 4",
         (np.array([4, 4]), 4, 4, True)),
        ("causal self-attention, key_lengths [4, 2, 3], T = S = 4",
         (np.array([4, 2, 3]), 4, 4, True)),
    ]


def _mask_solution(key_lengths, T, S, causal=False):
    lengths = np.asarray(key_lengths)
    allowed = _library_mask(lengths, len(lengths), T, S, causal)  # (B, 1, T or 1, S)
    return np.broadcast_to(allowed[:, 0], (len(lengths), T, S)).copy()


def _mask_variant(*, diagonal=0, causal_rows=False, on_queries=False, inverted=False,
                  lengths_inclusive=False, causal_drops_padding=False):
    """An attention mask written with one mistake (the names say which)."""
    def predict(key_lengths, T, S, causal=False):
        lengths = np.asarray(key_lengths)[:, None, None]  # (B, 1, 1)
        if on_queries:
            pad = np.arange(T)[None, :, None] < lengths  # (B, T, 1): the rows
        elif lengths_inclusive:
            pad = np.arange(S)[None, None, :] <= lengths
        else:
            pad = np.arange(S)[None, None, :] < lengths  # (B, 1, S): the columns
        allowed = np.broadcast_to(pad, (len(lengths), T, S))
        if causal:
            i, j = np.arange(T)[:, None], np.arange(S)[None, :]
            tri = (j >= i) if causal_rows else (j <= i + diagonal)
            allowed = np.broadcast_to(tri, allowed.shape) if causal_drops_padding \
                else allowed & tri
        return ~allowed if inverted else allowed.copy()
    return predict


def attention_mask(key_lengths, T, S, causal=False):
    """Which keys each query may read, as one bool array.

    key_lengths (B,) int: example b has key_lengths[b] real keys (positions 0 .. L_b − 1)
    and pads after them; T queries, S keys; causal (T = S): query i may also read only
    keys j <= i (itself and the past).
    Returns ``allowed (B, T, S)`` bool: allowed[b, i, j] is True where query i of example b
    may read key j (tinyattn's convention: True = may read).
    """
    raise NotImplementedError  # your code here


ATTENTION_MASK = OutputExercise(
    "attention_mask",
    "allowed = attention_mask(key_lengths, T, S, causal=False)",
    _mask_solution,
    _mask_cases,
    ("allowed",),
    "docs/equations.md §7.1: allowed[b, i, j] = (j < key_lengths[b]) and, when causal, "
    "(j <= i); Vaswani et al. 2017 §3.2.3",
    [
        Bug("causal mask off by one: j < i instead of j <= i",
            "query i may read keys 0 .. i, itself included: the diagonal is allowed "
            "(np.tri(T, dtype=bool), or np.tril with k=0). With j < i no query reads its "
            "own token, and query 0 has nothing to read at all: its softmax row is 0/0",
            _mask_variant(diagonal=-1)),
        Bug("causal mask the wrong way round: j >= i (the future, not the past)",
            "a decoder reads what it has already produced: keys j <= i, the lower "
            "triangle (rows are queries i, columns keys j)",
            _mask_variant(causal_rows=True)),
        Bug("the padding masks queries (rows) instead of keys (columns)",
            "a pad *key* must get weight 0, so the test j < key_lengths[b] is on the last "
            "axis: np.arange(S)[None, None, :] < key_lengths[:, None, None]",
            _mask_variant(on_queries=True)),
        Bug("the first pad counted as real: j <= key_lengths[b]",
            "example b's real keys are positions 0 .. key_lengths[b] − 1: the test is "
            "j < key_lengths[b]",
            _mask_variant(lengths_inclusive=True)),
        Bug("with causal=True the padding is forgotten",
            "the causal mask is combined with the padding mask (logical and), not "
            "used instead of it: a padded key stays masked in a causal layer too",
            _mask_variant(causal_drops_padding=True)),
        Bug("True where masked (PyTorch's convention for a bool attn_mask)",
            "PyTorch's bool attn_mask and key_padding_mask are True where a key may NOT be "
            "read; tinyattn's allowed is True where it MAY: drop the ~ (or the logical not)",
            _mask_variant(inverted=True)),
    ],
    starter=attention_mask,
)

# ----- lesson 14: the backward of multi-head attention (gradient checker) ----------------

N_HEADS = 2
_B, _T, _S, _D = 3, 4, 5, 6  # d = D / n = 3; B = 3, never 1: a division by B must show
KEY_LENGTHS = np.array([5, 3, 2])  # example 0 unpadded, 1 and 2 with 2 and 3 pad keys


def multihead_attention_forward(query, key, value, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o,
                                *, n_heads=N_HEADS, key_lengths=None, causal=False):
    """Multi-head attention, the library's pieces; ``(out (B, T, D), cache)``."""
    B, T, D = query.shape
    S = key.shape[1]
    Q = split_heads(query @ W_q + b_q, n_heads)  # (B, n, T, d)
    K = split_heads(key @ W_k + b_k, n_heads)  # (B, n, S, d)
    V = split_heads(value @ W_v + b_v, n_heads)
    allowed = _library_mask(key_lengths, B, T, S, causal)
    A, _ = masked_softmax_forward(Q @ K.transpose(0, 1, 3, 2) / np.sqrt(D // n_heads), allowed)
    merged = merge_heads(A @ V)  # (B, T, D)
    return merged @ W_o + b_o, (query, key, value, W_q, W_k, W_v, W_o, Q, K, V, A, merged)


def _backward(dout, cache, *, batch_div=False, scale=True, split_by_reshape=False,
              merge_by_reshape=False, row_sum=True, w_transposed=True):
    """The backward, or, with a flag changed, the backward with one known mistake."""
    query, key, value, W_q, W_k, W_v, W_o, Q, K, V, A, merged = cache
    B, n, T, d = Q.shape
    D = n * d
    dW_o = merged.reshape(-1, D).T @ dout.reshape(-1, D)
    db_o = dout.sum(axis=(0, 1))
    dmerged = dout @ W_o.T  # (B, T, D)
    if split_by_reshape:
        dH = dmerged.reshape(B, n, T, d)
    else:
        dH = dmerged.reshape(B, T, n, d).transpose(0, 2, 1, 3)
    dV = A.transpose(0, 1, 3, 2) @ dH  # (B, n, S, d)
    dA = dH @ V.transpose(0, 1, 3, 2)  # (B, n, T, S)
    dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True)) if row_sum else A * dA
    if batch_div:
        dS = dS / B
    c = 1.0 / np.sqrt(d) if scale else 1.0
    dQ = dS @ K * c
    dK = dS.transpose(0, 1, 3, 2) @ Q * c

    def merge(g):  # (B, n, L, d) -> (B, L, D)
        L = g.shape[2]
        return g.reshape(B, L, D) if merge_by_reshape else g.transpose(0, 2, 1, 3).reshape(B, L, D)

    grads = []
    for x, g, W in ((query, dQ, W_q), (key, dK, W_k), (value, dV, W_v)):
        dY = merge(g)
        grads.append((dY @ (W.T if w_transposed else W),
                      x.reshape(-1, D).T @ dY.reshape(-1, D), dY.sum(axis=(0, 1))))
    (dq, dW_q, db_q), (dk, dW_k, db_k), (dv, dW_v, db_v) = grads
    return dq, dk, dv, dW_q, dW_k, dW_v, dW_o, db_q, db_k, db_v, db_o


def multihead_attention_backward(dout, cache):
    """Gradients of multi-head attention (docs/equations.md §7.1).

    dout (B, T, D); cache = ``(query (B, T, D), key (B, S, D), value (B, S, D),
    W_q, W_k, W_v, W_o (D, D), Q (B, n, T, d), K (B, n, S, d), V (B, n, S, d),
    A (B, n, T, S), merged (B, T, D))``. The forward, with split (B, L, D) -> (B, L, n, d)
    -> (B, n, L, d) and merge its inverse:
        Q = split(query W_q + b_q), K = split(key W_k + b_k), V = split(value W_v + b_v)
        A = masked softmax(Q Kᵀ / √d) over the keys;  merged = merge(A V)
        out = merged W_o + b_o
    Returns ``dquery, dkey, dvalue`` (the inputs' shapes), ``dW_q, dW_k, dW_v, dW_o``
    (D, D) and ``db_q, db_k, db_v, db_o`` (D,), in that order.
    """
    query, key, value, W_q, W_k, W_v, W_o, Q, K, V, A, merged = cache
    raise NotImplementedError  # your code here


_WEIGHTS = {f"W_{p}": (_D, _D) for p in "qkvo"}
_BIASES = {f"b_{p}": (_D,) for p in "qkvo"}

MULTIHEAD_BACKWARD = Exercise(
    "multihead_attention_backward",
    "dquery, dkey, dvalue, dW_q, dW_k, dW_v, dW_o, db_q, db_k, db_v, db_o = "
    "multihead_attention_backward(dout, cache)",
    partial(multihead_attention_forward, key_lengths=KEY_LENGTHS),
    {"query": (_B, _T, _D), "key": (_B, _S, _D), "value": (_B, _S, _D), **_WEIGHTS, **_BIASES},
    "docs/equations.md §7.1; Vaswani et al. 2017 §3.2.2: head_h = softmax(Q_h K_hᵀ / √d) V_h, "
    "out = [head_1 ; … ; head_n] W_o + b_o",
    [
        Bug("the softmax backward divided by the batch size",
            "dS = A ⊙ (dA − rowsum(dA ⊙ A)) is computed row by row and nothing in it depends "
            "on B: a division by B (a bug of a public NumPy Transformer) is exact at B = 1 and "
            "wrong at every other batch size. Leave any mean over the batch to the loss",
            partial(_backward, batch_div=True)),
        Bug("the 1/√d missing from dQ and dK",
            "S = Q Kᵀ / √d: both dQ = dS K / √d and dK = dSᵀ Q / √d keep the factor "
            "(d = D / n, the size of one head)",
            partial(_backward, scale=False)),
        Bug("heads split and merged with reshape alone, without the transpose",
            "the forward's split is reshape (B, L, D) -> (B, L, n, d), then transpose to "
            "(B, n, L, d); undo exactly that: dH = (dout W_oᵀ).reshape(B, T, n, d)"
            ".transpose(0, 2, 1, 3), and transpose back to (B, L, n, d) before reshaping "
            "dQ, dK, dV to (B, L, D)",
            partial(_backward, split_by_reshape=True, merge_by_reshape=True)),
        Bug("d(merged) split into heads with reshape alone, without the transpose",
            "merged = merge(A V) put position t's heads side by side in row t: "
            "dH = (dout W_oᵀ).reshape(B, T, n, d).transpose(0, 2, 1, 3)",
            partial(_backward, split_by_reshape=True)),
        Bug("dQ, dK, dV merged back with reshape alone, without the transpose",
            "head h's gradient goes back to columns h·d .. h·d + d − 1 of row t: "
            "dQ.transpose(0, 2, 1, 3).reshape(B, T, D) (the forward's split, undone)",
            partial(_backward, merge_by_reshape=True)),
        Bug("softmax backward without the row sum",
            "dS = A ⊙ (dA − Σ_k dA_k A_k) row by row; A ⊙ dA leaves out the second term "
            "(the Jacobian of a softmax row is diag(a) − a aᵀ)",
            partial(_backward, row_sum=False)),
        Bug("W not transposed in dquery, dkey, dvalue",
            "Y = x W gives dx = dY Wᵀ; the weights are square (D, D), so the shapes "
            "cannot tell you",
            partial(_backward, w_transposed=False)),
    ],
    starter=multihead_attention_backward,
    solution=_backward,
)

# ----- lesson 15: the backward of layer normalisation (gradient checker) ------------------

_LN_T, _LN_D = 4, 6  # x (3, 4, 6): B, T and d all different
LN_EPS = 0.1  # large enough that where ε sits shows (module docstring)


def layer_norm_forward(x, gamma, beta, *, eps=LN_EPS):
    """``y = γ ⊙ (x − μ) / √(σ² + ε) + β`` over the last axis, by the library's
    `LayerNorm.normalize`; the cache holds the inputs only: ``(x, gamma, beta, eps)``."""
    xhat, _ = LayerNorm(x.shape[-1], eps=eps).normalize(x)
    return xhat * gamma + beta, (x, gamma, beta, eps)


def _ln_backward(dy, cache, *, gain_outside=False, ddof=0, eps_where="inside",
                 derived=False, shift=True, scale=True, last_row=False):
    """The backward, or, with a flag changed, the backward with one known mistake.

    ``ddof=1`` or ``eps_where`` other than "inside" put the wrong σ into x̂ and
    1/√(σ² + ε) of the right formula; with ``derived`` as well, dx is the exact
    gradient of the wrongly normalised forward (whose scale term differs)."""
    x, gamma, beta, eps = cache
    d = x.shape[-1]
    xc = x - x.mean(axis=-1, keepdims=True)
    var = np.sum(xc * xc, axis=-1, keepdims=True) / (d - ddof)
    sigma = np.sqrt(var)
    rstd = {"inside": 1.0 / np.sqrt(var + eps), "outside": 1.0 / (sigma + eps),
            "missing": 1.0 / sigma}[eps_where]
    xhat = xc * rstd
    g = dy if gain_outside else dy * gamma
    dx = g.copy()
    if shift:
        dx -= g.mean(axis=-1, keepdims=True)
    if scale:
        factor = 1.0
        if derived:  # d/(d − 1) from ∂σ²/∂x; (σ + ε)/σ from ∂(1/(σ + ε))/∂σ
            factor = d / (d - ddof) * ((sigma + eps) / sigma if eps_where == "outside" else 1)
        dx -= factor * xhat * np.mean(g * xhat, axis=-1, keepdims=True)
    dx = dx * rstd * (gamma if gain_outside else 1.0)
    rows = (dy[-1], xhat[-1]) if last_row else (dy, xhat)  # the last example's rows only
    dgamma = np.sum(rows[0] * rows[1], axis=tuple(range(rows[0].ndim - 1)))
    dbeta = np.sum(rows[0], axis=tuple(range(rows[0].ndim - 1)))
    return dx, dgamma, dbeta


def layer_norm_backward(dy, cache):
    """Gradients of layer normalisation over the last axis (docs/equations.md §7.3).

    dy (B, T, d); cache = ``(x (B, T, d), gamma (d,), beta (d,), eps)``: the inputs only,
    so recompute what you need exactly as the forward did:
        μ = mean(x), σ² = mean((x − μ)²)   over the last axis (biased: divided by d)
        x̂ = (x − μ) / √(σ² + ε);   y = γ ⊙ x̂ + β
    Returns ``dx (B, T, d), dgamma (d,), dbeta (d,)``.
    """
    x, gamma, beta, eps = cache
    raise NotImplementedError  # your code here


LAYER_NORM_BACKWARD = Exercise(
    "layer_norm_backward",
    "dx, dgamma, dbeta = layer_norm_backward(dy, cache)",
    layer_norm_forward,
    {"x": (_B, _LN_T, _LN_D), "gamma": (_LN_D,), "beta": (_LN_D,)},
    "docs/equations.md §7.3: g = γ ⊙ dy, dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε), "
    "dγ = Σ dy ⊙ x̂, dβ = Σ dy; Ba et al. 2016",
    [
        Bug("the gain γ applied outside the means (g = dy, times γ at the end)",
            "y = γ ⊙ x̂ + β: the gradient reaches x̂ as g = γ ⊙ dy, and both means act on "
            "that g: dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε). γ cannot be pulled "
            "out of a mean over the features unless it is the same for every feature, which "
            "is why a check at γ = 1 (the initial gain) passes; a public NumPy Transformer "
            "has this bug, and with a random gain its dx is tens of percent off",
            partial(_ln_backward, gain_outside=True)),
        Bug("the unbiased variance (d − 1) in x̂ and 1/√(σ² + ε)",
            "layer normalisation uses the biased variance σ² = mean((x − μ)²), divided "
            "by d (np.var's default, ddof=0; torch.var and torch.std default to d − 1)",
            partial(_ln_backward, ddof=1)),
        Bug("the derivative of a layer norm with the unbiased variance (d − 1)",
            "your dx is right for σ² = Σ (x − μ)² / (d − 1), but the forward divides by d "
            "(the biased variance, np.var's default); so must your σ² and its derivative",
            partial(_ln_backward, ddof=1, derived=True)),
        Bug("ε outside the square root: 1/(σ + ε) in x̂ and dx",
            "the forward divides by √(σ² + ε); the backward must use the same number",
            partial(_ln_backward, eps_where="outside")),
        Bug("the derivative of a layer norm with ε outside the square root",
            "your dx is right for x̂ = (x − μ) / (σ + ε), but the forward divides by "
            "√(σ² + ε); differentiate that: the backward must use the same number",
            partial(_ln_backward, eps_where="outside", derived=True)),
        Bug("ε left out: 1/σ instead of 1/√(σ² + ε)",
            "the forward divides by √(σ² + ε); the backward must use the same number",
            partial(_ln_backward, eps_where="missing")),
        Bug("the shift term − mean(g) missing from dx",
            "μ depends on every x_k: shifting x by a constant changes nothing, so dx "
            "sums to 0 over the features; subtract mean(g)",
            partial(_ln_backward, shift=False)),
        Bug("the scale term − x̂ ⊙ mean(g ⊙ x̂) missing from dx",
            "σ² depends on every x_k: stretching x about its mean changes x̂ only "
            "through ε, so dx has (almost) no component along x̂; subtract "
            "x̂ ⊙ mean(g ⊙ x̂)",
            partial(_ln_backward, scale=False)),
        Bug("dgamma and dbeta from the last example only",
            "γ and β are used at every position of every example: dγ = Σ dy ⊙ x̂ and "
            "dβ = Σ dy over all B·T rows (a loop over b must add with +=, not assign)",
            partial(_ln_backward, last_row=True)),
    ],
    starter=layer_norm_backward,
    solution=_ln_backward,
)

EXERCISES = [ATTENTION_MASK, MULTIHEAD_BACKWARD, LAYER_NORM_BACKWARD]
