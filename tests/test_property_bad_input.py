"""Property: every public constructor and entry point answers a malformed argument
with a ValueError or TypeError raised by tinyattn itself (not from inside NumPy,
matplotlib or a builtin) whose message names the argument (docs/design.md §5).

Each entry of `ENTRIES` is a callable, a factory of valid keyword arguments and,
per argument, a strategy of malformed values for it; a test draws one argument
and one malformed value, and calls with every other argument valid.
"""

import math
import os
import re
import traceback
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyattn as ta
from tinyattn import functional as F
from tinyattn._validate import MAX_DIM
from tinyattn.attention import BahdanauAttention, LuongAttention
from tinyattn.decoding import beam_search, greedy_decode
from tinyattn.gradcheck import check_module
from tinyattn.local_attention import LocalAttention
from tinyattn.metrics import corpus_bleu
from tinyattn.training.trainer import Trainer

PACKAGE = os.path.dirname(os.path.abspath(ta.__file__)) + os.sep


# ----- malformed values, by what the argument expects ------------------------------
class _Thing:
    def __repr__(self):
        return "<thing>"


JUNK = [True, False, np.True_, "3", "x", "", b"3", 1j, 3 + 0j, [3], (3,), {"a": 1}, _Thing(),
        np.array(3), np.array([3]), np.array(["a"]), np.array([None], dtype=object),
        np.random.RandomState(0)]
