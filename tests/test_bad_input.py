"""Bad input gets an error naming the argument, the expected and the received
value (docs/design.md §5); nothing is silently broadcast."""

import re
import warnings

import numpy as np
import pytest

import tinyattn as ta
from tinyattn.recurrent import StackState
from tinyattn.stacked import StackedRNN

from .conftest import LAYERS, B, D, T, is_lstm, make_state


@pytest.fixture
def layer(layer_name, rng):
    return LAYERS[layer_name](rng, np.float64)


def _x(rng, shape=(B, T, D), dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def test_x_wrong_rank_or_size(layer, rng):
    with pytest.raises(ValueError, match=r"x must have shape \(\?, \?, 5\), got \(2, 4\)"):
        layer(_x(rng, (B, T)))
    with pytest.raises(ValueError, match=r"x must have shape \(\?, \?, 5\), got \(2, 4, 4\)"):
        layer(_x(rng, (B, T, 4)))
    with pytest.raises(TypeError, match="x must be a numpy ndarray, got list"):
        layer([[[0.0] * D]])


def test_x_dtype_mismatch_is_not_silently_cast(layer, rng):
    with pytest.raises(TypeError, match="x must have dtype float64.*got float32"):
        layer(_x(rng, dtype=np.float32))


def test_float32_layer_refuses_float64_input(layer_name, rng):
    layer = LAYERS[layer_name](rng, np.float32)
    with pytest.raises(TypeError, match="x must have dtype float32.*got float64"):
        layer(_x(rng))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_inputs(layer, rng, bad):
    x = _x(rng)
    x[1, 2, 3] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        layer(x)


def test_initial_state_wrong_shape(layer, rng):
    Hs = layer.hidden_size
    bad = np.zeros((B, Hs + 1))
    if isinstance(layer, StackedRNN):  # a StackState; each layer checks its own state
        state = make_state(layer, rng)
        with pytest.raises(TypeError, match=f"h0 must be None or a StackState of {len(state)}"):
            layer(_x(rng), tuple(state))  # a plain tuple could be one LSTM's (h, c)
        top = (state[-1][0], bad) if is_lstm(layer) else bad
        with pytest.raises(ValueError, match=rf"\(2, {Hs}\), got \(2, {Hs + 1}\)"):
            layer(_x(rng), StackState([*state[:-1], top]))
        return
    if is_lstm(layer):
        with pytest.raises(ValueError, match=rf"\(2, {Hs}\), got \(2, {Hs + 1}\)"):
            layer(_x(rng), (np.zeros((B, Hs)), bad))  # c0 wrong
        with pytest.raises(ValueError, match=rf"\(2, {Hs}\), got \(2, {Hs + 1}\)"):
            layer(_x(rng), (bad, np.zeros((B, Hs))))  # h0 wrong
        with pytest.raises(TypeError, match="tuple"):
            layer(_x(rng), np.zeros((B, Hs)))
    else:
        msg = rf"h0 must have shape \(2, {Hs}\), got \(2, {Hs + 1}\)"
        with pytest.raises(ValueError, match=msg):
            layer(_x(rng), bad)
        with pytest.raises(ValueError, match=rf"h0 must have shape \(2, {Hs}\), got \({Hs},\)"):
            layer(_x(rng), np.zeros(Hs))  # no broadcasting a single state


@pytest.mark.parametrize("lengths, message", [
    (np.array([0, 4]), r"lengths must be in 1..4 .*got lengths\[0\] = 0"),
    (np.array([2, 5]), r"lengths must be in 1..4 .*got lengths\[1\] = 5"),
    (np.array([2, 3, 4]), r"lengths must have shape \(2,\), got \(3,\)"),
    (np.array([2.0, 3.0]), r"lengths must hold integers, got dtype float64"),
])
def test_bad_lengths(layer, rng, lengths, message):
    with pytest.raises((ValueError, TypeError), match=message):
        layer(_x(rng), None, lengths)


def test_bad_upstream_gradients(layer, rng):
    layer(_x(rng))
    Hs = layer.hidden_size
    msg = rf"dhs must have shape \(2, 4, {Hs}\), got \(2, 3, {Hs}\)"
    with pytest.raises(ValueError, match=msg):
        layer.backward(np.zeros((B, T - 1, Hs)))
    layer(_x(rng))
    with pytest.raises(TypeError, match="dhs must have dtype float64"):
        layer.backward(np.zeros((B, T, Hs), np.float32))
    layer(_x(rng))
    dhs = np.zeros((B, T, Hs))
    dhs[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="dhs contains NaN"):
        layer.backward(dhs)


def test_empty_batch(layer, rng):
    with pytest.raises(ValueError, match="at least one sequence"):
        layer(np.zeros((0, T, D)))


@pytest.mark.parametrize("make, message", [
    (lambda r: ta.GRU(D, 3, reset_after="yes", rng=r), "reset_after must be True or False"),
    (lambda r: ta.LSTM(D, 0, rng=r), "hidden_size must be a positive int, got 0"),
    (lambda r: ta.RNN(2.5, 3, rng=r), "input_size must be a positive int, got 2.5"),
    (lambda r: ta.RNN(D, 3, rng=0), "rng must be a numpy.random.Generator"),
    (lambda r: ta.RNN(D, 3, rng=r, dtype=np.float16), "dtype must be np.float32 or np.float64"),
    (lambda r: ta.RNN(D, 3, rng=r, dtype="int"), "dtype must be np.float32 or np.float64"),
    (lambda r: ta.GRU(D, 3, rng=r, reset_before=True),
     "unexpected keyword argument 'reset_before'"),
    (lambda r: ta.Bidirectional(ta.GRU(D, 3, rng=r), ta.LSTM(D, 3, rng=r)), "must match"),
    (lambda r: ta.Bidirectional(ta.GRU(D, 3, rng=r),
                                ta.GRU(D, 3, reset_after=False, rng=r)), "must match"),
    (lambda r: ta.Bidirectional(ta.Linear(D, 3, rng=r), ta.Linear(D, 3, rng=r)),
     "must be an RNN, GRU or LSTM"),
])
def test_bad_options(make, message, rng):
    with pytest.raises((ValueError, TypeError), match=message):
        make(rng)


# ----- issue 11, D10: the Python API beyond the recurrent layers -----------------
from tinyattn import functional as F  # noqa: E402
from tinyattn.decoding import beam_search, gnmt_length_penalty, greedy_decode  # noqa: E402
from tinyattn.gradcheck import check_module  # noqa: E402
from tinyattn.metrics import corpus_bleu  # noqa: E402


def _ones_mask(b=1, t=1):
    return np.ones((b, t), bool)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cross_entropy_refuses_non_finite_logits(bad):
    logits = np.zeros((1, 2, 3))
    logits[0, 1, 2] = bad
    with pytest.raises(ta.NonFiniteError, match="logits contains NaN or inf"):
        ta.sequence_cross_entropy(logits, np.zeros((1, 2), int), _ones_mask(1, 2))


@pytest.mark.parametrize("logits, message", [
    (np.zeros((1, 1, 2), complex), "logits must have dtype float32 or float64, got complex128"),
    (np.zeros((1, 1, 2), object), "logits must have dtype float32 or float64, got object"),
    (np.zeros((1, 1, 2), int), "logits must have dtype float32 or float64, got int64"),
    ([[[0.0, 1.0]]], "logits must be a numpy ndarray of shape \\(B, T, V\\), got list"),
    (np.zeros((1, 2)), r"logits must have shape \(\?, \?, \?\), got \(1, 2\)"),
    (np.zeros((1, 1, 0)), r"logits must have at least one class"),
])
def test_cross_entropy_refuses_logits_that_are_not_real_arrays(logits, message):
    with pytest.raises((TypeError, ValueError), match=message):
        ta.sequence_cross_entropy(logits, np.zeros((1, 1), int), _ones_mask())


@pytest.mark.parametrize("targets, mask, message", [
    (None, _ones_mask(), "targets must hold integer token ids, got dtype object"),
    ([[0.5]], _ones_mask(), "targets must hold integer token ids, got dtype float64"),
    ([[0]], [[1]], r"mask must be a bool array of shape \(1, 1\), got int64"),
    ([[0]], [[True], [True, False]], "mask must be an array"),  # ragged: named, not numpy's
])
def test_cross_entropy_checks_targets_and_mask(targets, mask, message):
    with pytest.raises((TypeError, ValueError), match=message):
        ta.sequence_cross_entropy(np.zeros((1, 1, 2)), targets, mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_the_exact_loss_without_a_warning(dtype):
    big = np.finfo(dtype).max
    logits = np.array([[[big, -big, 0.0], [big, -big, 0.0]]], dtype)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        right, d_right = ta.sequence_cross_entropy(logits, np.array([[0, 0]]), _ones_mask(1, 2))
        zero, _ = ta.sequence_cross_entropy(logits, np.array([[2, 2]]), _ones_mask(1, 2))
        y = F.softmax(logits)
        logp = F.log_softmax(logits)
    assert right == 0.0 and np.isfinite(d_right).all()
    assert zero == float(big)  # -log p = max - 0 exactly (log(1 + e^-max) rounds away)
    np.testing.assert_array_equal(y, [[[1, 0, 0], [1, 0, 0]]])
    assert logp[0, 0, 0] == 0 and logp[0, 0, 2] == -big


def test_float32_logits_spanning_twice_their_range_still_give_a_finite_loss():
    big = np.finfo(np.float32).max
    logits = np.array([[[big, -big]]], np.float32)
    with np.errstate(all="raise"):
        loss, _ = ta.sequence_cross_entropy(logits, np.array([[1]]), _ones_mask())
    assert loss == 2 * float(big)  # computed in float64: no overflow


def test_a_loss_beyond_float64_is_a_non_finite_error_not_inf():
    big = np.finfo(np.float64).max
    with pytest.raises(ta.NonFiniteError, match="logits give an infinite loss"):
        ta.sequence_cross_entropy(np.array([[[big, -big]]]), np.array([[1]]), _ones_mask())


@pytest.mark.parametrize("x, axis, message", [
    ([1.0, 2.0], -1, "x must be a numpy ndarray, got list"),
    (np.array([1, 2]), -1, "x must have a float dtype, got int64"),
    (np.array([1j]), -1, "x must have a float dtype, got complex128"),
    (np.array([np.nan, 1.0]), -1, "x must not contain NaN or \\+inf"),
    (np.array([-np.inf, -np.inf]), -1, "nor a row of only -inf"),
    (np.ones((2, 3)), 2, r"axis must be an int in -2..1 \(x has 2 dims\), got 2"),
    (np.ones((2, 3)), 1.0, r"axis must be an int in -2..1 \(x has 2 dims\), got 1.0"),
])
def test_softmax_bad_input(x, axis, message):
    for fn in (F.softmax, F.log_softmax):
        with pytest.raises((TypeError, ValueError), match=message):
            fn(x, axis)


def test_softmax_still_gives_masked_minus_inf_weight_zero():
    assert F.softmax(np.array([-np.inf, 0.0])).tolist() == [0.0, 1.0]


def _model(**kw):
    kw = {"emb_size": 4, "hidden_size": 5, "rng": np.random.default_rng(0), **kw}
    return ta.Seq2Seq(11, 13, **kw)


@pytest.mark.parametrize("pad_id", [1.5, None, "0", True, -1, 11, np.float64(0.0)])
def test_seq2seq_pad_id_must_be_an_id(pad_id):
    with pytest.raises(ValueError, match=rf"pad_id must be an id in 0..10, "
                                         rf"got {re.escape(repr(pad_id))}"):
        _model(pad_id=pad_id)


@pytest.mark.parametrize("pad_id", [1.5, "0", True, -1, 5])
def test_embedding_pad_id_must_be_none_or_an_id(pad_id, rng):
    with pytest.raises(ValueError, match=rf"pad_id must be None or an id in 0..4, got "
                                         rf"{pad_id!r}"):
        ta.Embedding(5, 3, rng=rng, pad_id=pad_id)


def test_embedding_pad_id_none_still_means_no_pad_row(rng):
    emb = ta.Embedding(5, 3, rng=rng, pad_id=None)
    assert emb.pad_id is None and np.all(emb.params["W"] != 0)
    assert ta.Embedding(5, 3, rng=rng, pad_id=np.int64(2)).pad_id == 2


@pytest.mark.parametrize("kw, error, message", [
    ({"bidirectional": "no"}, TypeError, "bidirectional must be True or False, got 'no'"),
    ({"bidirectional": 0}, TypeError, "bidirectional must be True or False, got 0"),
    ({"attention": "dot", "input_feeding": "no"}, TypeError,
     "input_feeding must be True or False, got 'no'"),
    ({"attention": "dot", "window": -1}, ValueError, "window must be a positive int, got -1"),
    ({"attention": "dot", "window": "3"}, ValueError, "window must be a positive int, got '3'"),
    ({"attention": None, "window": True}, ValueError, "window must be a positive int, got True"),
    ({"attention": "local-m", "window": 2.0}, ValueError, "window must be a positive int"),
    ({"attention": "dot", "attn_size": 7}, ValueError,
     r"attn_size sizes the scoring layer of attention 'bahdanau', 'concat', 'local-p' "
     r"only; attention='dot' has no such layer"),
    ({"attention": "local-m", "attn_size": 7}, ValueError, "attention='local-m' has no"),
    ({"attention": None, "attn_size": 7}, ValueError, "attention=None has no"),
    ({"attention": "bahdanau", "attn_size": 0}, ValueError,
     "attn_size must be None or a positive int, got 0"),
    ({"attention": np.array(["dot"])}, ValueError, "attention must be one of"),
    ({"hidden_size": 10**30}, ValueError, r"hidden_size must be a positive int of at most"),
])
def test_seq2seq_options(kw, error, message):
    with pytest.raises(error, match=message):
        _model(**kw)


@pytest.mark.parametrize("attention", [None, "bahdanau", "dot", "general", "scaled_dot"])
def test_a_valid_window_with_global_attention_builds_as_old_configs_need(attention):
    """The CLI and every existing checkpoint pass window=3 whatever the attention
    (SavesCheckpoints.load calls cls(**config)): it is checked, not refused."""
    model = _model(attention=attention, window=3, attn_size=None)
    again = ta.Seq2Seq(**{**model.config, "dtype": np.float64,
                          "rng": np.random.default_rng(1)})
    assert again.config == model.config and model.config["window"] == 3


SRC, SRC_LEN = np.array([[3, 4, 5], [6, 7, 0]]), np.array([3, 2])
DECODE = dict(max_len=3, sos_id=1, eos_id=2)


@pytest.mark.parametrize("penalty", ["x", np.nan, np.inf, 1e6, -1e6, -0.5, 10.5, None, True,
                                     1j, [1.0]])
def test_beam_search_length_penalty_is_a_number_in_0_to_10(penalty):
    with pytest.raises(ValueError, match=rf"length_penalty must be a number in \[0, 10\], "
                                         rf"got {re.escape(repr(penalty))}"):
        beam_search(_model(), SRC, SRC_LEN, beam_size=2, length_penalty=penalty, **DECODE)


def test_beam_search_length_penalty_range_ends_are_accepted():
    for penalty in (0, 10, np.float32(0.6)):
        beam_search(_model(), SRC, SRC_LEN, beam_size=2, length_penalty=penalty, **DECODE)
    assert gnmt_length_penalty(5, 1.0) == pytest.approx(10 / 6)
    with pytest.raises(ValueError, match="alpha must be a number in"):
        gnmt_length_penalty(5, float("nan"))


@pytest.mark.parametrize("trace", ["x", (), {}, 3])
def test_beam_search_trace_is_none_or_a_list(trace):
    with pytest.raises(TypeError, match="trace must be None or a list"):
        beam_search(_model(), SRC, SRC_LEN, beam_size=2, trace=trace, **DECODE)


@pytest.mark.parametrize("call, error, message", [
    (lambda m: greedy_decode("x", SRC, SRC_LEN, **DECODE), TypeError,
     "model must follow the model protocol"),
    (lambda m: greedy_decode(m, SRC[0], SRC_LEN, **DECODE), ValueError,
     r"src must have shape \(None, None\), got \(3,\)"),
    (lambda m: beam_search(m, 5, SRC_LEN, beam_size=2, **DECODE), ValueError,
     r"src must have shape \(None, None\), got \(\)"),
    (lambda m: beam_search(m, SRC, None, beam_size=2, **DECODE), TypeError,
     "src_lengths must hold integers"),
    (lambda m: beam_search(m, SRC, [3, 4], beam_size=2, **DECODE), ValueError,
     r"src_lengths must be in 1..3"),
    (lambda m: beam_search(m, SRC, SRC_LEN, beam_size=2.0, **DECODE), ValueError,
     "beam_size must be a positive int"),
    (lambda m: beam_search(m, SRC, SRC_LEN, beam_size=10**30, **DECODE), ValueError,
     "beam_size must be a positive int of at most"),
    (lambda m: beam_search(m, SRC, SRC_LEN, beam_size=2, n_best=0, **DECODE), ValueError,
     "n_best must be a positive int, got 0"),
    (lambda m: greedy_decode(m, SRC, SRC_LEN, max_len=10**30, sos_id=1, eos_id=2), ValueError,
     "max_len must be a positive int of at most"),
    (lambda m: greedy_decode(m, SRC, SRC_LEN, max_len=3, sos_id=1.0, eos_id=2), ValueError,
     r"sos_id must be an id in 0..12, got 1.0"),
])
def test_decoding_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call(_model())


@pytest.mark.parametrize("y_prev, error, message", [
    (np.array([13, 1]), ValueError, r"y_prev must be token ids in 0..12 .*y_prev\[0\] = 13"),
    (np.array([1, -1]), ValueError, r"y_prev must be token ids in 0..12 .*y_prev\[1\] = -1"),
    (np.array([1.0, 2.0]), TypeError, "y_prev must hold integer token ids, got dtype float64"),
    (np.array([1, 2, 3]), ValueError, r"y_prev must have shape \(2,\), got \(3,\)"),
])
@pytest.mark.parametrize("attention", [None, "bahdanau", "general"])
def test_decode_step_checks_y_prev(attention, y_prev, error, message):
    model = _model(attention=attention)
    memory, carry = model.start(SRC, SRC_LEN)
    with pytest.raises(error, match=message):
        model.decode_step(y_prev, memory, carry, 0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_decode_step_checks_t_memory_and_carry(cell):
    model = _model(attention="general", input_feeding=True, cell=cell)
    memory, carry = model.start(SRC, SRC_LEN)
    y = np.array([1, 1])
    with pytest.raises(ValueError, match="t must be an int in 0..16777216, got -1"):
        model.decode_step(y, memory, carry, -1)
    with pytest.raises(TypeError, match="memory must be the Memory that start"):
        model.decode_step(y, "memory", carry, 0)
    with pytest.raises(TypeError, match="carry must be a tuple of 2"):
        model.decode_step(y, memory, None, 0)
    with pytest.raises(ValueError, match=r"carry\[1\] must have shape \(2, 10\)"):
        model.decode_step(y, memory, (carry[0], carry[1][:, :3]), 0)
    model.decode_step(y, memory, carry, 0)  # the carry start() gave is accepted


def test_bidirectional_refuses_one_layer_twice(rng):
    gru = ta.GRU(D, 3, rng=rng)
    with pytest.raises(ValueError, match="forward_layer and backward_layer must be two "
                                         "separate layers .* the same GRU object twice"):
        ta.Bidirectional(gru, gru)


def _quad(rng):
    lin = ta.Linear(2, 3, rng=rng)
    lin.grads["W"][...] = 1.0
    lin.grads["b"][...] = 1.0
    return lin


@pytest.mark.parametrize("make", [lambda p: ta.SGD(p, lr=0.1),
                                  lambda p: ta.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: ta.Adam(p)], ids=["sgd", "momentum", "adam"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_optimizer_step_refuses_non_finite_gradients_before_touching_anything(make, bad, rng):
    lin = _quad(rng)
    opt = make(lin)
    lin.grads["b"][1] = bad
    before = opt.state_dict(), {n: v.copy() for n, v, _ in lin.named_parameters()}
    with pytest.raises(ta.NonFiniteError, match=r"the gradient of 'b' contains NaN or inf; "
                                                r"\w+\.step\(\) updated no parameter"):
        opt.step()
    for name, value, _ in lin.named_parameters():
        np.testing.assert_array_equal(value, before[1][name])
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, before[0][key])
    assert issubclass(ta.NonFiniteError, ValueError)


def test_adam_load_state_dict_bad_state(rng):
    opt = ta.Adam(_quad(rng))
    good = opt.state_dict()
    with pytest.raises(TypeError, match="state must be a mapping .* got str"):
        opt.load_state_dict("x")
    cases = [({**good, "m/W": np.full((2, 3), np.nan)}, "m/W: contains NaN or inf"),
             ({**good, "v/b": np.full(3, np.inf)}, "v/b: contains NaN or inf"),
             ({**good, "v/b": -np.ones(3)}, "v/b: holds a negative value"),
             ({**good, "m/W": np.zeros((3, 2))}, r"m/W: expected shape \(2, 3\)"),
             ({k: v for k, v in good.items() if k != "eps"}, r"missing keys \['eps'\]"),
             ({**good, "lr": np.array(np.nan)}, "lr must be a number in"),
             ({**good, "t": np.array([1, 2])}, "t: expected shape")]
    for state, message in cases:
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(state)


def test_step_decay_bad_input(rng):
    with pytest.raises(TypeError, match="optimizer must be an SGD or Adam optimiser, got str"):
        ta.StepDecay("adam", step_size=1, gamma=0.5)
    sched = ta.StepDecay(ta.SGD(_quad(rng), lr=0.1), step_size=1, gamma=0.5)
    with pytest.raises(TypeError, match="state must be a mapping"):
        sched.load_state_dict([1, 2])
    with pytest.raises(ValueError, match="state_dict must be"):
        sched.load_state_dict({"base_lr": np.array(0.1), "epoch": np.array([1, 2])})
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\], got nan"):
        ta.StepDecay(ta.SGD(_quad(rng), lr=0.1), step_size=1, gamma=float("nan"))


@pytest.mark.parametrize("params", ["W", 3, {"W": 1}])
def test_optimizer_params_must_be_named_parameters(params):
    with pytest.raises(TypeError, match="params must be a Module or an iterable of"):
        ta.SGD(params, lr=0.1)


def test_clip_grad_norm_names_every_non_finite_parameter(rng):
    lin = _quad(rng)
    lin.grads["W"][0, 0] = np.nan
    lin.grads["b"][0] = np.inf
    with pytest.raises(ta.NonFiniteError, match=r"the gradient of 'W', 'b' contains NaN or inf"):
        ta.clip_grad_norm(lin, 1.0)


def test_clip_grad_norm_of_finite_but_huge_gradients_is_exact(rng):
    lin = _quad(rng)
    lin.grads["W"][...] = 1e300
    lin.grads["b"][...] = 0.0
    with np.errstate(all="raise"):
        norm = ta.clip_grad_norm(lin, 1.0)
    assert norm == pytest.approx(1e300 * np.sqrt(6), rel=1e-12)
    assert np.sqrt((lin.grads["W"] ** 2).sum()) == pytest.approx(1.0)


def test_check_module_bad_input(rng):
    with pytest.raises(TypeError, match="module must be a tinyattn Module .* got str"):
        check_module("x")
    lin = ta.Linear(2, 2, rng=rng)
    with pytest.raises(TypeError, match="names must be a list of str, one per argument"):
        check_module(lin, np.ones((1, 2)), names=[3])
    with pytest.raises(ValueError, match=r"tol must be a number in \(0, inf\), got nan"):
        check_module(lin, np.ones((1, 2)), tol=float("nan"))


@pytest.mark.parametrize("call, error, message", [
    (lambda r: ta.Linear(2, 2, rng=r, bias="no"), TypeError, "bias must be True or False"),
    (lambda r: ta.RNN(2, 2, rng=r, fused=np.float64(1.0)), TypeError, "fused must be True or "),
    (lambda r: ta.GRU(2, 2, rng=r, dtype=np.float64(np.nan)), TypeError,
     "dtype must be np.float32 or np.float64"),
    (lambda r: ta.GRU(2, 2, rng=r, dtype=np.zeros(2)), TypeError, "dtype must be np.float32"),
    (lambda r: ta.LSTM(10**30, 2, rng=r), ValueError, "input_size must be a positive int of at"),
    (lambda r: ta.Embedding(2**40, 2, rng=r), ValueError, "num_embeddings must be a positive"),
    (lambda r: ta.SelfAttention(2, 2, 2.0, rng=r), ValueError, "d_v must be a positive int"),
    (lambda r: ta.LocalAttention(3, 3, mode="local-m", window=2, attn_size="4", rng=r),
     ValueError, "attn_size must be None or a positive int, got '4'"),
    (lambda r: ta.LuongAttention(3, 3, score=["dot"], rng=r), ValueError,
     r"score must be one of .* got \['dot'\]"),
    (lambda r: ta.Adam(_quad(r), eps=float("nan")), ValueError, "eps must be a number in"),
    (lambda r: ta.SGD(_quad(r), lr=True), ValueError, r"lr must be a number in \(0, inf\), got "
                                                      r"True"),
])
def test_more_constructor_arguments(call, error, message, rng):
    with pytest.raises(error, match=message):
        call(rng)


@pytest.mark.parametrize("kw, error, message", [
    ({"hyps": [[None]]}, TypeError, r"hyps\[0\]\[0\] must be a token \(str or int\), got None"),
    ({"hyps": [[1.5]]}, TypeError, r"hyps\[0\]\[0\] must be a token \(str or int\), got 1.5"),
    ({"refs": [[{}]]}, TypeError, r"refs\[0\]\[0\] must be a token"),
    ({"max_order": 10**30}, ValueError, r"max_order must be an int in 1..100"),
    ({"smooth": np.array(["exp"])}, ValueError, "smooth must be one of"),
])
def test_bleu_bad_input(kw, error, message):
    args = {"hyps": [["a", "b"]], "refs": [["a", "b"]], **kw}
    with pytest.raises(error, match=message):
        corpus_bleu(args.pop("hyps"), args.pop("refs"), **args)


@pytest.fixture
def plot_alignment():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyattn.plot import plot_alignment

    yield plot_alignment
    plt.close("all")


@pytest.mark.parametrize("kw, error, message", [
    ({"alpha": np.full((2, 2), 0.5 + 0j)}, TypeError,
     "alpha must hold real numbers, got dtype complex128"),
    ({"alpha": [[0.5, 0.5], [0.5]]}, ValueError, r"alpha must be an array \(equal-length rows\)"),
    ({"gold": [(0.5, 1.5), None]}, TypeError,
     r"gold\[0\] must be None or a \(start, end\) pair of ints, got \(0.5, 1.5\)"),
    ({"gold": [3, None]}, TypeError, r"gold\[0\] must be None or a \(start, end\) pair of ints, "
                                     r"got 3"),
    ({"gold": 3}, TypeError, "gold must be a sequence of"),
    ({"positions": [np.nan, 1.0]}, ValueError,
     r"positions must be a finite array of shape \(2,\), got NaN or inf at positions\[0\]"),
    ({"positions": [1j, 1.0]}, TypeError, "positions must hold real numbers"),
    ({"src_tokens": "ab"}, TypeError, "src_tokens must be a sequence of tokens"),
    ({"ax": "left"}, TypeError, "ax must be None or a matplotlib Axes, got str"),
    ({"cmap": "nonesuch"}, ValueError, "cmap must be a matplotlib colormap name"),
    ({"title": 3}, TypeError, "title must be None or a str, got int"),
    ({"path": 3}, TypeError, r"path must be a file path \(str or os.PathLike\) ending in "),
])
def test_plot_alignment_bad_input(plot_alignment, kw, error, message):
    args = {"alpha": np.full((2, 2), 0.5), "src_tokens": ["a", "b"], "tgt_tokens": ["c", "d"],
            **kw}
    with pytest.raises(error, match=message):
        plot_alignment(args.pop("alpha"), args.pop("src_tokens"), args.pop("tgt_tokens"), **args)
