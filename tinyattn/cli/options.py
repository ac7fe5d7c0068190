"""``tinyattn train``'s model and training options, for both architectures.

``--arch rnn`` (the default) builds a `tinyattn.Seq2Seq`; ``--arch transformer``
a `tinyattn.Transformer`. Each architecture has its own model options and
defaults; a flag of the other one is refused by name. The run's config.json
stores the options with their ``arch`` (runs from before it read as rnn).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tinyattn._validate import check_dtype_name
from tinyattn.seq2seq import ATTENTIONS, MAX_LAYERS, Seq2Seq
from tinyattn.training.optim import Adam
from tinyattn.training.schedules import NoamSchedule, PlateauDecay, WarmupLinear
from tinyattn.transformer import Transformer

ARCHS = ("rnn", "transformer")
MODEL_DEFAULTS = {  # --arch rnn
    "cell": "gru", "attention": "bahdanau", "emb_size": 32, "hidden_size": 64,
    "attn_size": None, "input_feeding": False, "bidirectional": True, "num_layers": 1,
    "bridge": True, "window": 3, "dropout": 0.0, "label_smoothing": 0.0, "dtype": "float32"}
TRANSFORMER_DEFAULTS = {  # --arch transformer: sizes that learn dates (README)
    "d_model": 64, "num_heads": 4, "d_ff": 128, "num_layers": 2, "norm_first": False,
    "tie_embeddings": False, "dropout": 0.0, "label_smoothing": 0.0, "dtype": "float32"}
TRAIN_DEFAULTS = {"epochs": 2, "batch_size": 64, "lr": 0.004, "clip": 5.0, "seed": 0,
                  "patience": None, "lr_decay": None, "decay_patience": 1, "warmup": None,
                  "schedule": None}
# over TRAIN_DEFAULTS: 4 epochs, 300 steps of warm-up, then a linear decay over the run:
# what takes dates to 100 % held-out exact match in under a minute on 2 cores (README)
TRANSFORMER_TRAIN_DEFAULTS = {"epochs": 4, "warmup": 300, "schedule": "linear"}
SCHEDULES = ("linear", "noam")
TRANSFORMER_BETAS = (0.9, 0.98)  # Adam's betas for the Transformer (Vaswani et al. §5.3)


def model_defaults(arch: str) -> dict:
    """The model options of ``arch`` with their defaults, ``arch`` first."""
    return {"arch": arch, **(TRANSFORMER_DEFAULTS if arch == "transformer" else MODEL_DEFAULTS)}


def train_defaults(arch: str) -> dict:
    """The training options' defaults for ``arch``."""
    return {**TRAIN_DEFAULTS, **(TRANSFORMER_TRAIN_DEFAULTS if arch == "transformer" else {})}


SWITCHES = {"bidirectional": "--unidirectional", "bridge": "--no-bridge"}  # flags that say "off"


def flag(key: str) -> str:
    """An option's flag: ``num_heads`` -> ``--num-heads``; ``bridge`` -> ``--no-bridge``."""
    return SWITCHES.get(key) or "--" + key.replace("_", "-")


def given(args, defaults: dict) -> dict:
    """The options of ``defaults`` given on the command line ("none" -> None)."""
    out = {k: getattr(args, k) for k in defaults if getattr(args, k, None) is not None}
    if out.get("attention") == "none":
        out["attention"] = None
    return out


def check_arch_flags(args, arch: str) -> None:
    """Refuse a model flag that belongs to the other architecture only."""
    mine = set(model_defaults(arch))
    other = "rnn" if arch == "transformer" else "transformer"
    foreign = [k for k in model_defaults(other) if k not in mine and
               getattr(args, k, None) is not None]
    if arch == "rnn":
        foreign += [k for k in ("warmup", "schedule") if getattr(args, k, None) is not None]
    if foreign:
        raise ValueError(f"{flag(foreign[0])} applies to --arch {other}, not --arch {arch}")


def upgrade_model_options(options: dict) -> dict:
    """Stored model options as this version reads them: ``arch`` added (rnn when
    absent) and an rnn run's options upgraded as `Seq2Seq.upgrade_config` does."""
    options = dict(options)
    arch = options.pop("arch", "rnn")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if arch == "rnn":
        options = Seq2Seq.upgrade_config(options)
    return {"arch": arch, **options}


def build_model(options: dict, src_vocab: int, tgt_vocab: int, *, pad_id: int, seed: int):
    """A freshly initialised model of the run's options."""
    opts = dict(options)
    arch = opts.pop("arch", "rnn")
    dtype = check_dtype_name(opts.pop("dtype", None))
    kw = dict(pad_id=pad_id, rng=np.random.default_rng(seed), dtype=dtype)
    if arch == "transformer":
        layers = opts.pop("num_layers")
        return Transformer(src_vocab, tgt_vocab, num_encoder_layers=layers,
                           num_decoder_layers=layers, **kw, **opts)
    return Seq2Seq(src_vocab, tgt_vocab, **kw, **opts)


def total_steps(n_train: int, train: dict) -> int:
    """Optimiser steps in ``train["epochs"]`` epochs of ``n_train`` examples."""
    return math.ceil(n_train / train["batch_size"]) * train["epochs"]