NON_FINITE = [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")]


def _anything_but(*valid, valid_if=lambda v: False):
    """Junk and None, minus the values valid for this argument: ``valid`` (by identity)
    and those for which ``valid_if`` holds."""
    return st.sampled_from([v for v in [None, *JUNK]
                            if not any(v is w for w in valid) and not valid_if(v)])


fractional = st.floats(-1e6, 1e6).filter(lambda v: not v.is_integer())
integral_floats = st.integers(-5, 100).flatmap(
    lambda i: st.sampled_from([float(i), np.float64(i), np.float32(i)]))
numeric_strings = st.integers(-3, 100).map(str)
bools = st.sampled_from([True, False, np.True_, np.False_])


def size(low=1, cap=MAX_DIM, none_ok=False):
    """Malformed values for an int in ``low..cap`` (no upper end when cap is None)."""
    parts = [_anything_but(*([None] if none_ok else [])), bools, fractional, integral_floats,
             numeric_strings, st.sampled_from(NON_FINITE),
             st.integers(-(2**70), low - 1).map(lambda i: np.int64(i) if abs(i) < 2**62 else i)]
    if cap is not None:
        parts.append(st.integers(cap + 1, 2**200))
    return st.one_of(parts)


def _in(v, interval):
    lo, hi = (float(x) for x in interval[1:-1].split(","))
    try:
        v = float(v)
    except OverflowError:
        v = math.inf if v > 0 else -math.inf
    return ((v > lo if interval[0] == "(" else v >= lo)
            and (v < hi if interval[-1] == ")" else v <= hi))


def real(interval):
    """Malformed values for a real number in ``interval`` ("(0, inf)", "[0, 10]")."""
    numbers = st.one_of(st.floats(allow_nan=False), st.integers(-(2**1100), 2**1100),
                        st.floats(width=32).map(np.float32), st.integers(-50, 50).map(np.int64))
    return st.one_of(_anything_but(), bools, numeric_strings, st.complex_numbers(max_magnitude=10),
                     st.one_of(numbers, st.sampled_from(NON_FINITE)).filter(
                         lambda v: not _in(v, interval)))


def token_id(vocab, none_ok=False):
    """Malformed values for one token id in ``0..vocab - 1``."""
    return st.one_of(_anything_but(*([None] if none_ok else [])), bools, fractional,
                     integral_floats, numeric_strings, st.sampled_from(NON_FINITE),
                     st.integers(max_value=-1), st.integers(min_value=vocab))


def boolean():
    return st.one_of(_anything_but(True, False, np.True_),
                     st.sampled_from([0, 1, 0.0, 1.0, "True", "no", np.int64(1)]))


def option(choices, none_ok=False):
    texts = st.text(max_size=8).filter(lambda s: s not in choices)
    wrapped = [c for c in choices if c is not None]
    return st.one_of(texts, _anything_but(*([None] if none_ok else [])),
                     st.integers(-2, 9), st.sampled_from(
                         [[wrapped[0]], np.array([wrapped[0]]), wrapped[0].upper(),
                          wrapped[0].encode(), np.array(wrapped[0])]))


def rng():
    return st.one_of(_anything_but(), st.integers(0, 2**40),
                     st.sampled_from([np.random.PCG64(0), np.random]))


def dtype():
    return st.sampled_from(["int", "float16", np.float16, np.int32, int, complex,
                            np.complex128, object, _Thing(), 3, True, np.float64(1.0),
                            np.zeros(2), "x", "float128"])


def _wrong_shapes(shape):
    out = [shape[:-1], shape + (1,), tuple(s + 1 for s in shape)]
    if len(shape) > 1:
        out.append(shape[::-1] if shape[::-1] != shape else shape[:1] + (shape[1] + 2,))
    return [s for s in out if s != shape]


def float_array(shape, dtype=np.float64, *, any_float=False, unit=False, array_like=False,
                free_sizes=False):
    """Malformed values for a float ndarray of ``shape`` (``dtype``, or any float32 or
    float64 when ``any_float``), finite (in [0, 1] when ``unit``); with ``array_like``
    any real array_like (lists, ints, any float dtype) is valid; with ``free_sizes`` only
    the number of dims is fixed."""
    base = np.full(shape, 0.5)
    bad = [None, "x", 3.0, base.astype(object), base.astype(complex), base.astype(bool),
           base.astype(str), [[0.5, 0.5], [0.5]]]
    bad += [np.full(s, 0.5, dtype) for s in _wrong_shapes(shape)
            if not (free_sizes and len(s) == len(shape))]
    if not array_like:
        bad += [base.tolist(), base.astype(np.int64)]
        if not any_float:
            bad.append(base.astype(np.float32 if dtype == np.float64 else np.float64))
        else:
            bad.append(base.astype(np.float16))
    for v in [np.nan, np.inf, -np.inf] + ([1.5, -0.5] if unit else []):
        a = base.astype(dtype)
        a.flat[-1] = v
        bad.append(a)
    return st.sampled_from(bad)


def ids(shape, vocab, *, free_sizes=False):
    """Malformed values for an int array of token ids in ``0..vocab - 1``; with
    ``free_sizes`` only the number of dims is fixed."""
    good = np.ones(shape, np.int64)
    bad = [None, "x", 3.0, good.astype(float), good.astype(bool), good.astype(object),
           good.astype(str), good.astype(complex)]
    bad += [np.ones(s, np.int64) for s in _wrong_shapes(shape)
            if not (free_sizes and len(s) == len(shape))]
    for v in (vocab, vocab + 7, -1, -(2**40)):
        a = good.copy()
        a.flat[-1] = v
        bad.append(a)
    return st.sampled_from(bad)


def lengths(batch, steps):
    good = np.full(batch, steps)
    bad = [None, "x", good.astype(float), good.astype(object), good.astype(bool),
           np.full(batch + 1, steps), np.zeros(batch, int), np.full(batch, steps + 1),
           [[steps]] * batch, [steps, [steps]]]
    return st.sampled_from(bad)


def mask(shape):
    good = np.ones(shape, bool)
    bad = [None, "x", good.astype(int), good.astype(float), good.astype(object),
           np.zeros(shape, bool)]  # all False: nothing to score
    bad += [np.ones(s, bool) for s in _wrong_shapes(shape)]
    return st.sampled_from(bad)


# ----- the table -------------------------------------------------------------------
class Entry(NamedTuple):
    call: object  # callable(**kwargs)
    valid: object  # () -> dict of valid keyword arguments
    bad: dict  # argument -> strategy of malformed values
    names: dict = {}  # argument -> the name its message uses, when another


def R():
    return np.random.default_rng(0)


def _layer_args(**extra):
    return lambda: {"input_size": 3, "hidden_size": 4, "rng": R(), **extra}


LAYER_BAD = {"input_size": size(), "hidden_size": size(), "rng": rng(), "dtype": dtype()}

_MODEL = ta.Seq2Seq(11, 13, emb_size=4, hidden_size=3, attention="general", input_feeding=True,
                    rng=R())
_SRC, _SRC_LEN = np.array([[3, 4, 5], [6, 7, 0]]), np.array([3, 2])
_MEMORY, _CARRY = _MODEL.start(_SRC, _SRC_LEN)
_DECODE = {"model": _MODEL, "src": _SRC, "src_lengths": _SRC_LEN, "max_len": 3, "sos_id": 1,
           "eos_id": 2}
_ALPHA = np.full((2, 3), 1 / 3)
_OTHER_GRU = ta.GRU(3, 5, rng=R())
_SAME = object()  # stands for "the forward layer itself"


def _bidirectional(forward_layer, backward_layer):
    return ta.Bidirectional(forward_layer,
                            forward_layer if backward_layer is _SAME else backward_layer)


def _linear_params():
    lin = ta.Linear(2, 3, rng=R())
    lin.grads["W"][...] = 1.0
    return lin


def _load_adam_state(state):
    ta.Adam(_linear_params()).load_state_dict(state)


def _adam_states():
    good = ta.Adam(_linear_params()).state_dict()
    bad = [{**good, "m/W": np.full((2, 3), np.nan)}, {**good, "v/b": -np.ones(3)},
           {**good, "m/W": np.zeros((3, 2))}, {k: v for k, v in good.items() if k != "t"},
           {**good, "extra": np.zeros(1)}, {**good, "lr": np.array(-1.0)},
           {**good, "t": np.array(1.5)}, {**good, "optimizer": np.array("SGD")}]
    return st.one_of(_anything_but(), st.sampled_from(bad))


def _tiny_seq2seq():
    return ta.Seq2Seq(6, 6, emb_size=2, hidden_size=2, attention="dot", rng=R())


def _trainer_args():
    model = _tiny_seq2seq()
    return {"model": model, "optimizer": ta.Adam(model.named_parameters()), "pad_id": 0,
            "sos_id": 1, "eos_id": 2, "rng": R(), "show_progress": False}


_PAIRS = [([3, 4], [5]), ([4], [3, 5])]


def _fit(**kw):
    Trainer(**_trainer_args()).fit(**kw)


def _pairs_lists():
    return st.one_of(_anything_but(), st.sampled_from(
        [[], "ab", [([3], [4], [5])], [([], [4])], [([3.0], [4])], [([3], [-1])], [[3, 4]],
         [([True], [4])], {"a": 1}]))


def _plot_alignment(**kw):
    pytest.importorskip("matplotlib").use("Agg")
    from tinyattn.plot import plot_alignment

    return plot_alignment(**kw)


def _bleu_corpus(*bad):
    return st.one_of(_anything_but(), st.sampled_from(
        ["a b", [["a", None]], [[1.5]], [[{}]], [["a"], ["b"]], [], [b"ab"], [True], *bad]))


ENTRIES = {
    "RNN": Entry(ta.RNN, _layer_args(), {**LAYER_BAD, "fused": boolean()}),
    "GRU": Entry(ta.GRU, _layer_args(), {**LAYER_BAD, "fused": boolean(),
                                         "reset_after": boolean()}),
    "LSTM": Entry(ta.LSTM, _layer_args(), LAYER_BAD),
    "Bidirectional": Entry(
        _bidirectional,
        lambda: {"forward_layer": ta.GRU(3, 4, rng=R()), "backward_layer": ta.GRU(3, 4, rng=R())},
        {"forward_layer": _anything_but(), "backward_layer": st.one_of(
            _anything_but(), st.sampled_from([_SAME, _OTHER_GRU, ta.Linear(3, 4, rng=R()),
                                              ta.LSTM(3, 4, rng=R())]))}),
    "Linear": Entry(ta.Linear, lambda: {"in_size": 2, "out_size": 3, "rng": R()},
                    {"in_size": size(), "out_size": size(), "rng": rng(), "bias": boolean(),
                     "dtype": dtype()}),
    "Embedding": Entry(ta.Embedding, lambda: {"num_embeddings": 5, "embedding_dim": 3, "rng": R()},
                       {"num_embeddings": size(), "embedding_dim": size(), "rng": rng(),
                        "pad_id": token_id(5, none_ok=True)}),
    "BahdanauAttention": Entry(
        BahdanauAttention, lambda: {"query_size": 3, "key_size": 4, "attn_size": 5, "rng": R()},
        {"query_size": size(), "key_size": size(), "attn_size": size(), "rng": rng()}),
    "LuongAttention": Entry(
        LuongAttention, lambda: {"query_size": 3, "key_size": 4, "score": "concat", "rng": R()},
        {"query_size": size(), "key_size": size(), "attn_size": size(none_ok=True),
         "score": option(("dot", "general", "concat", "scaled_dot")), "rng": rng()}),
    "LocalAttention": Entry(
        LocalAttention, lambda: {"query_size": 3, "key_size": 4, "mode": "local-p", "window": 2,
                                 "rng": R()},
        {"window": size(cap=None), "mode": option(("local-m", "local-p")),
         "score": option(("dot", "general", "concat", "scaled_dot")),
         "attn_size": size(none_ok=True), "rng": rng()}),
    "SelfAttention": Entry(ta.SelfAttention, lambda: {"d_model": 3, "d_k": 2, "rng": R()},
                           {"d_model": size(), "d_k": size(), "d_v": size(none_ok=True),
                            "rng": rng(), "dtype": dtype()}),
    "Seq2Seq": Entry(
        ta.Seq2Seq, lambda: {"src_vocab": 9, "tgt_vocab": 11, "emb_size": 3, "hidden_size": 2,
                             "attention": "local-p", "input_feeding": True, "rng": R()},
        {"src_vocab": size(), "tgt_vocab": size(), "emb_size": size(), "hidden_size": size(),
         "cell": option(("gru", "lstm")), "bidirectional": boolean(),
         "attention": option(("bahdanau", "dot", "general", "concat", "scaled_dot", "local-m",
                              "local-p"), none_ok=True),
         "input_feeding": boolean(), "attn_size": size(none_ok=True),
         "window": size(cap=None), "pad_id": token_id(9), "rng": rng(), "dtype": dtype()}),
    # an attention without an attention layer size refuses any attn_size, valid or not
    "Seq2Seq dot": Entry(
        ta.Seq2Seq, lambda: {"src_vocab": 9, "tgt_vocab": 11, "emb_size": 3, "hidden_size": 2,
                             "attention": "dot", "rng": R()},
        {"attn_size": st.one_of(size(none_ok=True), st.integers(1, 100))}),
    "SGD": Entry(ta.SGD, lambda: {"params": _linear_params(), "lr": 0.1},
                 {"params": _anything_but(), "lr": real("(0, inf)"),
                  "momentum": real("[0, 1)"), "weight_decay": real("[0, inf)")}),
    "Adam": Entry(ta.Adam, lambda: {"params": _linear_params()},
                  {"lr": real("(0, inf)"), "eps": real("(0, inf)"),
                   "weight_decay": real("[0, inf)"),
                   "betas": st.one_of(_anything_but(), real("[0, 1)").map(lambda b: (b, 0.9)),
                                      real("[0, 1)").map(lambda b: [0.9, b]))}),
    "Adam.load_state_dict": Entry(_load_adam_state, dict, {"state": _adam_states()}),
    "StepDecay": Entry(ta.StepDecay, lambda: {"optimizer": ta.SGD(_linear_params(), lr=0.1),
                                              "step_size": 2, "gamma": 0.5},
                       {"optimizer": _anything_but(), "step_size": size(cap=None),
                        "gamma": real("(0, 1]")}),
    "PlateauDecay": Entry(ta.PlateauDecay, lambda: {"optimizer": ta.SGD(_linear_params(), lr=0.1)},
                          {"optimizer": _anything_but(), "factor": real("(0, 1)"),
                           "patience": size(cap=None), "min_lr": real("[0, inf)"),
                           "threshold": real("[0, inf)")}),
    "PlateauDecay.step": Entry(
        lambda valid_loss: ta.PlateauDecay(ta.SGD(_linear_params(), lr=0.1)).step(valid_loss),
        lambda: {"valid_loss": 1.0}, {"valid_loss": real("(-inf, inf)")}),
    "Trainer": Entry(
        Trainer, _trainer_args,
        {"model": _anything_but(), "optimizer": _anything_but(), "pad_id": token_id(1),
         "sos_id": size(low=0, cap=None), "eos_id": size(low=0, cap=None),
         "batch_size": size(cap=None), "clip": real("(0, inf)").filter(lambda v: v is not None),
         "bucket": boolean(), "show_progress": boolean(), "rng": rng(),
         "schedule": st.one_of(_anything_but(None), st.sampled_from(  # on another optimiser
             [ta.StepDecay(ta.SGD(_linear_params(), lr=0.1), step_size=1, gamma=0.5),
              ta.PlateauDecay(ta.SGD(_linear_params(), lr=0.1))]))}),
    "Trainer.fit": Entry(
        _fit, lambda: {"train_pairs": _PAIRS, "epochs": 1},
        {"train_pairs": _pairs_lists(), "valid_pairs": _pairs_lists().filter(
            lambda v: v is not None), "epochs": size(cap=None),
         "patience": size(cap=None, none_ok=True),
         "checkpoint_path": _anything_but(None, valid_if=lambda v: isinstance(v, str)),
         "best_path": _anything_but(None, valid_if=lambda v: isinstance(v, str))}),
    "clip_grad_norm": Entry(ta.clip_grad_norm,
                            lambda: {"model_or_params": _linear_params(), "max_norm": 1.0},
                            {"model_or_params": _anything_but(), "max_norm": real("(0, inf]")}),
    "sequence_cross_entropy": Entry(
        ta.sequence_cross_entropy,
        lambda: {"logits": np.zeros((2, 3, 4)), "targets": np.ones((2, 3), int),
                 "mask": np.ones((2, 3), bool)},
        {"logits": float_array((2, 3, 4), any_float=True, free_sizes=True),
         "targets": ids((2, 3), 4),
         "mask": mask((2, 3)), "label_smoothing": real("[0, 1)"),
         "pad_id": token_id(4, none_ok=True)}),
    "softmax": Entry(F.softmax, lambda: {"x": np.zeros((2, 3)), "axis": -1},
                     {"x": float_array((2, 3), any_float=True).filter(
                         lambda a: not (isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                        and (np.isfinite(a) | (a == -np.inf)).all()
                                        and a.ndim > 0)),
                      "axis": size(low=-2, cap=1)}),
    "greedy_decode": Entry(
        greedy_decode, lambda: dict(_DECODE),
        {"model": _anything_but(), "src": ids((2, 3), 11, free_sizes=True),
         "src_lengths": lengths(2, 3),
         "max_len": size(), "sos_id": token_id(13), "eos_id": token_id(13)}),
    "beam_search": Entry(
        beam_search, lambda: {**_DECODE, "beam_size": 2},
        {"beam_size": size(), "length_penalty": real("[0, 10]"),
         "n_best": size(cap=None, none_ok=True),
         "trace": _anything_but(valid_if=lambda v: v is None or isinstance(v, list)),
         "src": ids((2, 3), 11, free_sizes=True), "eos_id": token_id(13)}),
    "decode_step": Entry(
        _MODEL.decode_step,
        lambda: {"y_prev": np.array([1, 2]), "memory": _MEMORY, "carry": _CARRY, "t": 0},
        {"y_prev": ids((2,), 13), "memory": _anything_but(), "t": size(low=0),
         "carry": st.one_of(_anything_but(), st.sampled_from(
             [_CARRY[0], (_CARRY[0],), (_CARRY[0], _CARRY[1], _CARRY[1]),
              (_CARRY[0], _CARRY[1][:, :2]), (_CARRY[0].astype(np.float32), _CARRY[1]),
              (_CARRY[0], np.full_like(_CARRY[1], np.nan)), (_CARRY[0], _CARRY[1].tolist())]))}),
    "plot_alignment": Entry(
        _plot_alignment,
        lambda: {"alpha": _ALPHA, "src_tokens": ["a", "b", "c"], "tgt_tokens": ["x", "y"]},
        {"alpha": float_array((2, 3), unit=True, array_like=True),
         "src_tokens": st.one_of(_anything_but(), st.sampled_from(["abc", ["a", "b"], []])),
         "tgt_tokens": st.one_of(_anything_but(), st.sampled_from(["xy", ["x"], 5])),
         "gold": st.one_of(_anything_but(None), st.sampled_from(
             [[None], [3, None], [(0.5, 1.5), None], [(0, 4), None], [(2, 1), None],
              [(0, 1, 2), None], [("0", 1), None], [(True, 2), None], "ab"])),
         "positions": st.one_of(_anything_but(None), float_array((2,), array_like=True).filter(
             lambda v: v is not None)),
         "title": st.one_of(_anything_but(valid_if=lambda v: v is None or isinstance(v, str)),
                            st.integers(), st.floats()),
         "cmap": st.one_of(_anything_but(), st.text(max_size=5).filter(
             lambda s: s not in pytest.importorskip("matplotlib").colormaps)),
         "ax": _anything_but(None), "path": st.one_of(_anything_but(None),
                                                    st.sampled_from(["a.jpg", "a", 3.5])),
         "gold_label": _anything_but(valid_if=lambda v: isinstance(v, str))}),
    "plot_alignment window": Entry(
        _plot_alignment,
        lambda: {"alpha": _ALPHA, "src_tokens": ["a", "b", "c"], "tgt_tokens": ["x", "y"],
                 "positions": [0.0, 1.0]},
        {"window": size(cap=None, none_ok=True)}),
    "check_module": Entry(
        lambda module, x, **kw: check_module(module, x, **kw),
        lambda: {"module": ta.Linear(2, 2, rng=R()), "x": np.ones((1, 2))},
        {"module": _anything_but(), "tol": real("(0, inf)"),
         "names": st.one_of(_anything_but(None), st.sampled_from([[3], ["x", "y"], [None]]))}),
    "corpus_bleu": Entry(
        corpus_bleu, lambda: {"hyps": [["a", "b"]], "refs": [["a", "b"]]},
        {"hyps": _bleu_corpus([[["a"]]]), "refs": _bleu_corpus([[["a"], "b"]]),
         "max_order": size(cap=100),
         "smooth": option(("exp", "none", "floor", "add-k"))}),
}


def _clear_error(call, kwargs, arg, name):
    """Call; require a ValueError/TypeError raised in tinyattn, naming ``name``."""
    value = kwargs[arg]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is no answer: it would raise here
        try:
            call(**kwargs)
        except (ValueError, TypeError) as err:
            frame = traceback.extract_tb(err.__traceback__)[-1]
            where = f"{frame.filename}:{frame.lineno}"
            assert os.path.abspath(frame.filename).startswith(PACKAGE), (
                f"{arg}={value!r:.80}: {type(err).__name__} raised outside tinyattn, at "
                f"{where}: {err}")
            # a whole word: "t" inside "must" or "x" inside "expected" does not count
            assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", str(err)), (
                f"{arg}={value!r:.80}: the message does not name {name!r}: {err} ({where})")
        else:
            pytest.fail(f"{arg}={value!r:.80} was accepted")


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_malformed_argument_gets_a_clear_error_from_tinyattn(entry, data):
    call, valid, bad, names = ENTRIES[entry]
    arg = data.draw(st.sampled_from(sorted(bad)), label="argument")
    value = data.draw(bad[arg], label=arg)
    kwargs = {**valid(), arg: value}
    try:
        _clear_error(call, kwargs, arg, names.get(arg, arg))
    finally:
        if entry.startswith("plot"):
            import matplotlib.pyplot as plt

            plt.close("all")


def test_every_entry_has_valid_defaults():
    """The valid arguments alone are accepted: each failure above is the corrupted one's."""
    for name, (call, valid, _, _) in ENTRIES.items():
        if name == "Adam.load_state_dict":
            continue  # it needs a state
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            call(**valid())
    import matplotlib.pyplot as plt

    plt.close("all")
