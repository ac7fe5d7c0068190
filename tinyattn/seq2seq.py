"""`Seq2Seq`: embeddings, an encoder, a bridge, a decoder, a masked loss.

::

    src (B, S) ──src_emb──> (B, S, E) ──encoder──> enc_hs (B, S, Hk), final state
    final state ──bridge──> s_0 = tanh(final @ W_s + b_s)               (B, Hd)
    tgt_in (B, T) ──tgt_emb──> (B, T, E) ──decoder(enc_hs | c, s_0)──> logits (B, T, V)
    loss = mean cross-entropy of logits against tgt_out over real target tokens

The encoder is a GRU or LSTM, bidirectional by default, so Hk = 2H
(``[→h_j ; ←h_j]``); the decoder's state has that same size, Hd = Hk, so
every score function, dot product included, can compare a decoder state
with an encoder annotation. The bridge is `tinyattn.bridge`; with
``bridge=False`` the decoder starts from s_0 = 0 instead.

With ``num_layers = L > 1`` the encoder and the decoder are stacks of L
layers (`tinyattn.stacked.StackedRNN`, docs/equations.md §3.1): decoder
layer l starts from the bridge of encoder layer l's final state (one
bridge per layer), attention and the output read the top layer, and the
plain decoder's c is the encoder's top layer.
"""

from __future__ import annotations

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
from tinyattn.attention import BahdanauAttention, LuongAttention
from tinyattn.bidirectional import Bidirectional
from tinyattn.bridge import bridge_backward, bridge_forward, bridge_modules
from tinyattn.decoders import BahdanauDecoder, LuongDecoder, PlainDecoder
from tinyattn.decoding import beam_search, greedy_decode
from tinyattn.functional import length_mask, log_softmax
from tinyattn.gru import GRU
from tinyattn.layers import Dropout, Embedding, Linear
from tinyattn.local_attention import LocalAttention
from tinyattn.losses import sequence_cross_entropy
from tinyattn.lstm import LSTM
from tinyattn.memory import Memory
from tinyattn.module import Module
from tinyattn.recurrent import StackState, add_hidden, hidden, zeros_like_state
from tinyattn.stacked import StackedRNN
from tinyattn.training.checkpoint import SavesCheckpoints

ATTENTIONS = (None, "bahdanau", "dot", "general", "concat", "scaled_dot", "local-m", "local-p")
SIZED_ATTENTIONS = ("bahdanau", "concat", "local-p")  # the ones with an attention layer size A
CELLS = {"gru": GRU, "lstm": LSTM}
MAX_LAYERS = 16  # num_layers is 1..MAX_LAYERS


