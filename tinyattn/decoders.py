"""The three decoders: one context vector (Cho), Bahdanau, Luong.

Every decoder has the same interface, so `tinyattn.Seq2Seq` never asks
which one it holds:

- ``memory = decoder.prepare(enc_hs, src_mask, c)``: the encoder side as
  this decoder reads it (a `tinyattn.memory.Memory`), once per batch;
- ``logits, alphas = decoder(emb, memory, state0, rows=None)``: teacher
  forcing, ``emb (B, T, E)`` the embeddings of ``y_{i-1}``, ``logits (B,
  T, V)`` (or ``(N, V)`` at the N True entries of ``rows (B, T)``: the
  output layer skips padded positions), ``alphas (B, T, S)`` (None without
  attention);
- ``demb, dmemory, dstate0 = decoder.backward(dlogits)`` (``dlogits`` shaped
  as the logits), ``dmemory`` a
  `tinyattn.memory.MemoryGrad`;
- ``carry = decoder.init_carry(state0)`` and ``logits_t, carry, alpha =
  decoder.step(emb_t, memory, carry, t)`` for inference, one token at a
  time.

``state`` is a (B, Hd) array for a GRU and a pair ``(h, c)`` for an LSTM;
with stacked layers (``Seq2Seq(num_layers=L)``, the cell a
`tinyattn.stacked.StackedRNN`) a `tinyattn.recurrent.StackState` of L
such states. The query and the output features always read
``hidden(state)``: the ``h``, of the top layer when stacked.

Everything that does not depend on the previous step runs outside the
time loop: the embeddings, the key projection (in ``prepare``), and the
output layer over all steps at once. Where nothing depends on the previous
step at all (no attention; Luong without input feeding) the decoder RNN
runs as one vectorised sequence call.
"""

from __future__ import annotations

import numpy as np

from tinyattn.functional import matmul_last
from tinyattn.layers import Dropout, Linear
from tinyattn.memory import Memory, MemoryGrad
from tinyattn.module import Module
from tinyattn.recurrent import (  # hidden & co. lived here once: still importable from here
    DeferredGrads,
    add_hidden,
    hidden,
    zeros_like_state,
)
from tinyattn.stacked import StackedRNN


def inference_step(cell, x_t, state):
    """The new state after one inference step of a decoder's cell (``decode_step``).

    Like the rest of the inference path (``decoder.step``), never any dropout,
    whatever the mode: a stack (`tinyattn.stacked.StackedRNN`) is stepped with
    ``dropout=False``, so decoding in train mode neither drops units nor draws
    from the dropout generator.
    """
    if isinstance(cell, StackedRNN):
        return cell.step(x_t, state, dropout=False)[0]
    return cell.step(x_t, state)[0]


class Decoder(Module):
    """What every decoder shares: the output layer over the features of all steps.

    ``rows`` (a bool ``(B, T)`` mask, `tinyattn.Seq2Seq` passes the real
    target tokens) restricts it to the N rows the loss reads: ``logits (N,
    V)`` instead of ``(B, T, V)``, the same numbers without the products for
    padded positions (in a batch of sentences, 20–30 % of the target
    positions are pads, and the output layer is the largest product of a
    step). Without ``rows`` the logits are ``(B, T, V)``.
    """

    def _logits(self, feats, rows):
        """``out(dropout(features))`` at every step, or at the ``rows`` only."""
        self._out_rows = (rows, feats.shape)
        if rows is not None:
            feats = feats[rows]  # (N, F): the real tokens, in row-major order
        return self.out(self.out_drop(feats))

    def _logits_backward(self, dlogits):
        """The features' gradient ``(B, T, F)`` (0 at rows the loss did not read)."""
        rows, shape = self._out_rows
        dfeat = self.out_drop.backward(self.out.backward(dlogits))
        if rows is None:
            return dfeat
        full = np.zeros(shape, dfeat.dtype)
        full[rows] = dfeat
        return full


