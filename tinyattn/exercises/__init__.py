"""Exercises: write a backward pass yourself, and have it checked.

::

    import tinyattn.exercises as ex
    ex.stub("rnn_step_backward")          # prints the starting point
    def my_rnn_step_backward(dh, cache):
        ...                               # your code
    ex.check("rnn_step_backward", my_rnn_step_backward)

`check` runs the library forward on small random float64 arrays, your
backward on random upstream gradients, and the library's gradient checker
(`tinyattn.gradcheck`) on the result: you pass when every gradient agrees
with centered finite differences, never by comparison with a hidden
solution. When a gradient is wrong, it prints which one (per gate and per
time step where that helps) and the likely mistake, recognised from the
numbers: a dropped dh_next / dc_next, an activation derivative taken at
the wrong point, gates in the wrong order, a missing forget-gate path,
unmasked pads, a transposed weight.

Exercises (`names()`):

=============================  ==============================================
rnn_step_backward              `tinyattn.rnn.rnn_step_backward`
gru_step_backward              `tinyattn.gru.gru_step_backward`, reset_after=True
gru_cho_step_backward          the same function, reset_after=False (Cho 2014)
lstm_step_backward             `tinyattn.lstm.lstm_step_backward`
masked_softmax_backward        `tinyattn.functional.masked_softmax_backward`
bahdanau_score_backward        `tinyattn.attention.additive_score_backward`
luong_general_score_backward   `tinyattn.attention.general_score_backward`
=============================  ==============================================
"""

from __future__ import annotations

import inspect

from tinyattn.exercises._check import CheckResult, check
from tinyattn.exercises._registry import exercises
from tinyattn.exercises.stubs import STUBS

__all__ = ["CheckResult", "check", "names", "stub"]


def names() -> list[str]:
    """The exercise names `check` accepts."""
    return list(exercises())


def stub(name: str, *, verbose: bool = True) -> str:
    """The starting point of exercise ``name`` (printed unless ``verbose=False``).

    Returns
    -------
    str
        Source of a function with the library's signature that unpacks the
        cache and raises `NotImplementedError`.
    """
    if name not in STUBS:
        raise ValueError(f"unknown exercise {name!r}; choose from {sorted(STUBS)}")
    ex = exercises()[name]
    src = f"# {ex.signature}\n# {ex.reference}\n" + inspect.getsource(STUBS[name])
    if verbose:
        print(src)
    return src
