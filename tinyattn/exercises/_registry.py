"""The exercises: library forward, small distinct shapes, known mistakes.

Sizes are small and pairwise distinct (B=2, D=5, H=6, T=3, S=4, A=7,
Hk=12) so that a transposed product either fails on shapes or fails the
check loudly (docs/design.md §7).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import permutations
from pathlib import Path

from tinyattn.exercises._diagnose import Bug
from tinyattn.exercises._recurrent_bugs import gru_variant, lstm_variant, rnn_variant
from tinyattn.gru import gru_step_forward
from tinyattn.lstm import lstm_step_forward
from tinyattn.rnn import rnn_step_forward

B, D, H, T, S, A, HK = 2, 5, 6, 3, 4, 7, 12


@dataclass
class Exercise:
    """One backward to write.

    Parameters
    ----------
    name : str
    signature : str
        How the learner's function is called and what it returns.
    forward : callable ``(*arrays) -> (out, cache)``
        The library forward (with fixed non-array options bound).
    shapes : dict of arg name -> shape
        The float64 arguments of ``forward``, in order; one gradient each.
    reference : str
        Where the equations are (docs/equations.md section, paper).
    bugs : list of Bug
    gates : dict of arg name -> tuple of str
    n_state : int
        For a recurrent step: how many state arrays follow ``x_t`` in the
        arguments (and lead the outputs); 0 for other exercises.
    ctx : dict
        Extra data for the bug tests (e.g. the mask).
    starter : callable, optional
        The learner's starting point, when it is not in ``stubs.py``.
    solution : callable, optional
        The library's backward (the tests check that it passes), when it is
        not one of the original exercises' (tests/test_exercises.py).
    """

    name: str
    signature: str
    forward: Callable
    shapes: dict
    reference: str
    bugs: list = field(default_factory=list)
    gates: dict = field(default_factory=dict)
    n_state: int = 0
    ctx: dict = field(default_factory=dict)
    starter: Callable | None = None
    solution: Callable | None = None

    @property
    def grad_names(self) -> list[str]:
        return ["d" + a for a in self.shapes]


def _act_bugs(variant) -> list[Bug]:
    """The activation-derivative mistakes of a recurrent cell."""
    return [
        Bug("activation derivative taken of the output as if it were the input",
            "the cache holds outputs (h = tanh(a), s = σ(a)); their derivatives are "
            "1 − h² and s(1 − s) from those outputs. Applying tanh/σ to them again "
            "(1 − tanh(h)², σ(s)(1 − σ(s))) is the derivative at the wrong point",
            partial(variant, act="twice")),
        Bug("activation derivative left out",
            "after a tanh or σ the gradient must be multiplied by its derivative "
            "(1 − y² or y(1 − y), y the output)",
            partial(variant, act="none")),
    ]


def _perm_bugs(variant, gates) -> list[Bug]:
    k = len(gates)
    return [Bug(f"wrong gate order ({', '.join(gates[j] for j in order)})",
                f"stack the gate gradients in the order ({', '.join(gates)}), the order of "
                "the weight columns",
                partial(variant, order=order))
            for order in permutations(range(k)) if order != tuple(range(k))]


RNN = Exercise(
    "rnn_step_backward",
    "dx_t, dh_prev, dW_xh, dW_hh, db_h = rnn_step_backward(dh, cache)",
    rnn_step_forward,
    {"x_t": (B, D), "h_prev": (B, H), "W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)},
    "docs/equations.md §1 (document 003): h = tanh(x_t @ W_xh + h_prev @ W_hh + b_h)",
    _act_bugs(rnn_variant) + [
        Bug("derivative of tanh taken at the pre-activation",
            "tanh'(a) = 1 − tanh(a)² = 1 − h², with h the output in the cache; 1 − a² with "
            "a = x_t @ W_xh + h_prev @ W_hh is not it",
            partial(rnn_variant, act="pre")),
        Bug("W_hh not transposed in dh_prev",
            "a = h_prev @ W_hh + ... gives dh_prev = da @ W_hh.T (W_hh is square, so the "
            "shapes cannot tell you)",
            partial(rnn_variant, dh_prev_untransposed=True)),
        Bug("transposed weight gradient dW_hh",
            "dW_hh = h_prev.T @ da, shape (H, H) with rows indexed by h_prev",
            partial(rnn_variant, dW_hh_transposed=True)),
    ],
    n_state=1,
)

_GRU_SHAPES = {"x_t": (B, D), "h_prev": (B, H), "W_x": (D, 3 * H), "W_h": (H, 3 * H),
               "b_x": (3 * H,), "b_h": (3 * H,)}
_GRU_GATES = ("r", "z", "n")
_GRU_DIRECT = ("dropped the direct path z ⊙ dh into dh_prev (dropped dh_next)",
               "h = (1 − z) ⊙ n + z ⊙ h_prev reaches h_prev directly as well as through the "
               "gates: dh_prev = z ⊙ dh + (the gate paths)")


def _gru(name, reset_after):
    form = ("reset_after=True (PyTorch/cuDNN): n = tanh(x_t W_xn + b_xn + r ⊙ (h_prev W_hn "
            "+ b_hn))" if reset_after else
            "reset_after=False (Cho et al. 2014): n = tanh(x_t W_xn + b_xn + (r ⊙ h_prev) "
            "W_hn + b_hn)")
    return Exercise(
        name,
        "dx_t, dh_prev, dW_x, dW_h, db_x, db_h = gru_step_backward(dh, cache)",
        partial(gru_step_forward, reset_after=reset_after),
        dict(_GRU_SHAPES),
        f"docs/equations.md §1, gates r, z, n; {form}",
        _act_bugs(gru_variant)
        + [Bug(*_GRU_DIRECT, partial(gru_variant, direct=False))]
        + _perm_bugs(gru_variant, _GRU_GATES),
        gates={"W_x": _GRU_GATES, "W_h": _GRU_GATES, "b_x": _GRU_GATES, "b_h": _GRU_GATES},
        n_state=1,
    )


GRU = _gru("gru_step_backward", True)
GRU_CHO = _gru("gru_cho_step_backward", False)

_LSTM_GATES = ("i", "f", "g", "o")

LSTM = Exercise(
    "lstm_step_backward",
    "dx_t, dh_prev, dc_prev, dW_x, dW_h, db = lstm_step_backward(dh, dc, cache)",
    lstm_step_forward,
    {"x_t": (B, D), "h_prev": (B, H), "c_prev": (B, H), "W_x": (D, 4 * H),
     "W_h": (H, 4 * H), "b": (4 * H,)},
    "docs/equations.md §1 (document 003), gates i, f, g, o; c = f ⊙ c_prev + i ⊙ g, "
    "h = o ⊙ tanh(c)",
    _act_bugs(lstm_variant) + [
        Bug("ignored the upstream cell gradient dc (dropped dc_next)",
            "c is an output of the step: the dc argument (from the next step) adds to "
            "the gradient reaching c through h",
            partial(lstm_variant, use_dc=False)),
        Bug("the forget-gate path to c_prev is missing",
            "c = f ⊙ c_prev + i ⊙ g gives dc_prev = f ⊙ dc (dc including the path "
            "through h)",
            partial(lstm_variant, forget="zero")),
        Bug("the forget gate is missing from dc_prev",
            "c = f ⊙ c_prev + ... gives dc_prev = f ⊙ dc, not dc",
            partial(lstm_variant, forget="nof")),
        Bug("tanh'(c) missing on the path from h to c",
            "h = o ⊙ tanh(c) gives dc += dh ⊙ o ⊙ (1 − tanh(c)²)",
            partial(lstm_variant, tanh_c="nod")),
        Bug("the path from h to c is missing",
            "c reaches the loss through h = o ⊙ tanh(c) as well: dc = dc_next + "
            "dh ⊙ o ⊙ (1 − tanh(c)²)",
            partial(lstm_variant, tanh_c="missing")),
    ] + _perm_bugs(lstm_variant, _LSTM_GATES),
    gates={"W_x": _LSTM_GATES, "W_h": _LSTM_GATES, "b": _LSTM_GATES},
    n_state=2,
)


def exercises() -> dict:
    """Every exercise by name: those above, then each ``_ex_*.py`` module's ``EXERCISES``.

    A lesson's exercises live in their own module,
    ``tinyattn/exercises/_ex_<topic>.py``, holding a list ``EXERCISES`` of
    `Exercise` or `OutputExercise`; this function finds them (in module
    name order), so adding a module needs no edit here.
    """
    from tinyattn.exercises._attention_ex import ADDITIVE, LUONG_GENERAL, MASKED_SOFTMAX

    table = {ex.name: ex for ex in (RNN, GRU, GRU_CHO, LSTM, MASKED_SOFTMAX, ADDITIVE,
                                    LUONG_GENERAL)}
    package = Path(__file__).resolve().parent
    for path in sorted(package.glob("_ex_*.py")):
        module = importlib.import_module(f"tinyattn.exercises.{path.stem}")
        for ex in module.EXERCISES:
            if ex.name in table:
                raise RuntimeError(f"exercise {ex.name!r} is defined twice ({path.name})")
            table[ex.name] = ex
    return table