class PlainDecoder(Decoder):
    """Seq2seq with one context vector (Cho et al. 2014; docs/equations.md §2).

    ::

        s_i = f(s_{i-1}, [E y_{i-1} ; c])              c = the encoder's final state
        logits_i = [s_i ; c ; E y_{i-1}] @ W_o + b_o   (Cho's g(s_i, y_{i-1}, c))

    ``c`` is the same at every step, so the RNN runs as one sequence call.
    """

    def __init__(self, cell, out: Linear, emb_size: int, ctx_size: int, *, dropout=0.0):
        super().__init__(cell.dtype)
        self.cell, self.out = cell, out
        self.out_drop = Dropout(dropout, dtype=cell.dtype)  # on the features, before out
        self.E, self.C = emb_size, ctx_size

    def prepare(self, enc_hs, src_mask, c):
        """The memory: this decoder reads only the context ``c (B, Hk)``."""
        return Memory(enc_hs, src_mask, context=c)

    def forward(self, emb, memory, state0, rows=None):
        """Teacher forcing: ``logits (B, T, V)`` (``(N, V)`` at ``rows``, see
        `Decoder`) and None (no attention weights)."""
        B, T, _ = emb.shape
        # the same c at every step: (B, C) -> (B, T, C), a broadcast view
        c_all = np.broadcast_to(memory.context[:, None, :], (B, T, self.C))
        hs, _ = self.cell(np.concatenate([emb, c_all], axis=2), state0)  # one sequence call
        logits = self._logits(np.concatenate([hs, c_all, emb], axis=2), rows)
        self._cache = hs.shape[2]
        return logits, None

    def backward(self, dlogits):
        """``demb (B, T, E)``, ``MemoryGrad(None, dc)``, ``dstate0``."""
        Hd = self._take_cache()
        dfeat = self._logits_backward(dlogits)  # (B, T, Hd + C + E)
        dhs, dc_out, demb = np.split(dfeat, [Hd, Hd + self.C], axis=2)
        dx, dstate0 = self.cell.backward(np.ascontiguousarray(dhs))  # dx (B, T, E + C)
        demb = demb + dx[..., : self.E]
        dc = dc_out.sum(axis=1) + dx[..., self.E:].sum(axis=1)  # c was used at every step
        return demb, MemoryGrad(None, dc), dstate0

    positions = None  # no attention, no window centres

    def init_carry(self, state0):
        """The inference carry: the state itself."""
        return state0

    def step(self, emb_t, memory, carry, t):
        """One inference step: ``logits_t (B, V)``, the new state, None."""
        c = memory.context
        state = inference_step(self.cell, np.concatenate([emb_t, c], axis=1), carry)
        feat = np.concatenate([hidden(state), c, emb_t], axis=1)  # (B, Hd + C + E)
        return self.out.apply(feat), state, None


class AttentionDecoder(Decoder):
    """What the two attention decoders share: the memory is ``self.attn``'s."""

    @property
    def positions(self):
        """Local attention's window centres p_t (B, T) of the last forward, else None."""
        return self.attn.positions

    def prepare(self, enc_hs, src_mask, c):
        """The memory: annotations and their keys (e.g. ``h_j @ U_a``), projected once;
        ``c`` is not read."""
        return self.attn.prepare(enc_hs, src_mask)


