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

Not every exercise is a backward: a function graded by its outputs (a
reversal under padding, a decoder step, beam search, a loss, an update) is
an `OutputExercise` (``_outputs.py``), run beside the library's own on a
few labelled cases; when an output differs, the exercise's known mistakes
are run on the same cases and the one the learner's numbers reproduce is
named. Each lesson's exercises live in their own module ``_ex_<topic>.py``
(a list ``EXERCISES``), found by `names()` without registration.

The backward exercises of the first lessons (`names()` lists all):

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
    table = exercises()
    if name not in table:
        raise ValueError(f"unknown exercise {name!r}; choose from {sorted(table)}")
    ex = table[name]
    start = STUBS.get(name) or ex.starter
    src = f"# {ex.signature}\n# {ex.reference}\n" + inspect.getsource(start)
    if verbose:
        print(src)
    return src
