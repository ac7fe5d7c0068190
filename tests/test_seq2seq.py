"""Seq2Seq: gradients of every configuration, padding invariance, teacher
forcing vs step-by-step decoding, decoding, overfitting, bad input."""

import itertools

import numpy as np
import pytest

from tinyattn.decoding import gnmt_length_penalty
from tinyattn.gradcheck import TOL_MODEL, check_gradients
from tinyattn.seq2seq import ATTENTIONS, SIZED_ATTENTIONS, Seq2Seq

V_SRC, V_TGT, SOS, EOS = 9, 10, 1, 2
SRC = np.array([[3, 4, 5, 6], [6, 7, 8, 0]])
SRC_LEN = np.array([4, 3])
TGT = np.array([[SOS, 5, 6, 7, EOS], [SOS, 8, EOS, 0, 0]])
TGT_LEN = np.array([4, 2])

CONFIGS = [(a, c, f) for a, c, f in itertools.product(ATTENTIONS, ["gru", "lstm"], [False, True])
           if not (f and a in (None, "bahdanau"))]


def _ids(cfg):
    a, c, f = cfg
    return f"{a}-{c}" + ("-feed" if f else "")


def make(attention="bahdanau", cell="gru", input_feeding=False, seed=0, **kw):
    kw = {"emb_size": 3, "hidden_size": 2, "attn_size": 4, "window": 1, **kw}
    if attention not in SIZED_ATTENTIONS:
        del kw["attn_size"]  # the other attentions have no attention size and refuse one
    return Seq2Seq(V_SRC, V_TGT, cell=cell, attention=attention, input_feeding=input_feeding,
                   rng=np.random.default_rng(seed), **kw)


def loss_of(model, src=SRC, src_len=SRC_LEN, tgt=TGT, tgt_len=TGT_LEN):
    return model(src, src_len, tgt[:, :-1], tgt[:, 1:], tgt_len)


def grads_of(model, **kw):
    model.zero_grad()
    loss = loss_of(model, **kw)
    model.backward()
    return loss, {n: g.copy() for n, _, g in model.named_parameters()}


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_gradcheck_every_parameter(cfg):
    assert_gradients_checked(make(*cfg))


def assert_gradients_checked(model):
    """Centred differences agree with the backward for every parameter."""
    result = check_gradients(
        lambda: np.array(loss_of(model)),
        lambda d: {n: g * d for n, g in grads_of(model)[1].items()},
        {n: v for n, v, _ in model.named_parameters()}, tol=TOL_MODEL)
    assert result.passed, str(result)


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_random_direction_derivative(cfg):
    """(L(θ + εv) − L(θ − εv)) / 2ε equals ∇L · v along a random direction."""
    model = make(*cfg, emb_size=4, hidden_size=3)
    _, grads = grads_of(model)
    rng = np.random.default_rng(1)
    params = {n: v for n, v, _ in model.named_parameters()}
    direction = {n: rng.standard_normal(v.shape) for n, v in params.items()}
    eps = 1e-5

    def shift(scale):  # θ += scale · ε · v, in place
        for n, v in params.items():
            v += scale * eps * direction[n]

    shift(+1)
    plus = loss_of(model)
    shift(-2)
    minus = loss_of(model)
    shift(+1)
    numeric = (plus - minus) / (2 * eps)
    analytic = sum(float(np.sum(grads[n] * direction[n])) for n in params)
    assert abs(numeric - analytic) <= TOL_MODEL * max(abs(analytic), 1e-3)


@pytest.mark.parametrize("cfg", [("bahdanau", "gru", False), ("general", "lstm", True),
                                 ("local-p", "gru", False), (None, "lstm", False),
                                 ("concat", "gru", True), ("local-m", "lstm", True)], ids=_ids)
def test_padded_batch_equals_length_weighted_examples(cfg):
    assert_padding_invariant(make(*cfg))