class BahdanauDecoder(AttentionDecoder):
    """Bahdanau et al. 2015 (docs/equations.md §4): attend with s_{i-1}, then step.

    ::

        c_i = attention(s_{i-1}, h_1..S)
        s_i = f(s_{i-1}, [E y_{i-1} ; c_i])
        logits_i = [s_i ; c_i ; E y_{i-1}] @ W_o + b_o
    """

    def __init__(self, cell, attn, out: Linear, emb_size: int, *, dropout=0.0):
        super().__init__(cell.dtype)
        self.attn, self.cell, self.out = attn, cell, out
        self.out_drop = Dropout(dropout, dtype=cell.dtype)  # on the features, before out
        self.E = emb_size

    def forward(self, emb, memory, state0, rows=None):
        """Teacher forcing: ``logits (B, T, V)`` (``(N, V)`` at ``rows``, see
        `Decoder`), ``alphas (B, T, S)``."""
        B, T, _ = emb.shape
        state, steps = state0, []
        hs, ctxs, alphas = [], [], []
        for t in range(T):
            # attend with the previous state s_{i-1}, then step the cell on [E y_{i-1} ; c_i]
            ctx, alpha, a_cache = self.attn.step(hidden(state), memory, t)
            state, c_cache = self.cell.step(np.concatenate([emb[:, t], ctx], axis=1), state)
            steps.append((a_cache, c_cache))
            hs.append(hidden(state))
            ctxs.append(ctx)
            alphas.append(alpha)
        hs, ctxs = np.stack(hs, axis=1), np.stack(ctxs, axis=1)  # (B, T, Hd), (B, T, Hk)
        # the output layer for all steps at once: [s_i ; c_i ; E y_{i-1}] @ W_o + b_o
        logits = self._logits(np.concatenate([hs, ctxs, emb], axis=2), rows)
        self._cache = (steps, memory, hs.shape[2], ctxs.shape[2], state0)
        return logits, np.stack(alphas, axis=1)

    def backward(self, dlogits):
        """``demb (B, T, E)``, ``MemoryGrad(denc_hs, None)``, ``dstate0``."""
        steps, memory, Hd, Hk, state0 = self._take_cache()
        dfeat = self._logits_backward(dlogits)  # (B, T, Hd + Hk + E)
        dhs, dctxs, demb = np.split(dfeat, [Hd, Hd + Hk], axis=2)
        demb = demb.copy()
        dstate = zeros_like_state(state0)
        defer = DeferredGrads()  # the cell's weight gradients: one product after the loop
        for t in reversed(range(len(steps))):
            a_cache, c_cache = steps[t]
            dstate = add_hidden(dstate, dhs[:, t])  # s_i feeds the output and step i+1
            dx, dstate = self.cell.step_backward(dstate, c_cache, defer)
            demb[:, t] += dx[:, : self.E]
            dctx = dx[:, self.E:] + dctxs[:, t]
            dq = self.attn.step_backward(dctx, a_cache, memory)
            dstate = add_hidden(dstate, dq)  # s_{i-1} was also the query
        defer.flush()
        # the attention's key and weight gradients, one product over all steps each
        return demb, MemoryGrad(self.attn.prepare_backward(memory), None), dstate

    def init_carry(self, state0):
        """The inference carry: the state itself."""
        return state0

    def step(self, emb_t, memory, carry, t):
        """One inference step: ``logits_t (B, V)``, the new state, ``alpha (B, S)``."""
        ctx, alpha, _ = self.attn.step(hidden(carry), memory, t)
        state = inference_step(self.cell, np.concatenate([emb_t, ctx], axis=1), carry)
        feat = np.concatenate([hidden(state), ctx, emb_t], axis=1)
        return self.out.apply(feat), state, alpha


def combine_forward(ctx, h, W_c):
    """Luong's attentional state ``h̃ = tanh([c ; h] @ W_c)``, any leading dims."""
    cat = np.concatenate([ctx, h], axis=-1)  # (..., Hk + Hd)
    h_tilde = np.tanh(matmul_last(cat, W_c))  # (..., Hd)
    return h_tilde, (cat, W_c, h_tilde)


def combine_backward(dh_tilde, cache, Hk):
    """Backward of `combine_forward`: ``dctx, dh`` and the factors of
    ``dW_c = cat^T @ dz`` as ``(cat, dz)``, both flattened to 2-D."""
    cat, W_c, h_tilde = cache
    dz = dh_tilde * (1.0 - h_tilde * h_tilde)  # tanh' from the output
    dcat = matmul_last(dz, W_c.T)  # cat @ W_c -> dcat = dz @ W_c^T
    factors = (cat.reshape(-1, cat.shape[-1]), dz.reshape(-1, dz.shape[-1]))
    return dcat[..., :Hk], dcat[..., Hk:], factors