def build_optimizer(model, options: dict, train: dict):
    """Adam at ``--lr`` (the Transformer's with betas (0.9, 0.98)) and its schedule:
    with ``--warmup``, `WarmupLinear` (``--schedule linear``: up to ``--lr``, then
    down over the run's ``decay_steps``) or `NoamSchedule` (``--schedule noam``,
    peaking at ``--lr``); `PlateauDecay` with ``--lr-decay``; or None."""
    transformer = options.get("arch") == "transformer"
    optimizer = Adam(model.named_parameters(), lr=train["lr"],
                     **({"betas": TRANSFORMER_BETAS} if transformer else {}))
    warmup, decay = train.get("warmup"), train.get("lr_decay")
    if warmup is not None and decay is not None:
        raise ValueError("warmup and lr_decay are two learning-rate schedules: give one")
    if warmup is not None and train.get("schedule") == "linear":
        total = train["decay_steps"]
        if total <= warmup:
            raise ValueError(f"warmup must be fewer steps than the run's {total} "
                             f"(epochs x batches per epoch), got {warmup}")
        return optimizer, WarmupLinear(optimizer, peak=train["lr"], warmup=warmup, total=total)
    if warmup is not None:
        D = options["d_model"]
        # lr(step) = factor · D^-½ · min(step^-½, step · warmup^-3/2) peaks at step = warmup
        # with factor · (D · warmup)^-½: this factor makes the peak --lr
        return optimizer, NoamSchedule(optimizer, d_model=D, warmup=warmup,
                                       factor=train["lr"] * math.sqrt(D * warmup))
    if decay is not None:
        return optimizer, PlateauDecay(optimizer, factor=decay,
                                       patience=train.get("decay_patience", 1))
    return optimizer, None


# ----- argparse types ----------------------------------------------------------------
def int_at_least(low: int, expected: str):
    """An argparse type: an integer >= ``low``, else an error saying ``expected``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


positive = int_at_least(1, "a positive integer")
non_negative = int_at_least(0, "an integer >= 0")


def int_in(low: int, high: int):
    """An argparse type: an integer in ``low..high``."""
    expected = f"an integer in {low}..{high}"
    at_least = int_at_least(low, expected)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


def float_in(ok, expected: str):
    """An argparse type: a float for which ``ok`` holds, else an error saying ``expected``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not ok(value):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


positive_float = float_in(lambda v: 0 < v < math.inf, "a positive finite number")
probability = float_in(lambda v: 0 <= v < 1, "a number in [0, 1)")


def add_model_arguments(t) -> None:
    """The model flags of ``tinyattn train``, in two groups (one per architecture)."""
    shown = ", ".join(f"{k}={v}" for k, v in MODEL_DEFAULTS.items())
    m = t.add_argument_group(f"model, --arch rnn (defaults: {shown})")
    t.add_argument("--arch", choices=ARCHS,
                   help="rnn (default): a recurrent encoder-decoder, with attention unless "
                   "--attention none; transformer: Vaswani et al. 2017")
    m.add_argument("--cell", choices=("gru", "lstm"))
    m.add_argument("--attention", choices=[a for a in ATTENTIONS if a] + ["none"])
    m.add_argument("--emb-size", dest="emb_size", type=positive)
    m.add_argument("--hidden-size", dest="hidden_size", type=positive,
                   help="per encoder direction; the decoder has twice this")
    m.add_argument("--attn-size", dest="attn_size", type=positive)
    m.add_argument("--input-feeding", dest="input_feeding", action="store_const", const=True)
    m.add_argument("--unidirectional", dest="bidirectional", action="store_const", const=False)
    m.add_argument("--no-bridge", dest="bridge", action="store_const", const=False,
                   help="start the decoder from zeros, not from the bridge of the encoder's "
                   "final state (with attention, the decoder then learns the source through "
                   "attention alone)")
    m.add_argument("--num-layers", "--layers", dest="num_layers", type=int_in(1, MAX_LAYERS),
                   help="stacked layers in the encoder and in the decoder "
                   f"(1..{MAX_LAYERS}); rnn: --dropout also applies between them")
    m.add_argument("--window", type=positive, help="local attention's half-width D")
    m.add_argument("--dropout", type=probability,
                   help="inverted dropout in training only: rnn on the embeddings, between "
                   "stacked layers and before the output layer; transformer on the "
                   "embeddings, the attention weights and after every sublayer")
    m.add_argument("--label-smoothing", dest="label_smoothing", type=probability,
                   help="ε of the training loss's smoothed targets (pads excluded)")
    m.add_argument("--dtype", choices=("float32", "float64"))
    shown = ", ".join(f"{k}={v}" for k, v in TRANSFORMER_DEFAULTS.items())
    x = t.add_argument_group(f"model, --arch transformer (defaults: {shown}; and "
                             "--num-layers, --dropout, --label-smoothing, --dtype above)")
    x.add_argument("--d-model", dest="d_model", type=positive, help="D, every position's size")
    x.add_argument("--heads", "--num-heads", dest="num_heads", type=positive,
                   help="attention heads; must divide --d-model")
    x.add_argument("--d-ff", dest="d_ff", type=positive, help="feed-forward hidden width")
    x.add_argument("--norm-first", dest="norm_first", action="store_const", const=True,
                   help="pre-LN (LayerNorm before each sublayer) instead of the paper's post-LN")
    x.add_argument("--tie-embeddings", dest="tie_embeddings", action="store_const", const=True,
                   help="the output layer uses the target embeddings' weights")
