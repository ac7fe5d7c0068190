"""Lesson 04's exercise: the backward of the bridge and the plain decoder.

The forward is the one the lesson teaches (docs/equations.md §2), composed
from the library's pieces exactly as `tinyattn.bridge` and
`tinyattn.decoders.PlainDecoder` compute it::

    s_0      = tanh(c @ W_s + b_s)                     the bridge
    s_i      = GRU(s_{i-1}, [E y_{i-1} ; c])           i = 1..T, c at every step
    logits_i = [s_i ; c ; E y_{i-1}] @ W_o + b_o       the output layer

The learner writes its backward; the gradient checker grades it. The GRU's
own weights are fixed (their gradients are lesson 02's exercise): the
learner calls `tinyattn.gru.gru_step_backward` for each step and returns
the gradients of ``emb, c, W_s, b_s, W_o, b_o``. The context ``c`` reaches
the logits by three paths, the output layer and the cell input at every
step and the bridge once, so its gradient is the sum of all of them.
"""

from __future__ import annotations

import numpy as np

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._registry import Exercise
from tinyattn.gru import gru_step_backward, gru_step_forward

# B examples, T steps, E embedding, C = 2H context, Hd decoder state, V vocabulary.
# The bridge is square as in the library (Hd = C); every other size differs, so
# that a transposed product fails on its shape or, for W_s, on its values.
_B, _T, _E, _C, _V = 2, 3, 4, 6, 7
_HD = _C


def _gru_weights():
    """The decoder GRU's weights, fixed: W_x (E + C, 3Hd), W_h (Hd, 3Hd), b_x, b_h."""
    rng = np.random.default_rng(2024)
    return (0.5 * rng.standard_normal((_E + _C, 3 * _HD)),
            0.5 * rng.standard_normal((_HD, 3 * _HD)),
            0.1 * rng.standard_normal(3 * _HD), 0.1 * rng.standard_normal(3 * _HD))


GRU_WEIGHTS = _gru_weights()


def plain_decoder_forward(emb, c, W_s, b_s, W_o, b_o, gru_weights=GRU_WEIGHTS):
    """Bridge and plain decoder under teacher forcing: ``logits (B, T, V)``, cache.

    cache = ``(emb, c, s0, W_s, W_o, states, steps)``: ``states (B, T, Hd)``
    holds s_1..s_T and ``steps`` the T caches of `gru_step_forward`.
    """
    W_x, W_h, b_x, b_h = gru_weights
    s0 = np.tanh(c @ W_s + b_s)  # (B, C) @ (C, Hd) -> (B, Hd)
    s, states, steps = s0, [], []
    for i in range(emb.shape[1]):
        s, step = gru_step_forward(np.concatenate([emb[:, i], c], axis=1), s, W_x, W_h, b_x, b_h)
        states.append(s)
        steps.append(step)
    states = np.stack(states, axis=1)  # (B, T, Hd)
    c_all = np.broadcast_to(c[:, None, :], states.shape[:2] + c.shape[1:])
    logits = np.concatenate([states, c_all, emb], axis=2) @ W_o + b_o  # (B, T, V)
    return logits, (emb, c, s0, W_s, W_o, states, steps)


def _backward(dlogits, cache, *, tanh_prime=True, paths=("out", "cell", "bridge"),
              steps_summed=True, order="ec", carry=True, W_s_transposed=True):
    """The backward, and each known mistake as a departure from it."""
    emb, c, s0, W_s, W_o, states, steps = cache
    B, T, E = emb.shape
    Hd, C = states.shape[2], c.shape[1]
    c_all = np.broadcast_to(c[:, None, :], (B, T, C))
    feats = np.concatenate([states, c_all, emb], axis=2)  # (B, T, Hd + C + E)
    dW_o = np.einsum("btf,btv->fv", feats, dlogits)
    db_o = dlogits.sum(axis=(0, 1))
    dfeat = dlogits @ W_o.T  # (B, T, Hd + C + E)
    demb = dfeat[..., Hd + C:].copy()
    dc = np.zeros_like(c)
    ds_next = np.zeros_like(s0)
    for i in reversed(range(T)):
        counts = steps_summed or i == T - 1
        if "out" in paths and counts:
            dc += dfeat[:, i, Hd:Hd + C]
        dx, dh_prev = gru_step_backward(dfeat[:, i, :Hd] + ds_next, steps[i])[:2]
        if order == "ec":
            demb[:, i] += dx[:, :E]
            dx_c = dx[:, E:]
        else:  # read as [c ; E y]
            dx_c = dx[:, :C]
            demb[:, i] += dx[:, C:]
        if "cell" in paths and counts:
            dc += dx_c
        # without the carry, step i reads only its output share; the bridge still
        # gets what step 1 sent back
        ds_next = dh_prev if carry or i == 0 else np.zeros_like(dh_prev)
    dz = ds_next * (1.0 - s0 * s0) if tanh_prime else ds_next
    dW_s, db_s = c.T @ dz, dz.sum(axis=0)
    if "bridge" in paths:
        dc += dz @ (W_s.T if W_s_transposed else W_s)
    return demb, dc, dW_s, db_s, dW_o, db_o


