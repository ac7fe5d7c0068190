"""Exercises: write a piece of the maths yourself, and have it checked.

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

Exercises (`names()`), by lesson; B: a backward graded by the gradient
checker, O: graded by its outputs (with a gradient check where it returns
gradients):

==============================  ==  ==  ========================================
rnn_step_backward               00  B   one RNN step
rnn_output_loss_backward        01  B   o_t = softmax(h_t W_hy + b_y) and its loss
rnn_backward                    01  B   BPTT over a whole sequence
lstm_step_backward              02  B   one LSTM step
gru_step_backward               02  B   one GRU step, reset_after=True
gru_cho_step_backward           02  B   the same function, reset_after=False
bidirectional_encode            03  O   per-sequence reversal under padding
plain_decoder_backward          04  B   the bridge and the plain decoder
masked_softmax_backward         05  B   α over real positions
bahdanau_score_backward         05  B   the additive score
bahdanau_decoder_step           05  O   one attention decoder step
bahdanau_decoder_step_backward  05  B   its backward
luong_general_score_backward    06  B   the general score
local_p_attention               07  O   local-p's position, window and Gaussian
reinforce_score_grad            08  O   hard attention's REINFORCE gradient
beam_search                     09  O   beam search with length normalisation
masked_cross_entropy            10  O   the loss over real tokens and its gradient
adam_step                       10  O   one Adam update
bleu_sentence_stats             11  O   clipped n-gram counts against references
batched_scores_backward         12  B   batched Luong scores' backward
multi_head_backward             13  B   multi-head self-attention's backward
attention_mask                  14  O   padding and causal masks of attention
multihead_attention_backward    14  B   batched, masked multi-head attention
layer_norm_backward             15  B   layer normalisation over the last axis
cached_attention_step           16  O   one decoding step with a key/value cache
==============================  ==  ==  ========================================
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