def assert_padding_invariant(model):
    """The padded batch's loss and gradients are the token-weighted mean of each
    example's alone; garbage in a pad changes nothing."""
    src = SRC.copy()
    src[1, 3] = 5  # garbage in a pad must change nothing
    loss, grads = grads_of(model, src=src)
    n_tok = TGT_LEN.sum()
    want_loss, want = 0.0, {n: np.zeros_like(g) for n, g in grads.items()}
    for b in range(2):
        Ls, Lt = SRC_LEN[b], TGT_LEN[b]
        lb, gb = grads_of(model, src=SRC[b:b + 1, :Ls], src_len=[Ls],
                          tgt=TGT[b:b + 1, :Lt + 1], tgt_len=[Lt])
        want_loss += lb * Lt / n_tok
        for n in want:
            want[n] += gb[n] * Lt / n_tok
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for n in grads:
        np.testing.assert_allclose(grads[n], want[n], rtol=1e-9, atol=1e-13, err_msg=n)


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_teacher_forcing_equals_step_by_step(cfg):
    """Decoding one step at a time, fed the gold tokens, gives the training
    loss and the training attention weights."""
    model = make(*cfg)
    loss = loss_of(model)
    alphas = model.attention_weights
    nll, step_alphas = decode_gold(model)
    assert nll == pytest.approx(loss, rel=1e-12)
    assert (alphas is None) == (cfg[0] is None)
    for t, alpha in enumerate(step_alphas if alphas is not None else []):
        np.testing.assert_allclose(alpha, alphas[:, t], rtol=1e-12, atol=1e-15)


def decode_gold(model):
    """The mean NLL of TGT decoded one step at a time fed the gold tokens, and each
    step's attention weights."""
    memory, carry = model.start(SRC, SRC_LEN)
    nll, n, step_alphas = 0.0, 0, []
    for t in range(TGT.shape[1] - 1):
        logp, carry, alpha = model.decode_step(TGT[:, t], memory, carry, t)
        real = t < TGT_LEN
        nll -= logp[np.arange(2), TGT[:, t + 1]][real].sum()
        n += real.sum()
        step_alphas.append(alpha)
    return nll / n, step_alphas


@pytest.mark.parametrize("attention", ["bahdanau", "general", "local-p", None])
def test_beam_of_one_is_greedy(attention):
    model = make(attention, emb_size=4, hidden_size=3, seed=3)
    greedy = model.greedy_decode(SRC, SRC_LEN, max_len=7, sos_id=SOS, eos_id=EOS)
    beam = model.beam_search(SRC, SRC_LEN, beam_size=1, max_len=7, sos_id=SOS, eos_id=EOS)
    for g, (b,) in zip(greedy, beam):
        assert g.tokens == b.tokens
        assert g.logprob == pytest.approx(b.logprob, rel=1e-12)
        if attention is not None:
            np.testing.assert_allclose(g.attention, b.attention, rtol=1e-12)


def assert_beams_rescore(model, nbest, length_penalty):
    """Each hypothesis' log-probability, score and attention rows (when it
    attends) are those of decoding its own tokens alone with decode_step."""
    for b, hyps in enumerate(nbest):
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            tgt = np.array([[SOS, *h.tokens]])
            memory, carry = model.start(SRC[b:b + 1], SRC_LEN[b:b + 1])
            total = 0.0
            for t, tok in enumerate(h.tokens):
                logp, carry, alpha = model.decode_step(tgt[:, t], memory, carry, t)
                total += logp[0, tok]
                if alpha is not None:
                    np.testing.assert_allclose(h.attention[t], alpha[0, :SRC_LEN[b]],
                                               rtol=1e-10)
            assert h.logprob == pytest.approx(total, rel=1e-10)
            assert h.score == pytest.approx(
                total / gnmt_length_penalty(len(h.tokens), length_penalty), rel=1e-10)


def test_beam_hypotheses_are_consistent():
    """Each hypothesis' log-probability and attention rows are those of
    teacher-forcing its own tokens; hypotheses come best first."""
    model = make("bahdanau", emb_size=4, hidden_size=3, seed=5)
    nbest = model.beam_search(SRC, SRC_LEN, beam_size=3, max_len=5, sos_id=SOS, eos_id=EOS,
                              length_penalty=0.6)
    assert_beams_rescore(model, nbest, 0.6)
    assert all(h.attention.shape == (len(h.tokens), SRC_LEN[b])
               for b, hyps in enumerate(nbest) for h in hyps)


