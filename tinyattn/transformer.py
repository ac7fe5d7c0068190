"""`Transformer`: the encoder–decoder of Vaswani et al. 2017, on the model protocol.

::

    src (B, S) ──emb·√D + PE──> ──N encoder layers──> memory (B, S, D)   (then LN when pre-LN)
    tgt_in (B, T) ──emb·√D + PE──> ──N decoder layers (causal self-attn, cross-attn over memory)──>
        ──> (B, T, D) ──out──> logits of the real target tokens (N, V)
    loss = mean cross-entropy (label-smoothed in train mode) over the real target tokens

docs/equations.md §7.6. It answers the calls of docs/models.md, so
`tinyattn.training.Trainer`, `tinyattn.decoding.greedy_decode`,
`tinyattn.decoding.beam_search`, checkpoints and the command line run it
as they run `tinyattn.Seq2Seq`. Decoding keeps a key/value cache per decoder
layer (the carry), so step t computes one new query row per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyattn._validate import (
    MAX_DIM,
    _show,
    check_array,
    check_bool,
    check_dim,
    check_id,
    check_ids,
    check_options,
    check_real,
    check_rng,
    check_size,
    check_source,
    check_targets,
)
from tinyattn.decoding import beam_search, greedy_decode
from tinyattn.functional import length_mask, log_softmax
from tinyattn.layernorm import LayerNorm, PositionalEncoding
from tinyattn.layers import Dropout, Embedding, Linear
from tinyattn.losses import sequence_cross_entropy
from tinyattn.module import Module, ModuleList
from tinyattn.multihead import attention_mask
from tinyattn.training.checkpoint import SavesCheckpoints
from tinyattn.transformer_layers import TransformerDecoderLayer, TransformerEncoderLayer

MAX_LAYERS = 16


@dataclass
class TransformerMemory:
    """What `Transformer.start` returns: the encoder's output and, per decoder
    layer, its cross-attention keys and values, projected once per batch.

    memory : (B, S, D); lengths : (B,); allowed : (B, 1, 1, S) bool, True at
    real source positions; kv : list of ``(K, V)``, each ``(B, n, S, d)``.
    """

    memory: np.ndarray
    lengths: np.ndarray
    allowed: np.ndarray
    kv: list


class Transformer(SavesCheckpoints, Module):
    """The Transformer encoder–decoder (Vaswani et al. 2017), on the model protocol.

    Parameters
    ----------
    src_vocab, tgt_vocab : int
    d_model : int
        D, the size of every position's vector.
    num_heads : int
        n, dividing D.
    d_ff : int
        The feed-forward networks' hidden width.
    num_encoder_layers, num_decoder_layers : int in 1..16
    dropout : float in [0, 1), default 0
        Inverted dropout in train mode on the embeddings (after adding the
        positions), the attention weights, after each sublayer and after the
        feed-forward ReLU; each use has its own mask (`seed_dropout`).
    norm_first : bool, default False
        False: post-LN, the paper's; True: pre-LN, with a final LayerNorm
        after the encoder stack and after the decoder stack.
    max_len : int, default 512
        The longest source or target the positional encoding covers.
    pad_id : int
        Padding id of both vocabularies; its embeddings stay 0.
    label_smoothing : float in [0, 1), default 0
        ε of the training loss, spread over every class but ``pad_id``
        (docs/equations.md §6.1); train mode only.
    tie_embeddings : bool, default False
        Use the target embedding matrix as the output layer's weights
        (``logits = h @ E_tgtᵀ + b``), as the paper does (§3.4). The output layer
        then trains the pad row too (the pad class's logit reads it), so it leaves
        0; no real position ever reads it.
    attention : "multihead"
        The only value: it is here so that ``config`` (which the model protocol
        says names the attention) builds the model again.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    Embeddings start ``N(0, 1/D)`` so that, scaled by √D as in the paper
    (§3.4), they are of the size of the positional encoding. After a forward,
    ``attention_weights (B, T, S)`` is the last decoder layer's cross-attention
    averaged over heads (0 at pads), and ``encoder[l].attn_weights``,
    ``decoder[l].self_weights`` and ``decoder[l].cross_weights`` hold every
    layer's per-head weights.
    """

    def __init__(self, src_vocab, tgt_vocab, *, d_model, num_heads, d_ff, num_encoder_layers,
                 num_decoder_layers, dropout=0.0, norm_first=False, max_len=512, pad_id=0,
                 label_smoothing=0.0, tie_embeddings=False, attention="multihead", rng,
                 dtype=np.float64):
        super().__init__(dtype)
        check_rng(rng)
        V_src, V_tgt = check_dim(src_vocab, "src_vocab"), check_dim(tgt_vocab, "tgt_vocab")
        D = check_dim(d_model, "d_model")
        n, d_ff = check_dim(num_heads, "num_heads"), check_dim(d_ff, "d_ff")
        if D % n:
            raise ValueError(f"num_heads must divide d_model (each head has d_model / num_heads "
                             f"columns), got d_model={D}, num_heads={n}")
        L_enc = check_size(num_encoder_layers, "num_encoder_layers", high=MAX_LAYERS)
        L_dec = check_size(num_decoder_layers, "num_decoder_layers", high=MAX_LAYERS)
        dropout = check_real(dropout, "dropout", "[0, 1)")
        norm_first = check_bool(norm_first, "norm_first")
        max_len = check_dim(max_len, "max_len")
        pad_id = check_id(pad_id, "pad_id", min(V_src, V_tgt))
        label_smoothing = check_real(label_smoothing, "label_smoothing", "[0, 1)")
        tie_embeddings = check_bool(tie_embeddings, "tie_embeddings")
        check_options("attention", attention, ("multihead",))
        self.config = dict(src_vocab=V_src, tgt_vocab=V_tgt, d_model=D, num_heads=n, d_ff=d_ff,
                           num_encoder_layers=L_enc, num_decoder_layers=L_dec, dropout=dropout,
                           norm_first=norm_first, max_len=max_len, pad_id=pad_id,
                           label_smoothing=label_smoothing, tie_embeddings=tie_embeddings,
                           attention="multihead", dtype=np.dtype(dtype).name)
        self.pad_id = pad_id
        self.scale = float(np.sqrt(D))  # a Python float keeps float32 float32
        kw = dict(rng=rng, dtype=self.dtype)
        layer_kw = dict(dropout=dropout, norm_first=norm_first, **kw)
        self.src_emb = Embedding(V_src, D, pad_id=pad_id, **kw)
        self.tgt_emb = Embedding(V_tgt, D, pad_id=pad_id, **kw)
        for emb in (self.src_emb, self.tgt_emb):
            emb.params["W"] *= 1.0 / self.scale  # N(0, 1/D): unit size once scaled by √D
        self.positions = PositionalEncoding(D, max_len, dtype=self.dtype)
        self.src_drop = Dropout(dropout, dtype=self.dtype)
        self.tgt_drop = Dropout(dropout, dtype=self.dtype)
        self.encoder = ModuleList(TransformerEncoderLayer(D, n, d_ff, **layer_kw)
                                  for _ in range(L_enc))
        self.decoder = ModuleList(TransformerDecoderLayer(D, n, d_ff, **layer_kw)
                                  for _ in range(L_dec))
        if norm_first:
            self.encoder_norm = LayerNorm(D, dtype=self.dtype)
            self.decoder_norm = LayerNorm(D, dtype=self.dtype)
        if tie_embeddings:
            self.add_param("b_out", np.zeros(V_tgt))
        else:
            self.out = Linear(D, V_tgt, **kw)
        if dropout > 0:  # drawn after every weight, as Seq2Seq does
            self.seed_dropout(int(rng.integers(2**63)))
        self.attention_weights = None
        self.attention_positions = None  # no local attention here
        self.logits = None

    TRAINING_OPTIONS = ("dropout", "label_smoothing")

    @property
    def uses_dropout(self) -> bool:
        """Whether training draws dropout masks (``dropout > 0``)."""
        return self.config["dropout"] > 0

    def seed_dropout(self, seed) -> None:
        """Draw every later dropout mask from ``np.random.default_rng(seed)``."""
        rng = np.random.default_rng(seed)
        for _, module in self.named_modules():
            if isinstance(module, Dropout):
                module.rng = rng

    # ----- pieces ------------------------------------------------------------------
    def _embed(self, vectors, start: int = 0):
        """``vectors·√D + PE[start : start + T]`` for looked-up ``vectors (B, T, D)``."""
        x = vectors * self.scale
        x += self.positions.rows(start, start + vectors.shape[1])[None]
        return x

    def _logits(self, h, *, train: bool = False):
        """``h (N, D) -> (N, V)``; ``train`` keeps the output layer's cache."""
        if self.config["tie_embeddings"]:
            return h @ self.tgt_emb.params["W"].T + self.params["b_out"]
        return self.out(h) if train else self.out.apply(h)

    def encode(self, src, src_lengths):
        """``memory (B, S, D)`` (0 at pads) and the checked ``lengths (B,)``; caches
        for the backward in every layer."""
        src, lengths = check_source(src, src_lengths, self.config["src_vocab"])
        x = self.src_drop(self._embed(self.src_emb(src)))
        for layer in self.encoder:
            x = layer(x, lengths)
        if self.config["norm_first"]:
            x = self.encoder_norm(x)
        return x * length_mask(lengths, src.shape[1])[:, :, None], lengths

    # ----- training ------------------------------------------------------------------
    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        """Teacher-forced mean cross-entropy over the real target tokens."""
        tgt_in, tgt_out, tgt_lengths, tgt_mask = check_targets(
            src, tgt_in, tgt_out, tgt_lengths, self.config["tgt_vocab"])
        memory, src_lengths = self.encode(src, src_lengths)
        y = self.tgt_drop(self._embed(self.tgt_emb(tgt_in)))
        for layer in self.decoder:
            y = layer(y, memory, tgt_lengths, src_lengths)
        if self.config["norm_first"]:
            y = self.decoder_norm(y)
        h = y[tgt_mask]  # (N, D): the real target tokens, row-major
        logits = self._logits(h, train=True)
        eps = self.config["label_smoothing"] if self.training else 0.0
        loss, dlogits = sequence_cross_entropy(
            logits[None], tgt_out[tgt_mask][None], np.ones((1, len(logits)), bool),
            label_smoothing=eps, pad_id=self.pad_id if eps else None)
        last = self.decoder[len(self.decoder) - 1].cross_weights  # (B, n, T, S)
        self.attention_weights = last.mean(axis=1)  # rows of pad queries stay 0
        self.logits = logits
        self._cache = (dlogits[0], h, tgt_mask, y.shape, memory.shape, src_lengths)
        return loss

    def backward(self):
        """Fill every parameter's gradient (accumulating) from the last loss."""
        dlogits, h, tgt_mask, y_shape, mem_shape, src_lengths = self._take_cache()
        if self.config["tie_embeddings"]:
            W = self.tgt_emb.params["W"]
            # (V, D): logits = h Wᵀ. The pad row gets its gradient too (the pad class's
            # logit reads it); it moves off 0, harmlessly: pads never reach a real position.
            self.tgt_emb.grads["W"] += dlogits.T @ h
            self.grads["b_out"] += dlogits.sum(axis=0)
            dh = dlogits @ W
        else:
            dh = self.out.backward(dlogits)
        dy = np.zeros(y_shape, self.dtype)
        dy[tgt_mask] = dh
        if self.config["norm_first"]:
            dy = self.decoder_norm.backward(dy)
        dmemory = np.zeros(mem_shape, self.dtype)
        for layer in reversed(list(self.decoder)):
            dy, dm = layer.backward(dy)
            dmemory += dm
        self.tgt_emb.backward(self.tgt_drop.backward(dy) * self.scale)
        dx = dmemory * length_mask(src_lengths, mem_shape[1])[:, :, None]
        if self.config["norm_first"]:
            dx = self.encoder_norm.backward(dx)
        for layer in reversed(list(self.encoder)):
            dx = layer.backward(dx)
        self.src_emb.backward(self.src_drop.backward(dx) * self.scale)

    # ----- inference, one token at a time, keys and values cached ----------------------
    def start(self, src, src_lengths):
        """Encode for decoding: ``(TransformerMemory, carry)``; the carry holds each
        decoder layer's self-attention keys and values, empty before step 0."""
        memory, lengths = self.encode(src, src_lengths)
        for _, module in self.named_modules():
            module._cache = None  # decoding does not backpropagate
        B, S, _ = memory.shape
        allowed = attention_mask(lengths, B, 1, S, False)  # (B, 1, 1, S)
        kv = [layer.memory_kv(memory) for layer in self.decoder]
        n = self.config["num_heads"]
        empty = np.zeros((B, n, 0, self.config["d_model"] // n), self.dtype)
        carry = tuple((empty, empty) for _ in self.decoder)
        return TransformerMemory(memory, lengths, allowed, kv), carry

    def decode_step(self, y_prev, memory, carry, t: int):
        """Log-probabilities ``(B, V)`` of the next token after ``y_prev (B,)``, the
        new carry (each layer's keys and values now through position t) and the
        last layer's cross-attention averaged over heads ``(B, S)``."""
        if not isinstance(memory, TransformerMemory):
            raise TypeError(f"memory must be the TransformerMemory that start() returned, "
                            f"got {type(memory).__name__}")
        B = memory.memory.shape[0]
        y_prev = check_ids(y_prev, "y_prev", self.config["tgt_vocab"], shape=(B,))
        t = check_size(t, "t", low=0, high=MAX_DIM)
        self._check_carry(carry, B, t)
        x = self._embed(self.tgt_emb.params["W"][y_prev][:, None], start=t)  # (B, 1, D)
        new_carry = []
        for layer, cache, kv in zip(self.decoder, carry, memory.kv):
            x, cache, weights = layer.step(x, kv, memory.allowed, cache)
            new_carry.append(cache)
        if self.config["norm_first"]:
            x = self.decoder_norm.apply(x)
        logits = self._logits(x[:, 0])  # (B, V)
        return log_softmax(logits, axis=1), tuple(new_carry), weights[:, :, 0].mean(axis=1)

    def _check_carry(self, carry, batch: int, t: int) -> None:
        L = len(self.decoder)
        if not isinstance(carry, tuple) or len(carry) != L or not all(
                isinstance(c, tuple) and len(c) == 2 for c in carry):
            raise TypeError(f"carry must be a tuple of {L} (keys, values) pairs, the carry "
                            f"start() or decode_step() returned, got {_show(carry)}")
        n = self.config["num_heads"]
        shape = (batch, n, t, self.config["d_model"] // n)
        for k, pair in enumerate(carry):
            for name, a in zip(("keys", "values"), pair):
                check_array(a, f"carry[{k}] {name}", shape, self.dtype)

    def greedy_decode(self, src, src_lengths, *, max_len, sos_id, eos_id):
        """Greedy decoding: one `tinyattn.decoding.Hypothesis` per example."""
        return greedy_decode(self, src, src_lengths, max_len=max_len, sos_id=sos_id,
                             eos_id=eos_id)

    def beam_search(self, src, src_lengths, *, beam_size, max_len, sos_id, eos_id,
                    length_penalty=0.0, n_best=None, trace=None):
        """Batched beam search (`tinyattn.decoding.beam_search`); the key/value
        caches are reordered with the beams."""
        return beam_search(self, src, src_lengths, beam_size=beam_size, max_len=max_len,
                           sos_id=sos_id, eos_id=eos_id, length_penalty=length_penalty,
                           n_best=n_best, trace=trace)
