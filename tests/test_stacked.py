"""Stacked recurrent layers (issue 12 §3): `StackedRNN` alone, then
``Seq2Seq(num_layers=2)`` through the model API: float64 gradient checks of
every input and parameter (dropout with fixed masks), each shown able to
fail; padding invariance; decoding; ``num_layers=1`` unchanged; bad values;
the command line."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import tinyattn as ta
from tinyattn import Seq2Seq
from tinyattn.decoding import _take
from tinyattn.functional import log_softmax
from tinyattn.gradcheck import TOL_LAYER, _flatten, check_gradients
from tinyattn.layers import Dropout
from tinyattn.module import ModuleList
from tinyattn.recurrent import DeferredGrads, StackState, add_hidden, hidden, zeros_like_state
from tinyattn.stacked import StackedRNN

from .test_dropout import _check_with_fixed_masks, _masks_by_position
from .test_seq2seq import (
    EOS,
    SOS,
    SRC,
    SRC_LEN,
    TGT,
    TGT_LEN,
    V_SRC,
    V_TGT,
    assert_beams_rescore,
    assert_padding_invariant,
    grads_of,
    loss_of,
)

FIXTURES = Path(__file__).parent / "fixtures"
B, T, D, H = 3, 4, 5, 3  # distinct sizes, so a transposed axis fails loudly
LENGTHS = np.array([4, 2, 3])


# ----- StackedRNN alone --------------------------------------------------------
def make_stack(kind, seed=0, num_layers=2, dropout=0.0):
    rng = np.random.default_rng(seed)

    def layer(d):
        if kind.startswith("bi_"):
            cell = {"bi_gru": ta.GRU, "bi_lstm": ta.LSTM}[kind]
            return ta.Bidirectional(cell(d, H, rng=rng), cell(d, H, rng=rng))
        if kind == "gru_plain":
            return ta.GRU(d, H, rng=rng, fused=False)
        return {"gru": ta.GRU, "lstm": ta.LSTM}[kind](d, H, rng=rng)

    layers = [layer(D)]
    while len(layers) < num_layers:
        layers.append(layer(layers[-1].hidden_size))
    return StackedRNN(layers, dropout=dropout)


def random_state(stack, rng, batch=B):
    """A random StackState: per layer (B, H') or an LSTM's (h, c)."""
    states = []
    for layer in stack.layers:
        lstm = isinstance(getattr(layer, "fwd", layer), ta.LSTM)
        h = rng.standard_normal((batch, layer.hidden_size))
        states.append((h, rng.standard_normal(h.shape)) if lstm else h)
    return StackState(states)


def seed_masks(stack, seed):
    """One generator for every gap's Dropout, as `Seq2Seq.seed_dropout` does."""
    rng = np.random.default_rng(seed)
    for drop in getattr(stack, "drops", []):
        drop.rng = rng


def check_sequence(stack, x, state0, lengths, seed=3):
    """Gradient check of ``hs, final = stack(x, state0, lengths)`` w.r.t. x, every
    entry of state0 and every parameter; each forward reseeds the dropout, so the
    masks are fixed."""
    names = [f"h0[{k}]" + ("" if isinstance(s, np.ndarray) else f"[{j}]")
             for k, s in enumerate(state0) for j in range(1 if isinstance(s, np.ndarray)
                                                           else len(s))]
    arrays = {"x": x, **dict(zip(names, _flatten(state0)))}
    arrays.update({n: v for n, v, _ in stack.named_parameters()})

    def forward():
        seed_masks(stack, seed)
        return stack(x, state0, lengths)

    def backward(douts):
        dhs, dfinal = douts  # dfinal: a StackState, as check_gradients keeps the type
        stack.zero_grad()
        forward()
        dx, dstate0 = stack.backward(dhs, dfinal)
        assert isinstance(dstate0, StackState)
        grads = {"x": dx, **dict(zip(names, _flatten(dstate0)))}
        grads.update({n: g.copy() for n, _, g in stack.named_parameters()})
        return grads

    return check_gradients(forward, backward, arrays, tol=TOL_LAYER)


def check_steps(stack, x, state0, seed=3):
    """Gradient check of T calls of ``stack.step`` (a decoder's loop: each step's
    top h is an output, the last state too), backward through ``step_backward``
    with deferred weight gradients, as `tinyattn.decoders.BahdanauDecoder` runs it."""
    names = [f"s0_{k}" for k in range(len(_flatten(state0)))]
    arrays = {"x": x, **dict(zip(names, _flatten(state0)))}
    arrays.update({n: v for n, v, _ in stack.named_parameters()})

    def run():
        seed_masks(stack, seed)
        state, caches, hs = state0, [], []
        for t in range(x.shape[1]):
            state, cache = stack.step(x[:, t], state)
            caches.append(cache)
            hs.append(hidden(state))
        return np.stack(hs, axis=1), state, caches

    def backward(douts):
        dhs, dfinal = douts
        stack.zero_grad()
        _, _, caches = run()
        dstate, dx, defer = dfinal, np.zeros_like(x), DeferredGrads()
        for t in reversed(range(x.shape[1])):
            dstate = add_hidden(dstate, dhs[:, t])  # h_t fed the output and step t+1
            dx[:, t], dstate = stack.step_backward(dstate, caches[t], defer)
        defer.flush()
        grads = {"x": dx, **dict(zip(names, _flatten(dstate)))}
        grads.update({n: g.copy() for n, _, g in stack.named_parameters()})
        return grads

    return check_gradients(lambda: run()[:2], backward, arrays, tol=TOL_LAYER)


SEQUENCE_CASES = [("gru", 2, 0.0), ("gru_plain", 3, 0.4), ("lstm", 2, 0.4),
                  ("bi_gru", 2, 0.0), ("bi_lstm", 2, 0.4)]


@pytest.mark.parametrize("kind, layers, p", SEQUENCE_CASES)
def test_stack_sequence_gradcheck(kind, layers, p):
    """Every input, initial state and parameter, on a padded batch (lengths
    4, 2, 3), with garbage in the pads."""
    rng = np.random.default_rng(1)
    stack = make_stack(kind, num_layers=layers, dropout=p)
    x = rng.standard_normal((B, T, D))
    x[1, 2:] = 1e3  # pads must change nothing
    result = check_sequence(stack, x, random_state(stack, rng), LENGTHS)
    assert result.passed, str(result)


@pytest.mark.parametrize("kind, layers, p", [("gru", 2, 0.0), ("gru_plain", 3, 0.4),
                                             ("lstm", 2, 0.4)])
def test_stack_step_gradcheck(kind, layers, p):
    rng = np.random.default_rng(2)
    stack = make_stack(kind, num_layers=layers, dropout=p)
    x = rng.standard_normal((B, T, D))
    result = check_steps(stack, x, random_state(stack, rng))
    assert result.passed, str(result)


def test_dropout_masks_are_fixed_by_the_seed_and_matter():
    rng = np.random.default_rng(0)
    stack = make_stack("lstm", dropout=0.5)
    x = rng.standard_normal((B, T, D))
    seed_masks(stack, 1)
    a = stack(x)[0]
    seed_masks(stack, 1)
    np.testing.assert_array_equal(stack(x)[0], a)
    seed_masks(stack, 2)
    assert not np.array_equal(stack(x)[0], a)
    stack.eval()  # eval mode: the identity between layers, no generator needed
    seed_masks(stack, 1)
    b = stack(x)[0]
    stack.train()
    stack.drops[0].p = 0.0
    np.testing.assert_array_equal(stack(x)[0], b)


def test_a_gradcheck_catches_a_gap_whose_backward_forgets_the_mask(monkeypatch):
    """Sequence path: a Dropout.backward that passes dy straight through."""
    rng = np.random.default_rng(1)
    stack = make_stack("lstm", dropout=0.4)
    x, state0 = rng.standard_normal((B, T, D)), random_state(stack, rng)
    monkeypatch.setattr(Dropout, "backward", lambda self, dy: (self._take_cache(), dy)[1])
    result = check_sequence(stack, x, state0, LENGTHS)
    assert not result.passed and result.max_error > 0.1
    assert "x" in result.failed and "layers.0.W_x" in result.failed
    assert "layers.1.W_x" not in result.failed  # above the gap all is right


def test_a_gradcheck_catches_a_step_backward_without_the_mask(monkeypatch):
    """Step path: the masks a step kept are dropped before its backward."""
    rng = np.random.default_rng(2)
    stack = make_stack("gru", dropout=0.4)
    x, state0 = rng.standard_normal((B, T, D)), random_state(stack, rng)
    right = StackedRNN.step_backward

    def forgets(self, dstate, cache, defer=None):
        return right(self, dstate, (cache[0], [None] * len(cache[1])), defer)

    monkeypatch.setattr(StackedRNN, "step_backward", forgets)
    result = check_steps(stack, x, state0)
    assert not result.passed and result.max_error > 0.1


def test_a_gradcheck_catches_a_layer_cut_off_from_the_one_above(monkeypatch):
    """Layer 1's input gradient lost: layer 0 and x go wrong, in both paths."""
    rng = np.random.default_rng(3)
    stack = make_stack("gru")
    x, state0 = rng.standard_normal((B, T, D)), random_state(stack, rng)
    top = stack.layers[1]
    right = type(top).backward

    def cut(dhs, dh_T=None):
        dx, dstate0 = right(top, dhs, dh_T)
        return np.zeros_like(dx), dstate0

    with monkeypatch.context() as m:
        m.setattr(top, "backward", cut)
        result = check_sequence(stack, x, state0, LENGTHS)
    assert not result.passed and "layers.0.W_h" in result.failed and "x" in result.failed
    assert result.max_error > 0.1
    monkeypatch.setattr("tinyattn.stacked.add_hidden", lambda dstate, dh: dstate)
    result = check_steps(stack, x, state0)
    assert not result.passed and result.max_error > 0.1


@pytest.mark.parametrize("kind", ["gru", "lstm", "bi_lstm"])
def test_stack_padding_invariance(kind):
    """Each example alone (unpadded) gives the padded batch's outputs, final
    states and gradients; pads output 0 and pass no gradient."""
    rng = np.random.default_rng(4)
    stack = make_stack(kind, num_layers=3)
    x = rng.standard_normal((B, T, D))
    x[1, 2:] = 1e3
    state0 = random_state(stack, rng)
    dhs = rng.standard_normal((B, T, stack.hidden_size))
    dfinal = random_state(stack, rng)

    def run(x, state0, lengths, dhs, dfinal):
        stack.zero_grad()
        hs, final = stack(x, state0, lengths)
        dx, dstate0 = stack.backward(dhs, dfinal)
        return (hs, _flatten(final), dx, _flatten(dstate0),
                {n: g.copy() for n, _, g in stack.named_parameters()})

    def rows(state, b):
        return StackState(tuple(s[b:b + 1] for s in st) if isinstance(st, tuple)
                          else st[b:b + 1] for st in state)

    hs, final, dx, dstate0, grads = run(x, state0, LENGTHS, dhs, dfinal)
    total = {n: np.zeros_like(g) for n, g in grads.items()}
    for b, L in enumerate(LENGTHS):
        hs_b, final_b, dx_b, dstate0_b, grads_b = run(
            x[b:b + 1, :L].copy(), rows(state0, b), None, dhs[b:b + 1, :L].copy(),
            rows(dfinal, b))
        np.testing.assert_allclose(hs[b:b + 1, :L], hs_b, rtol=1e-12, atol=1e-13)
        assert not hs[b, L:].any() and not dx[b, L:].any()
        np.testing.assert_allclose(dx[b:b + 1, :L], dx_b, rtol=1e-10, atol=1e-12)
        for got, want in zip(final + dstate0, final_b + dstate0_b):
            np.testing.assert_allclose(got[b:b + 1], want, rtol=1e-10, atol=1e-12)
        for n in total:
            total[n] += grads_b[n]
    for n in grads:
        np.testing.assert_allclose(grads[n], total[n], rtol=1e-10, atol=1e-12, err_msg=n)


def test_stack_names_sizes_and_bad_stacks():
    stack = make_stack("bi_lstm", num_layers=3, dropout=0.1)
    names = [n for n, _, _ in stack.named_parameters()]
    assert names[:3] == ["layers.0.fwd.W_x", "layers.0.fwd.W_h", "layers.0.fwd.b"]
    assert names[-1] == "layers.2.bwd.b" and len(names) == 18
    assert [n for n, _ in stack.named_modules()][-2:] == ["drops.0.", "drops.1."]
    assert (stack.input_size, stack.hidden_size, stack.num_layers) == (D, 2 * H, 3)
    assert stack.layers[1].input_size == 2 * H  # reads the 2H concatenation
    rng = np.random.default_rng(0)
    gru = ta.GRU(D, H, rng=rng)
    with pytest.raises(ValueError, match=r"layers\[1\].input_size must be the output size "
                                         r"of layers\[0\], 3, got 5"):
        StackedRNN([gru, ta.GRU(D, H, rng=rng)])
    with pytest.raises(ValueError, match="same object"):
        StackedRNN([gru, gru])
    with pytest.raises(ValueError, match="one class and dtype"):
        StackedRNN([gru, ta.LSTM(H, H, rng=rng)])
    with pytest.raises(TypeError, match=r"layers\[1\] must be an RNN, GRU, LSTM or "
                                        r"Bidirectional, got Linear"):
        StackedRNN([gru, ta.Linear(H, H, rng=rng)])
    with pytest.raises(TypeError, match="layers must be a non-empty list"):
        StackedRNN([])
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1"):
        StackedRNN([gru], dropout=1)
    with pytest.raises(TypeError, match=r"h0 must be None or a StackState of 2 per-layer "
                                        r"states \(bottom layer first\), got array"):
        make_stack("gru")(np.zeros((B, T, D)), np.zeros((B, H)))
    lstms = make_stack("lstm")
    pair = (np.zeros((B, H)), np.zeros((B, H)))  # one LSTM's (h, c): not a stack's state
    with pytest.raises(TypeError, match=r"h0 must be None or a StackState of 2"):
        lstms(np.zeros((B, T, D)), pair)
    with pytest.raises(ValueError, match=r"state0\[1\] \(c\) must have shape \(3, 3\), "
                                         r"got \(3, 4\)") as err:  # the LSTM's own name
        lstms(np.zeros((B, T, D)), StackState([pair, (pair[0], np.zeros((B, H + 1)))]))
    assert "raised by layers[1] of the StackedRNN" in str(err.value.__notes__)
    with pytest.raises(TypeError, match="Bidirectional layers has no step"):
        make_stack("bi_gru").step(np.zeros((B, D)), None)
    with pytest.raises(TypeError, match="ModuleList needs one or more Modules"):
        ModuleList([1])


def test_state_helpers_tell_a_stack_from_an_lstm_pair():
    h0, c0, h1, c1 = (np.full((1, 2), float(v)) for v in range(4))
    pair = (h0, c0)
    stack = StackState([(h0, c0), (h1, c1)])
    assert hidden(pair) is h0 and hidden(stack) is h1
    grown = add_hidden(stack, np.ones((1, 2)))
    assert isinstance(grown, StackState)
    np.testing.assert_array_equal(grown[1][0], h1 + 1)
    assert grown[0] == stack[0] and grown[1][1] is c1
    zeros = zeros_like_state(StackState([h0, h1]))
    assert isinstance(zeros, StackState) and not any(z.any() for z in zeros)
    # beam search's row selection keeps the type (a plain tuple would read as (h, c))
    picked = _take((StackState([np.arange(3)[:, None], np.arange(3)[:, None] * 2]),
                    np.arange(3)[:, None]), np.array([2, 2, 0]))
    assert type(picked) is tuple and isinstance(picked[0], StackState)
    np.testing.assert_array_equal(picked[0][1][:, 0], [4, 4, 0])
    assert repr(StackState([1])) == "StackState((1,))"


# ----- Seq2Seq(num_layers=2) ----------------------------------------------------
def make2(attention="bahdanau", cell="gru", dropout=0.0, seed=0, **kw):
    kw = {"emb_size": 3, "hidden_size": 2, **kw}
    return Seq2Seq(V_SRC, V_TGT, cell=cell, attention=attention, dropout=dropout,
                   num_layers=kw.pop("num_layers", 2), rng=np.random.default_rng(seed), **kw)


# no attention, Bahdanau, one Luong score (with and without input feeding),
# local-p; GRU and LSTM; with and without dropout (each attention once each)
MODELS = [(None, "gru", 0.0, {}), (None, "lstm", 0.3, {}),
          ("bahdanau", "gru", 0.3, {}), ("bahdanau", "lstm", 0.0, {"bidirectional": False}),
          ("general", "gru", 0.0, {}), ("general", "lstm", 0.3, {"input_feeding": True}),
          ("local-p", "gru", 0.0, {"window": 1}), ("local-p", "lstm", 0.3, {"window": 1})]


def _id(cfg):
    attention, cell, p, kw = cfg
    return "-".join([str(attention), cell, f"p{p}", *(f"{k}={v}" for k, v in kw.items())])


@pytest.mark.parametrize("cfg", MODELS, ids=_id)
def test_model_gradcheck_every_parameter(cfg):
    attention, cell, p, kw = cfg
    model = make2(attention, cell, p, **kw)
    names = [n for n, _, _ in model.named_parameters()]
    assert "encoder.layers.1.fwd.W_x" in names or not kw.get("bidirectional", True)
    assert "decoder.cell.layers.1.W_h" in names and "bridges.1.W" in names
    assert ("bridges_c.1.W" in names) == (cell == "lstm")
    result = _check_with_fixed_masks(model)
    assert result.passed, str(result)
    if p:  # the masks are fixed per seed and they matter
        model.seed_dropout(8)
        other = loss_of(model)
        model.seed_dropout(7)
        assert loss_of(model) != other


def test_model_gradcheck_catches_decoder_gaps_without_their_masks(monkeypatch):
    """The Bahdanau decoder steps the stack (masks kept in the step caches), the
    Luong decoder without input feeding runs it as a sequence (masks in the gaps'
    Dropout modules); a backward forgetting either fails the model's check."""
    model = make2("bahdanau", "gru", 0.3)
    right = StackedRNN.step_backward
    with monkeypatch.context() as m:
        m.setattr(StackedRNN, "step_backward", lambda self, d, cache, defer=None: right(
            self, d, (cache[0], [None] * len(cache[1])), defer))
        result = _check_with_fixed_masks(model)
    assert not result.passed and result.max_error > 0.1
    assert all(n.startswith(("decoder", "encoder", "bridge", "src_emb", "tgt_emb"))
               for n in result.failed)
    model = make2("local-p", "lstm", 0.3, window=1)
    for gap in (model.encoder.drops[0], model.decoder.cell.drops[0]):
        monkeypatch.setattr(gap, "backward", lambda dy, gap=gap: (gap._take_cache(), dy)[1])
    result = _check_with_fixed_masks(model)
    assert not result.passed and result.max_error > 0.1


def test_model_gradcheck_catches_an_upper_bridge_without_gradient(monkeypatch):
    """Decoder layer 1's initial state comes from encoder layer 1 through
    ``bridges.1``; dropping that path's gradient fails the check there."""
    model = make2("general", "gru")
    bridge = model.bridges[0]
    monkeypatch.setattr(bridge, "backward",
                        lambda dy: np.zeros_like(bridge._take_cache()))
    result = _check_with_fixed_masks(model)
    assert not result.passed and "encoder.layers.1.fwd.W_h" in result.failed
    assert result.max_error > 0.1


@pytest.mark.parametrize("cfg", MODELS, ids=_id)
def test_model_padding_invariance(cfg, monkeypatch):
    """The padded batch's loss and gradients are the token-weighted mean of each
    example's alone (masks that depend on position only, as in test_dropout)."""
    attention, cell, p, kw = cfg
    _masks_by_position(monkeypatch)
    assert_padding_invariant(make2(attention, cell, p, **kw))


@pytest.mark.parametrize("cfg", MODELS, ids=_id)
def test_decode_step_is_teacher_forcing(cfg, monkeypatch):
    """Fed the gold tokens, decode_step's log-probabilities are the log-softmax of
    the forward's logits at every step, and its attention rows the forward's
    (eval mode: no dropout)."""
    import tinyattn.seq2seq as s2s

    attention, cell, p, kw = cfg
    model = make2(attention, cell, p, **kw).eval()
    seen = {}
    loss_fn = s2s.sequence_cross_entropy

    def keep_logits(logits, *args, **kwargs):
        seen["logits"] = logits
        return loss_fn(logits, *args, **kwargs)

    monkeypatch.setattr(s2s, "sequence_cross_entropy", keep_logits)
    loss_of(model)
    # the forward's output layer runs on the real target tokens only: (1, N, V)
    real = np.arange(TGT.shape[1] - 1)[None, :] < np.asarray(TGT_LEN)[:, None]
    want = np.zeros(real.shape + seen["logits"].shape[-1:])
    want[real] = log_softmax(seen["logits"][0], axis=1)
    alphas = model.attention_weights
    memory, carry = model.start(SRC, SRC_LEN)
    assert isinstance(carry if attention in (None, "bahdanau") else carry[0], StackState)
    for t in range(TGT.shape[1] - 1):
        logp, carry, alpha = model.decode_step(TGT[:, t], memory, carry, t)
        np.testing.assert_allclose(logp[real[:, t]], want[real[:, t], t], rtol=1e-12,
                                   atol=1e-13)
        if alphas is not None:
            np.testing.assert_allclose(alpha, alphas[:, t], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("attention, cell", [("bahdanau", "lstm"), ("general", "gru"),
                                             (None, "gru"), ("local-p", "lstm")])
def test_beam_of_one_is_greedy_and_beams_are_consistent(attention, cell):
    """Beam search reorders every layer's state: each of 3 hypotheses'
    log-probability is that of decoding its own tokens alone."""
    model = make2(attention, cell, 0.3, seed=3, emb_size=4, hidden_size=3, window=1)
    greedy = model.greedy_decode(SRC, SRC_LEN, max_len=7, sos_id=SOS, eos_id=EOS)
    beam = model.beam_search(SRC, SRC_LEN, beam_size=1, max_len=7, sos_id=SOS, eos_id=EOS)
    for g, (b,) in zip(greedy, beam):
        assert g.tokens == b.tokens and g.logprob == pytest.approx(b.logprob, rel=1e-12)
    nbest = model.beam_search(SRC, SRC_LEN, beam_size=3, max_len=5, sos_id=SOS, eos_id=EOS,
                              length_penalty=0.6)
    assert_beams_rescore(model.eval(), nbest, 0.6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_decode_step_has_no_dropout_in_any_mode(num_layers):
    """The inference path never drops units (as with one layer, whose step has
    no dropout at all): decode_step in train mode equals eval mode's, and
    draws nothing from the dropout generator."""
    model = make2("bahdanau", "lstm", 0.5, num_layers=num_layers)

    def decode(train):
        model.seed_dropout(3)
        memory, carry = model.eval().start(SRC, SRC_LEN)  # the encoder alike in both
        model.train(train)  # only the steps run in train mode
        logps = []
        for t in range(3):
            logp, carry, _ = model.decode_step(TGT[:, t], memory, carry, t)
            logps.append(logp)
        return logps, model.src_drop.rng.random()

    (train_logps, train_next), (eval_logps, eval_next) = decode(True), decode(False)
    for a, b in zip(train_logps, eval_logps):
        np.testing.assert_array_equal(a, b)
    assert train_next == eval_next  # the generator is where seed_dropout left it


def test_decode_step_refuses_a_flattened_carry():
    model = make2("bahdanau", "lstm")
    memory, carry = model.start(SRC, SRC_LEN)
    assert isinstance(carry, StackState) and len(carry) == 2
    with pytest.raises(TypeError, match=r"carry must be a StackState of 2 \(the carry"):
        model.decode_step(TGT[:, 0], memory, tuple(carry), 0)
    with pytest.raises(TypeError, match=r"carry\[1\] must be a tuple of 2"):
        model.decode_step(TGT[:, 0], memory, StackState([carry[0], carry[1][0]]), 0)


@pytest.mark.parametrize("value", [0, 17, 1.5, True, "2", None, -1])
def test_bad_num_layers(value):
    with pytest.raises(ValueError,
                       match=re.escape(f"num_layers must be an int in 1..16, got {value!r}")):
        make2(num_layers=value)


def test_sixteen_layers_build_and_run():
    model = make2("dot", "gru", 0.1, num_layers=16)
    assert len(model.encoder.layers) == len(model.decoder.cell.layers) == 16
    assert len(model.bridges) == 15 and np.isfinite(loss_of(model))


def test_save_and_load_two_layers(tmp_path):
    model = make2("general", "lstm", 0.2, input_feeding=True)
    model.eval()
    want = loss_of(model)
    model.save(tmp_path / "m.npz")
    loaded = Seq2Seq.load(tmp_path / "m.npz").eval()
    assert loaded.config["num_layers"] == 2 and loss_of(loaded) == want
    one = make2("general", "lstm", 0.2, input_feeding=True, num_layers=1)
    with pytest.raises(ValueError, match="num_layers: model 1 vs checkpoint 2"):
        one.load_weights(tmp_path / "m.npz")


# ----- num_layers=1 is the model as it was ---------------------------------------
ONE_LAYER_NAMES = ["src_emb.W", "encoder.fwd.W_x", "encoder.fwd.W_h", "encoder.fwd.b",
                   "encoder.bwd.W_x", "encoder.bwd.W_h", "encoder.bwd.b", "bridge.W",
                   "bridge.b", "bridge_c.W", "bridge_c.b", "tgt_emb.W", "decoder.W_c",
                   "decoder.cell.W_x", "decoder.cell.W_h", "decoder.cell.b", "decoder.attn.W_a",
                   "decoder.out.W", "decoder.out.b"]


def test_one_layer_has_the_old_names_and_numbers():
    one = make2("general", "lstm", num_layers=1)
    default = Seq2Seq(V_SRC, V_TGT, emb_size=3, hidden_size=2, cell="lstm",
                      attention="general", rng=np.random.default_rng(0))
    assert [n for n, _, _ in one.named_parameters()] == ONE_LAYER_NAMES
    assert isinstance(one.encoder, ta.Bidirectional) and isinstance(one.decoder.cell, ta.LSTM)
    assert one.config["num_layers"] == default.config["num_layers"] == 1
    for (n, a, _), (_, b, _) in zip(one.named_parameters(), default.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    assert loss_of(one) == loss_of(default)


@pytest.mark.parametrize("name", ["gru_bahdanau", "lstm_general_feed"])
def test_checkpoints_from_before_num_layers_load_and_agree(name):
    """Two checkpoints written by the code before num_layers existed (commit
    be73c68: ``Seq2Seq(9, 10, emb_size=3, hidden_size=2, dropout=0.25,
    rng=default_rng(11))``, GRU + Bahdanau and LSTM + general with input
    feeding), with that code's training loss (dropout seeded with 4), every
    gradient and beam-search log-probabilities in their extras: this code
    loads them (no num_layers in their config), and gives the same numbers
    (bit for bit on the machine that wrote them; 1e-12 allows another BLAS)."""
    from tinyattn.training.checkpoint import load_checkpoint

    path = FIXTURES / f"seq2seq_{name}_before_num_layers.npz"
    stored = load_checkpoint(path)
    assert "num_layers" not in stored.config
    model = Seq2Seq.load(path)
    assert model.config["num_layers"] == 1 and model.config["bridge"] is True
    model.seed_dropout(4)
    loss, grads = grads_of(model)
    assert loss == pytest.approx(float(stored.extra["train_loss"]), rel=1e-12)
    assert sorted(grads) == sorted(k[len("grad/"):] for k in stored.extra if
                                   k.startswith("grad/"))
    for n, g in grads.items():
        np.testing.assert_allclose(g, stored.extra["grad/" + n], rtol=1e-10, atol=1e-13,
                                   err_msg=n)
    hyps = model.beam_search(SRC, SRC_LEN, beam_size=2, max_len=6, sos_id=1, eos_id=2)
    np.testing.assert_allclose([[h.logprob for h in hs] for hs in hyps],
                               stored.extra["beam_logprobs"], rtol=1e-12)
    fresh = Seq2Seq(**{k: v for k, v in model.config.items() if k != "dtype"},
                    rng=np.random.default_rng(0))
    fresh.load_weights(path)  # the upgraded stored config equals the model's


# ----- the command line ------------------------------------------------------------
def test_cli_num_layers(tmp_path, capsys):
    """--num-layers is checked before anything is written, stored in the run,
    and rebuilt by evaluate and --resume."""
    pytest.importorskip("matplotlib")
    from .cli_helpers import TINY, run_cli

    for bad, why in (("0", "expected an integer in 1..16, got 0"),
                     ("17", "expected an integer in 1..16, got 17"),
                     ("two", "expected an integer in 1..16, got 'two'")):
        with pytest.raises(SystemExit):
            run_cli(capsys, "train", "dates", "--out", tmp_path / "bad", "--num-layers", bad)
        assert f"argument --num-layers/--layers: {why}" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "two"
    args = ["dates", "--out", out, "--train-size", "96", "--num-layers", "2", "--dropout",
            "0.2", "--plots", "0", *TINY]
    code, _, err = run_cli(capsys, "train", *args, "--epochs", "1")
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["num_layers"] == 2 and "num_layers=2" in err
    code, text, err = run_cli(capsys, "evaluate", out, "--limit", "8", "--beam", "2")
    assert code == 0 and "exact match" in text, err
    code, _, err = run_cli(capsys, "train", *args, "--epochs", "2", "--resume")
    assert code == 0 and "resumed" in err and "epoch 2:" in err, err
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--resume",
                           "--num-layers", "1")
    assert code == 2 and "--num-layers 1 (run has 2)" in err
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--resume", "--no-bridge")
    assert code == 2 and "--no-bridge (the run was trained without it)" in err


def test_cli_no_bridge(tmp_path, capsys):
    """--no-bridge is stored in the run, and the model it builds has no bridge."""
    from tinyattn.cli.run import Run

    from .cli_helpers import TINY, run_cli

    out = tmp_path / "nb"
    code, _, err = run_cli(capsys, "train", "dates", "--out", out, "--train-size", "64",
                           "--plots", "0", "--no-bridge", "--epochs", "1", *TINY)
    assert code == 0 and "bridge=False" in err, err
    assert json.loads((out / "config.json").read_text())["model"]["bridge"] is False
    run = Run.open(out)
    assert not [n for n, _, _ in run.build_model(seed=0).named_parameters() if "bridge" in n]