@pytest.mark.parametrize("attention", [a for a in ATTENTIONS])
def test_overfits_a_tiny_batch(attention):
    """Plain Adam on one batch of reversal examples drives the loss down."""
    rng = np.random.default_rng(0)
    src = rng.integers(3, V_SRC, (4, 5))
    tgt = np.concatenate([np.full((4, 1), SOS), src[:, ::-1], np.full((4, 1), EOS)], axis=1)
    model = make(attention, emb_size=8, hidden_size=8, attn_size=8, window=2)
    params = list(model.named_parameters())
    m = [np.zeros_like(v) for _, v, _ in params]
    s = [np.zeros_like(v) for _, v, _ in params]
    first = None
    for step in range(1, 151):
        model.zero_grad()
        loss = model(src, [5] * 4, tgt[:, :-1], tgt[:, 1:], [6] * 4)
        first = loss if first is None else first
        model.backward()
        for (_, v, g), mi, si in zip(params, m, s):
            mi[...] = 0.9 * mi + 0.1 * g
            si[...] = 0.999 * si + 0.001 * g * g
            v -= 0.03 * (mi / (1 - 0.9**step)) / (np.sqrt(si / (1 - 0.999**step)) + 1e-8)
    assert first > 1.5 and loss < 0.2, (first, loss)