def solution(dlogits, cache):
    """The backward (the exercise's solution); the tests check it against
    `PlainDecoder.backward` and `tinyattn.bridge.bridge_backward`."""
    return _backward(dlogits, cache)


def _variant(**kw):
    def predict(dlogits, cache):
        return _backward(dlogits, cache, **kw)
    return predict


def plain_decoder_backward(dlogits, cache):
    """Backward of the bridge and the plain decoder (docs/equations.md §2).

    dlogits (B, T, V). cache = (emb, c, s0, W_s, W_o, states, steps):
    emb (B, T, E) the embeddings of y_0..y_{T-1}, c (B, C), s0 (B, Hd),
    W_s (C, Hd), W_o (Hd + C + E, V), states (B, T, Hd) = s_1..s_T, steps
    the T caches of gru_step_forward (give steps[i] to
    tinyattn.gru.gru_step_backward, whose first two returns are dx (B, E + C)
    and dh_prev (B, Hd)).
    Forward: s_0 = tanh(c W_s + b_s); s_i = GRU(s_{i-1}, [E y_{i-1} ; c]);
    logits_i = [s_i ; c ; E y_{i-1}] W_o + b_o.
    Returns demb, dc, dW_s, db_s, dW_o, db_o, each the shape of its array.
    """
    raise NotImplementedError  # your code here


PLAIN_DECODER = Exercise(
    "plain_decoder_backward",
    "demb, dc, dW_s, db_s, dW_o, db_o = plain_decoder_backward(dlogits, cache)",
    plain_decoder_forward,
    {"emb": (_B, _T, _E), "c": (_B, _C), "W_s": (_C, _HD), "b_s": (_HD,),
     "W_o": (_HD + _C + _E, _V), "b_o": (_V,)},
    "docs/equations.md §2: s_0 = tanh(c W_s + b_s), s_i = f(s_{i-1}, [E y_{i-1} ; c]), "
    "logits_i = [s_i ; c ; E y_{i-1}] W_o + b_o; c is used at every step and by the bridge",
    [
        Bug("the bridge's tanh' is missing",
            "s_0 = tanh(z), z = c W_s + b_s: dz = ds_0 ⊙ (1 − s_0²) before dW_s = cᵀ dz, "
            "db_s and the bridge's share of dc = dz W_sᵀ",
            _variant(tanh_prime=False)),
        Bug("dc is missing the output layer's path",
            "c is one of the output layer's inputs [s_i ; c ; E y_{i-1}] at every step: add "
            "the middle block of dfeat_i = dlogits_i W_oᵀ, summed over i",
            _variant(paths=("cell", "bridge"))),
        Bug("dc is missing the cell-input path",
            "c is part of the GRU's input [E y_{i-1} ; c] at every step: add the last C "
            "columns of each step's dx, summed over i",
            _variant(paths=("out", "bridge"))),
        Bug("dc is missing the bridge's path",
            "s_0 = tanh(c W_s + b_s) depends on c: after the loop, dc += dz W_sᵀ with "
            "dz = ds_0 ⊙ (1 − s_0²)",
            _variant(paths=("out", "cell"))),
        Bug("dc from the last step only",
            "the same c is used at every step, so every step's share adds: sum over "
            "i = 1..T, not only i = T",
            _variant(steps_summed=False)),
        Bug("the GRU input read as [c ; E y] instead of [E y ; c]",
            "the cell's input is concatenate([E y_{i-1}, c]): its gradient dx splits into "
            "dx[:, :E] for the embedding and dx[:, E:] for c",
            _variant(order="ce")),
        Bug("the state gradient is not carried back between steps (dropped dh_next)",
            "s_{i-1} reaches the loss through step i: add step i's dh_prev to the "
            "gradient of s_{i-1} from the output layer, and what reaches s_0 goes "
            "into the bridge",
            _variant(carry=False)),
        Bug("W_s not transposed in the bridge's share of dc",
            "z = c W_s + b_s gives dc = dz W_sᵀ (W_s is square here, C = Hd, so the "
            "shapes cannot tell you)",
            _variant(W_s_transposed=False)),
    ],
    starter=plain_decoder_backward,
    solution=solution,
)

EXERCISES = [PLAIN_DECODER]