class Seq2Seq(SavesCheckpoints, Module):
    """An encoder–decoder with or without attention (docs/equations.md §2–§6).

    Parameters
    ----------
    src_vocab, tgt_vocab : int
        Vocabulary sizes.
    emb_size : int
        E.
    hidden_size : int
        H, per encoder direction. The decoder state has size Hk (2H when
        bidirectional).
    cell : {"gru", "lstm"}
    bidirectional : bool
    num_layers : int in 1..16, default 1
        L, the recurrent layers of the encoder and of the decoder
        (docs/equations.md §3.1). Layer l > 1 reads layer l − 1's outputs
        (the 2H concatenation when bidirectional), with dropout between
        layers when ``dropout > 0``. Decoder layer l starts from the bridge
        of encoder layer l's final state, one bridge per layer (``bridge``
        for the first layer, as with one layer, then ``bridges.1``, ...);
        attention and the output layer read the top layer's h, and the
        plain decoder's c is the encoder's top layer. With 1, the model,
        its parameter names and its numbers are those of a model built
        before this option existed.
    bridge : bool, default True
        Whether the decoder starts from the bridge of the encoder's final
        state, ``s_0 = tanh(final @ W_s + b_s)`` (docs/equations.md §2; Cho et
        al. and Bahdanau et al. start from such a bridge too), or from zeros (False: the model has
        no bridge parameters, and everything the decoder knows of the source
        comes through attention, or through ``c`` without attention; an LSTM
        decoder's cell state starts at zero too). Every other weight starts as
        in the model with a bridge (the bridge's are drawn and dropped), so
        the two differ in the bridge alone. Lesson 11 §6.4 measures what
        this does to where attention looks.
    attention : {None, "bahdanau", "dot", "general", "concat", "scaled_dot",
                 "local-m", "local-p"}
        None is the documents' plain seq2seq with one context vector.
    input_feeding : bool
        Luong attention only: feed h̃_{t-1} into the next step.
    attn_size : int, optional
        A, for bahdanau, concat and local-p (default Hd). The other
        attentions have no such size and refuse one (ValueError).
    window : int, default 3
        Half-width of the local attention window (local-m, local-p). It is
        checked (a positive int) whatever the attention, but read by local
        attention only: one set of options serves every attention, and
        configurations that store ``window=3`` for a global attention (the
        command line's, older checkpoints') keep building.
    pad_id : int
        Padding id of both vocabularies, in ``0..min(src_vocab, tgt_vocab) - 1``;
        its embedding stays 0.
    dropout : float in [0, 1), default 0
        Inverted dropout in train mode, each use with its own mask: on the
        source and the target embeddings, between stacked layers
        (``num_layers > 1``), and on the decoder's output features before
        the output layer (`tinyattn.layers.Dropout`). Eval
        mode (``model.eval()``, which the decoders and `Trainer.evaluate`
        switch to) uses no dropout. Masks come from a generator set by
        `seed_dropout` (`Trainer` seeds it before every batch, so a resumed
        run draws the same masks).
    label_smoothing : float in [0, 1), default 0
        ε of the training loss's smoothed targets, spread over every class
        but ``pad_id`` (`tinyattn.losses.sequence_cross_entropy`,
        docs/equations.md §6.1). Train mode only: in eval mode the loss is
        the plain cross-entropy, so validation losses stay comparable.
    rng : numpy.random.Generator
    dtype : np.float32 or np.float64

    Notes
    -----
    Seq2Seq is one implementation of the model protocol that
    `tinyattn.training.trainer.Trainer`, `tinyattn.decoding.greedy_decode`,
    `tinyattn.decoding.beam_search`, the command line's run directory and
    the heatmaps rely on, and nothing more: docs/models.md lists every call
    (the loss, ``backward``, ``start`` / ``decode_step``, ``save`` / ``load``,
    ``config``, ``attention_weights`` and ``attention_positions``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = Seq2Seq(11, 13, emb_size=4, hidden_size=5, attention="bahdanau", rng=rng)
    >>> src = np.array([[3, 4, 5], [6, 7, 0]]); tgt = np.array([[1, 8, 9], [1, 10, 0]])
    >>> loss = model(src, [3, 2], tgt[:, :-1], tgt[:, 1:], [2, 1])
    >>> model.backward(); model.attention_weights.shape
    (2, 2, 3)
    """

    def __init__(self, src_vocab, tgt_vocab, *, emb_size, hidden_size, cell="gru",
                 bidirectional=True, num_layers=1, bridge=True, attention=None,
                 input_feeding=False, attn_size=None, window=3, pad_id=0, dropout=0.0,
                 label_smoothing=0.0, rng, dtype=np.float64):
        super().__init__(dtype)
        check_rng(rng)
        check_options("cell", cell, tuple(CELLS))
        check_options("attention", attention, ATTENTIONS)
        bidirectional = check_bool(bidirectional, "bidirectional")
        L = check_size(num_layers, "num_layers", high=MAX_LAYERS)
        bridge = check_bool(bridge, "bridge")
        input_feeding = check_bool(input_feeding, "input_feeding")
        if input_feeding and attention in (None, "bahdanau"):
            raise ValueError(
                f"input_feeding applies to Luong attention only, got attention={attention!r}")
        V_src, V_tgt = check_dim(src_vocab, "src_vocab"), check_dim(tgt_vocab, "tgt_vocab")
        E, H = check_dim(emb_size, "emb_size"), check_dim(hidden_size, "hidden_size")
        pad_id = check_id(pad_id, "pad_id", min(V_src, V_tgt))
        attn_size = check_dim(attn_size, "attn_size", none_ok=True)
        if attn_size is not None and attention not in SIZED_ATTENTIONS:
            raise ValueError(
                f"attn_size sizes the scoring layer of attention "
                f"{', '.join(map(repr, SIZED_ATTENTIONS))} only; attention={attention!r} "
                f"has no such layer, so leave attn_size unset (got attn_size={attn_size})")
        window = check_size(window, "window")  # read by local attention only (see Parameters)
        dropout = check_real(dropout, "dropout", "[0, 1)")
        label_smoothing = check_real(label_smoothing, "label_smoothing", "[0, 1)")
        self.config = dict(src_vocab=V_src, tgt_vocab=V_tgt, emb_size=E, hidden_size=H,
                           cell=cell, bidirectional=bidirectional, num_layers=L,
                           bridge=bridge, attention=attention,
                           input_feeding=input_feeding, attn_size=attn_size,
                           window=window, pad_id=pad_id, dropout=dropout,
                           label_smoothing=label_smoothing,
                           dtype=np.dtype(dtype).name)
        self.pad_id = pad_id
        Cell = CELLS[cell]
        kw = dict(rng=rng, dtype=self.dtype)

        def stack(input_size, make):
            """``make(input_size)``, or L of them, each reading the one below."""
            layers = [make(input_size)]
            while len(layers) < L:
                layers.append(make(layers[-1].hidden_size))
            return layers[0] if L == 1 else StackedRNN(layers, dropout=dropout)

        self.src_emb = Embedding(V_src, E, pad_id=pad_id, **kw)
        self.src_drop = Dropout(dropout, dtype=self.dtype)
        if bidirectional:
            self.encoder = stack(E, lambda D: Bidirectional(Cell(D, H, **kw), Cell(D, H, **kw)))
        else:
            self.encoder = stack(E, lambda D: Cell(D, H, **kw))
        Hk = Hd = self.encoder.hidden_size
        # drawn even when unused, so every other weight equals that of the model with a bridge
        for name, module in bridge_modules(Hk, Hd, L, cell == "lstm", kw).items():
            if bridge:
                setattr(self, name, module)
        self.tgt_emb = Embedding(V_tgt, E, pad_id=pad_id, **kw)
        self.tgt_drop = Dropout(dropout, dtype=self.dtype)
        A = Hd if attn_size is None else attn_size
        if attention is None:
            self.decoder = PlainDecoder(stack(E + Hk, lambda D: Cell(D, Hd, **kw)),
                                        Linear(Hd + Hk + E, V_tgt, **kw), E, Hk, dropout=dropout)
        elif attention == "bahdanau":
            self.decoder = BahdanauDecoder(stack(E + Hk, lambda D: Cell(D, Hd, **kw)),
                                           BahdanauAttention(Hd, Hk, A, **kw),
                                           Linear(Hd + Hk + E, V_tgt, **kw), E,
                                           dropout=dropout)
        else:
            if attention.startswith("local"):
                attn = LocalAttention(Hd, Hk, mode=attention, window=window,
                                      attn_size=attn_size, **kw)
            else:
                attn = LuongAttention(Hd, Hk, score=attention,
                                      attn_size=attn_size if attention == "concat" else None,
                                      **kw)
            self.decoder = LuongDecoder(stack(E + (Hd if input_feeding else 0),
                                              lambda D: Cell(D, Hd, **kw)), attn,
                                        Linear(Hd, V_tgt, **kw), E, Hk,
                                        input_feeding=input_feeding, rng=rng,
                                        dropout=dropout)
        if dropout > 0:  # drawn after every weight, so the weights equal a dropout-free model's
            self.seed_dropout(int(rng.integers(2**63)))
        self.attention_weights = None  # (B, T, S) of the last forward, None without attention
        self.attention_positions = None  # (B, T) local attention's p_t of the last forward
        self.logits = None  # (N, V) of the last forward: one row per real target token

    TRAINING_OPTIONS = ("dropout", "label_smoothing")  # load_weights lets these differ

    # ----- encoder and bridge ---------------------------------------------
    @classmethod
    def upgrade_config(cls, config: dict) -> dict:
        """A stored configuration as this constructor takes it: earlier versions
        stored an ``attn_size`` that attentions without a scoring layer ignored
        (the constructor now refuses it), so it is dropped there."""
        config = dict(config)
        config.setdefault("num_layers", 1)  # stored before stacked layers existed
        config.setdefault("dropout", 0.0)  # and before dropout
        config.setdefault("label_smoothing", 0.0)  # and before label smoothing
        config.setdefault("bridge", True)  # and before the bridge could be switched off
        if config.get("attention") not in SIZED_ATTENTIONS and \
                config.get("attn_size") is not None:
            config["attn_size"] = None
        return config

    @property
    def uses_dropout(self) -> bool:
        """Whether training draws dropout masks (``dropout > 0``)."""
        return self.config["dropout"] > 0

    def seed_dropout(self, seed) -> None:
        """Draw every later dropout mask from ``np.random.default_rng(seed)``
        (one generator shared by the dropout layers, in the order they run)."""
        rng = np.random.default_rng(seed)
        for _, module in self.named_modules():
            if isinstance(module, Dropout):
                module.rng = rng

    def encode(self, src, src_lengths):
        """Run the encoder: ``enc_hs (B, S, Hk)``, the decoder's ``state0``,
        the context ``c`` (the encoder's final h), ``src_mask (B, S)``."""
        src, lengths = check_source(src, src_lengths, self.config["src_vocab"])
        enc_hs, final = self.encoder(self.src_drop(self.src_emb(src)), None, lengths)
        if not self.config["bridge"]:  # the decoder starts from zeros (Hd = Hk)
            state0 = zeros_like_state(final)
        elif isinstance(final, StackState):  # decoder layer l starts from encoder layer l
            state0 = StackState(bridge_forward(self._bridges(k), f) for k, f in enumerate(final))
        else:
            state0 = bridge_forward(self._bridges(0), final)
        # c: the (top layer's) final h
        return enc_hs, state0, hidden(final), length_mask(lengths, src.shape[1])

    def _bridges(self, k: int) -> tuple:
        """Layer k's bridges: ``(h's,)``, or ``(h's, c's)`` for an LSTM."""
        lstm = self.config["cell"] == "lstm"
        if k == 0:
            return (self.bridge, self.bridge_c) if lstm else (self.bridge,)
        return (self.bridges[k - 1], self.bridges_c[k - 1]) if lstm else (self.bridges[k - 1],)

    def _encode_backward(self, denc_hs, dstate0, state0, dc):
        if not self.config["bridge"]:  # zeros: the final state did not reach the decoder
            dfin = zeros_like_state(state0)
        elif isinstance(state0, StackState):
            dfin = StackState(bridge_backward(self._bridges(k), d, s)
                              for k, (d, s) in enumerate(zip(dstate0, state0)))
        else:
            dfin = bridge_backward(self._bridges(0), dstate0, state0)
        if dc is not None:  # c = the (top layer's) final h fed the decoder at every step
            dfin = add_hidden(dfin, dc)
        dx, _ = self.encoder.backward(denc_hs, dfin)
        self.src_emb.backward(self.src_drop.backward(dx))

    # ----- training ---------------------------------------------------------
    def forward(self, src, src_lengths, tgt_in, tgt_out, tgt_lengths):
        """Teacher-forced mean cross-entropy over the real target tokens."""
        tgt_in, tgt_out, tgt_lengths, tgt_mask = check_targets(
            src, tgt_in, tgt_out, tgt_lengths, self.config["tgt_vocab"])
        # encode the source; the decoder prepares what it reads of it (the memory)
        enc_hs, state0, c, src_mask = self.encode(src, src_lengths)
        memory = self.decoder.prepare(enc_hs, src_mask, c)
        # teacher forcing: the decoder reads the gold y_{i-1}; logits (N, V) at real tokens only
        logits, alphas = self.decoder(self.tgt_drop(self.tgt_emb(tgt_in)), memory, state0,
                                      rows=tgt_mask)
        # the loss counts only real target tokens (here, all N rows)
        eps = self.config["label_smoothing"] if self.training else 0.0
        loss, dlogits = sequence_cross_entropy(
            logits[None], tgt_out[tgt_mask][None], np.ones((1, len(logits)), bool),
            label_smoothing=eps, pad_id=self.pad_id if eps else None)
        dlogits = dlogits[0]
        self.attention_weights = alphas
        self.attention_positions = self.decoder.positions
        self.logits = logits  # HardSeq2Seq reads its rewards from them
        self._cache = (dlogits, state0, enc_hs.shape)
        return loss

    def backward(self):
        """Fill every parameter's gradient (accumulating) from the last loss."""
        dlogits, state0, enc_shape = self._take_cache()
        demb, dmemory, dstate0 = self.decoder.backward(dlogits)
        self.tgt_emb.backward(self.tgt_drop.backward(demb))
        denc_hs = dmemory.annotations
        if denc_hs is None:  # the plain decoder reads only c
            denc_hs = np.zeros(enc_shape, self.dtype)
        self._encode_backward(denc_hs, dstate0, state0, dmemory.context)

    # ----- inference, one token at a time ----------------------------------
    def start(self, src, src_lengths):
        """Encode for decoding: ``(memory, carry)`` for `decode_step`."""
        enc_hs, state0, c, src_mask = self.encode(src, src_lengths)
        return self.decoder.prepare(enc_hs, src_mask, c), self.decoder.init_carry(state0)

    def decode_step(self, y_prev, memory, carry, t: int):
        """Log-probabilities ``(B, V)`` of the next token after ``y_prev (B,)``,
        the new carry and the attention row ``(B, S)`` (None without attention).

        ``y_prev`` are target ids in ``0..tgt_vocab - 1``, one per row of the
        ``memory`` that `start` returned; ``t >= 0`` is the target position.
        """
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be the Memory that start() returned, "
                            f"got {type(memory).__name__}")
        B = memory.mask.shape[0]
        y_prev = check_ids(y_prev, "y_prev", self.config["tgt_vocab"], shape=(B,))
        t = check_size(t, "t", low=0, high=MAX_DIM)
        self._check_carry(carry, B)
        emb_t = self.tgt_emb.params["W"][y_prev]  # (B,) -> (B, E)
        logits, carry, alpha = self.decoder.step(emb_t, memory, carry, t)
        return log_softmax(logits, axis=1), carry, alpha

    def _check_carry(self, carry, batch: int) -> None:
        """``carry`` must have the structure, shapes and dtype `start` gave it."""
        Hd = self.encoder.hidden_size  # the decoder state: Hd = Hk
        h = np.zeros((batch, Hd), self.dtype)
        state = (h, h) if self.config["cell"] == "lstm" else h
        if self.config["num_layers"] > 1:
            state = StackState([state] * self.config["num_layers"])
        template = self.decoder.init_carry(state)

        def walk(got, want, name):
            if isinstance(want, tuple):
                what = "StackState" if isinstance(want, StackState) else "tuple"
                if (not isinstance(got, tuple) or len(got) != len(want)
                        or isinstance(got, StackState) != isinstance(want, StackState)):
                    raise TypeError(f"{name} must be a {what} of {len(want)} (the carry that "
                                    f"start() or decode_step() returned), got {_show(got)}")
                for k, (g, w) in enumerate(zip(got, want)):
                    walk(g, w, f"{name}[{k}]")
            else:
                check_array(got, name, want.shape, self.dtype)

        walk(carry, template, "carry")

    def greedy_decode(self, src, src_lengths, *, max_len, sos_id, eos_id):
        """Greedy decoding: one `tinyattn.decoding.Hypothesis` per example."""
        return greedy_decode(self, src, src_lengths, max_len=max_len, sos_id=sos_id,
                             eos_id=eos_id)

    def beam_search(self, src, src_lengths, *, beam_size, max_len, sos_id, eos_id,
                    length_penalty=0.0, n_best=None, trace=None):
        """Batched beam search: per example, the n-best hypotheses, each with
        its own attention matrix; ``trace`` (a list) collects each step's
        candidates (see `tinyattn.decoding.beam_search`)."""
        return beam_search(self, src, src_lengths, beam_size=beam_size, max_len=max_len,
                           sos_id=sos_id, eos_id=eos_id, length_penalty=length_penalty,
                           n_best=n_best, trace=trace)