def test_float32_model_stays_float32():
    model = make("general", dtype=np.float32, input_feeding=True)
    loss = loss_of(model)
    model.backward()
    assert isinstance(loss, float)
    for _, v, g in model.named_parameters():
        assert v.dtype == np.float32 and g.dtype == np.float32
    assert model.attention_weights.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda m: m(np.array([[3, 9]]), [2], TGT[:1, :-1], TGT[:1, 1:], [4]),
     r"src must be token ids in 0..8 .*got src\[0, 1\] = 9"),
    (lambda m: m(SRC, SRC_LEN, TGT[:, :-1] + 20, TGT[:, 1:], TGT_LEN),
     r"tgt_in must be token ids in 0..9 .*= 21"),
    (lambda m: m(SRC, [0, 3], TGT[:, :-1], TGT[:, 1:], TGT_LEN),
     r"src_lengths must be in 1..4 .*got src_lengths\[0\] = 0"),
    (lambda m: m(SRC, [5, 3], TGT[:, :-1], TGT[:, 1:], TGT_LEN),
     r"src_lengths must be in 1..4 .*= 5"),
    (lambda m: m(SRC, SRC_LEN, TGT[:, :-1], TGT[:, 1:], [4, 5]),
     r"tgt_lengths must be in 1..4 .*= 5"),
    (lambda m: m(SRC, SRC_LEN, TGT[:, :-1], TGT[:, 2:], TGT_LEN),
     r"tgt_out must have the shape of tgt_in \(2, 4\), got \(2, 3\)"),
    (lambda m: m(SRC[:1], SRC_LEN[:1], TGT[:, :-1], TGT[:, 1:], TGT_LEN),
     "same batch size"),
    (lambda m: m.beam_search(SRC, SRC_LEN, beam_size=0, max_len=3, sos_id=SOS, eos_id=EOS),
     "beam_size must be a positive int, got 0"),
    (lambda m: m.greedy_decode(SRC, SRC_LEN, max_len=3, sos_id=SOS, eos_id=10),
     r"eos_id must be an id in 0..9, got 10"),
    (lambda m: m.greedy_decode(SRC, SRC_LEN, max_len=3, sos_id=True, eos_id=EOS),
     r"sos_id must be an id in 0..9, got True"),
    (lambda m: m.backward(), "without a forward"),
])
def test_bad_input(call, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        call(make())


@pytest.mark.parametrize("kw, message", [
    ({"attention": "luong"}, r"attention must be one of .*got 'luong'"),
    ({"cell": "rnn"}, r"cell must be one of .*got 'rnn'"),
    ({"attention": "bahdanau", "input_feeding": True}, "input_feeding applies to Luong"),
    ({"pad_id": 12}, "pad_id must be an id in 0..8, got 12"),
])
def test_bad_options(kw, message):
    with pytest.raises(ValueError, match=message):
        make(**kw)


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_output_layer_on_real_tokens_only(cfg):
    """The decoders' ``rows``: the logits at the real target tokens are the
    full logits' rows there, and the backward from them is the backward from
    the full logits with zeros at the pads (every parameter, and d emb)."""
    attention, cell, feed = cfg
    rng = np.random.default_rng(5)
    results = []
    for rows in (None, TGT_LEN[:, None] > np.arange(TGT.shape[1] - 1)[None, :]):
        model = make(attention, cell, feed)
        enc_hs, state0, c, src_mask = model.encode(SRC, SRC_LEN)
        memory = model.decoder.prepare(enc_hs, src_mask, c)
        emb = model.tgt_emb(TGT[:, :-1])
        logits, _ = model.decoder(emb, memory, state0, rows=rows)
        results.append((rows, logits, model, emb))
    (_, full, m_full, _), (mask, part, m_part, _) = results
    np.testing.assert_allclose(part, full[mask], rtol=1e-13, atol=1e-14)
    dpart = rng.standard_normal(part.shape)
    dfull = np.zeros(full.shape)
    dfull[mask] = dpart
    demb_full, _, _ = m_full.decoder.backward(dfull)
    demb_part, _, _ = m_part.decoder.backward(dpart)
    np.testing.assert_allclose(demb_part, demb_full, rtol=1e-12, atol=1e-13)
    for (n, _, a), (_, _, b) in zip(m_part.decoder.named_parameters(),
                                    m_full.decoder.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=n)


# ----- bridge=False: the decoder starts from zeros ---------------------------------------
NO_BRIDGE = [("bahdanau", "gru", False, 1), ("general", "lstm", True, 1), (None, "lstm", False, 1),
             ("bahdanau", "gru", False, 2), ("local-p", "lstm", False, 2), (None, "gru", False, 2)]


def _nb_ids(cfg):
    return _ids(cfg[:3]) + f"-L{cfg[3]}"


def make_no_bridge(attention, cell, feed, layers, **kw):
    return make(attention, cell, feed, bridge=False, num_layers=layers, **kw)


@pytest.mark.parametrize("cfg", NO_BRIDGE, ids=_nb_ids)
def test_no_bridge_starts_from_zeros_with_no_bridge_parameters(cfg):
    model = make_no_bridge(*cfg)
    bridged = {n: v for n, v, _ in make(*cfg[:3], num_layers=cfg[3]).named_parameters()}
    names = [n for n, _, _ in model.named_parameters()]
    assert set(names) == {n for n in bridged if "bridge" not in n} != set(bridged)
    _, state0, _, _ = model.encode(SRC, SRC_LEN)
    parts = list(state0) if cfg[3] > 1 else [state0]
    assert len(parts) == cfg[3]
    for part in parts:  # each layer's state (an LSTM's h and c): zeros
        for a in (part if isinstance(part, tuple) else (part,)):
            assert a.shape == (2, model.encoder.hidden_size) and not a.any()
    for n, v, _ in model.named_parameters():  # the same initial weights, but for the bridge
        np.testing.assert_array_equal(v, bridged[n], err_msg=n)
    grads = grads_of(model)[1]  # the encoder still learns, through attention (or c)
    assert all(np.abs(g).max() > 0 for n, g in grads.items() if n.startswith("encoder."))


@pytest.mark.parametrize("cfg", NO_BRIDGE, ids=_nb_ids)
def test_no_bridge_gradcheck_every_parameter(cfg):
    assert_gradients_checked(make_no_bridge(*cfg))


@pytest.mark.parametrize("cfg", NO_BRIDGE, ids=_nb_ids)
def test_no_bridge_padding_and_step_by_step(cfg):
    """Padding invariance, and decoding step by step equals teacher forcing."""
    model = make_no_bridge(*cfg)
    assert_padding_invariant(model)
    assert decode_gold(model)[0] == pytest.approx(loss_of(model), rel=1e-12)


def test_no_bridge_checkpoint_round_trip_and_bad_value(tmp_path):
    model = make_no_bridge("bahdanau", "gru", False, 1)
    model.save(tmp_path / "m.npz")
    back = Seq2Seq.load(tmp_path / "m.npz")
    assert back.config["bridge"] is False
    assert loss_of(back) == loss_of(model)
    assert Seq2Seq.upgrade_config({"attention": "dot"})["bridge"] is True  # older configs
    with pytest.raises(TypeError, match="bridge must be True or False, got 'no'"):
        make(bridge="no")