class LuongDecoder(AttentionDecoder):
    """Luong et al. 2015 (docs/equations.md §5): step, then attend with h_t.

    ::

        h_t = f(h_{t-1}, x_t)       x_t = E y_{t-1}, or [E y_{t-1} ; h̃_{t-1}] with input feeding
        c_t = attention(h_t, h̄_1..S)
        h̃_t = tanh([c_t ; h_t] @ W_c)
        logits_t = h̃_t @ W_s + b_s

    Without input feeding nothing in the loop depends on attention, so the
    RNN runs as one sequence call and all T×S scores come from one batched
    product.
    """

    def __init__(self, cell, attn, out: Linear, emb_size: int, key_size: int, *,
                 input_feeding: bool, rng, dropout=0.0):
        super().__init__(cell.dtype)
        self.cell, self.attn, self.out = cell, attn, out
        self.out_drop = Dropout(dropout, dtype=cell.dtype)  # on h̃_t before out (not fed back)
        self.E, self.Hk, self.input_feeding = emb_size, key_size, input_feeding
        Hd = cell.hidden_size
        k = 1.0 / np.sqrt(key_size + Hd)
        self.add_param("W_c", rng.uniform(-k, k, (key_size + Hd, Hd)))

    def forward(self, emb, memory, state0, rows=None):
        """Teacher forcing: ``logits (B, T, V)`` (``(N, V)`` at ``rows``, see
        `Decoder`), ``alphas (B, T, S)``."""
        if not self.input_feeding:
            # nothing in the loop reads attention: the RNN runs as one sequence
            # call, then all T×S scores come from one batched product
            hs, _ = self.cell(emb, state0)  # (B, T, Hd)
            ctxs, alphas, a_cache = self.attn.attend(hs, memory)
            h_tilde, m_cache = combine_forward(ctxs, hs, self.params["W_c"])
            self._cache = (a_cache, m_cache, memory, None)
            return self._logits(h_tilde, rows), alphas
        B, T, _ = emb.shape
        state, h_tilde = state0, np.zeros((B, self.cell.hidden_size), self.dtype)
        steps, h_tildes, alphas = [], [], []
        for t in range(T):
            # step the cell on [E y_{t-1} ; h̃_{t-1}], then attend with the new h_t
            state, c_cache = self.cell.step(np.concatenate([emb[:, t], h_tilde], axis=1), state)
            ctx, alpha, a_cache = self.attn.step(hidden(state), memory, t)
            h_tilde, m_cache = combine_forward(ctx, hidden(state), self.params["W_c"])
            steps.append((c_cache, a_cache, m_cache))
            h_tildes.append(h_tilde)
            alphas.append(alpha)
        # the output layer for all steps at once
        logits = self._logits(np.stack(h_tildes, axis=1), rows)
        self._cache = (steps, None, memory, state0)
        return logits, np.stack(alphas, axis=1)

    def backward(self, dlogits):
        """``demb (B, T, E)``, ``MemoryGrad(denc_hs, None)``, ``dstate0``."""
        first, second, memory, state0 = self._take_cache()
        dh_tildes = self._logits_backward(dlogits)  # (B, T, Hd)
        if not self.input_feeding:
            a_cache, m_cache = first, second
            dctxs, dhs, (cat, dz) = combine_backward(dh_tildes, m_cache, self.Hk)
            self._add_W_c_grad(cat, dz)
            dhs = dhs + self.attn.attend_backward(dctxs, a_cache, memory)  # h_t was the query
            demb, dstate0 = self.cell.backward(dhs)
            return demb, MemoryGrad(self.attn.prepare_backward(memory), None), dstate0
        steps = first
        demb = np.empty(dh_tildes.shape[:2] + (self.E,), self.dtype)
        dstate, dfeed = zeros_like_state(state0), 0.0
        defer = DeferredGrads()  # W_c's and the cell's products: once, after the loop
        for t in reversed(range(len(steps))):
            c_cache, a_cache, m_cache = steps[t]
            dctx, dh, (cat, dz) = combine_backward(dh_tildes[:, t] + dfeed, m_cache, self.Hk)
            defer.add(self._add_W_c_grad, cat, dz)
            dh = dh + self.attn.step_backward(dctx, a_cache, memory)
            dx, dstate = self.cell.step_backward(add_hidden(dstate, dh), c_cache, defer)
            demb[:, t], dfeed = dx[:, : self.E], dx[:, self.E:]  # h̃_{t-1} was fed in
        defer.flush()
        return demb, MemoryGrad(self.attn.prepare_backward(memory), None), dstate

    def _add_W_c_grad(self, cat, dz):
        self.grads["W_c"] += cat.T @ dz  # z = cat @ W_c

    def init_carry(self, state0):
        """Inference carries (state, h̃_{t-1}); h̃_0 = 0."""
        return state0, np.zeros_like(hidden(state0))

    def step(self, emb_t, memory, carry, t):
        """One inference step: ``logits_t (B, V)``, ``(state, h̃_t)``, ``alpha (B, S)``."""
        state, h_tilde = carry
        x = np.concatenate([emb_t, h_tilde], axis=1) if self.input_feeding else emb_t
        state = inference_step(self.cell, x, state)
        ctx, alpha, _ = self.attn.step(hidden(state), memory, t)
        h_tilde, _ = combine_forward(ctx, hidden(state), self.params["W_c"])
        return self.out.apply(h_tilde), (state, h_tilde), alpha
