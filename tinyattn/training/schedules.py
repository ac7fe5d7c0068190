"""Learning-rate schedules for the optimisers of `tinyattn.training.optim`:
`StepDecay` (every ``step_size`` epochs) and `PlateauDecay` (when the validation
loss stops improving), stepped once per epoch, and `NoamSchedule` (warm-up, then
inverse square root), stepped before every optimiser step. docs/equations.md
§9.4, §9.5 and §9.7.

The schedule protocol `Trainer` reads: ``per_step`` (class attribute) True means
``step()`` before every optimiser step, never at epoch end; otherwise ``step()``
once at the end of each epoch, or ``step(valid_loss)`` when ``uses_valid_loss``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from tinyattn._validate import _show, check_dim, check_real, check_size, is_int
from tinyattn.training.optim import _number, _Optimizer


def _scalars(state, kinds: dict, expected: str) -> dict:
    """A schedule's saved state: a mapping with exactly the keys of ``kinds``, each
    a 0-d int or float array (as ``kinds`` says), as Python numbers."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping (a state_dict()), "
                        f"got {type(state).__name__}")
    if set(state) != set(kinds):
        raise ValueError(f"state_dict must be {expected}, got the keys "
                         f"{sorted(map(str, state))}")
    values = {}
    for key, kind in kinds.items():
        arr = np.asarray(state[key])
        if arr.shape != () or arr.dtype.kind not in ("iu" if kind == "int" else "f"):
            raise ValueError(f"state_dict[{key!r}] must be a 0-d {kind} array, got "
                             f"shape {arr.shape} and dtype {arr.dtype}")
        values[key] = arr.item()
    return values


class StepDecay:
    """Multiply the optimiser's ``lr`` by ``gamma`` every ``step_size`` epochs.

    Parameters
    ----------
    optimizer : SGD or Adam
        Its ``lr`` at construction is the base rate ``lr_0``.
    step_size : int, >= 1
    gamma : float in (0, 1]

    Notes
    -----
    Call `step` once at the end of each epoch. In epoch ``e = 0, 1, ...``::

        lr = lr_0 * gamma ** (e // step_size)

    ``uses_valid_loss`` is False: `Trainer` calls ``step()`` without an
    argument (see `PlateauDecay`).
    """

    uses_valid_loss = False  # the schedule protocol: step() takes no argument
    per_step = False  # ... and is called once at the end of each epoch

    def __init__(self, optimizer, *, step_size, gamma):
        if not isinstance(optimizer, _Optimizer):
            raise TypeError(f"optimizer must be an SGD or Adam optimiser, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.step_size = check_size(step_size, "step_size")
        self.gamma = _number("gamma", gamma)
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self) -> float:
        """End an epoch: set and return the next epoch's ``optimizer.lr``."""
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"base_lr": 0-d float64, "epoch": 0-d int64}``."""
        return {"base_lr": np.array(self.base_lr), "epoch": np.array(self.epoch, dtype=np.int64)}

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict` and set ``optimizer.lr`` to match it."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping (a state_dict()), "
                            f"got {type(state).__name__}")
        epoch, base_lr = (np.asarray(state.get(k, -1)) for k in ("epoch", "base_lr"))
        epoch = epoch.item() if epoch.size == 1 else None
        if set(state) != {"base_lr", "epoch"} or not is_int(epoch) or epoch < 0:
            raise ValueError(f"state_dict must be {{'base_lr': float > 0, 'epoch': int >= 0}}, "
                             f"got {dict(state)!r:.100}")
        self.base_lr, self.epoch = _number("base_lr", base_lr.item() if base_lr.size == 1
                                           else base_lr, "(0, inf)"), epoch - 1
        self.step()


class PlateauDecay:
    """Multiply the optimiser's ``lr`` by ``factor`` when the validation loss
    stops improving.

    Parameters
    ----------
    optimizer : SGD or Adam
    factor : float in (0, 1)
        The multiplier of each decay.
    patience : int, >= 1
        Decay after this many consecutive epochs without improvement.
    min_lr : float, >= 0
        The rate is never decayed below this (a rate already below it is
        left as it is).
    threshold : float, >= 0
        The relative improvement that counts: ``loss`` improves on the best
        loss so far when ``best - loss > threshold * |best|``.

    Notes
    -----
    Call ``step(valid_loss)`` once at the end of each epoch. With ``bad``
    the number of epochs in a row without improvement (it starts at 0)::

        if loss improves on best:  best = loss, bad = 0
        else:                      bad = bad + 1
        if bad >= patience:        lr = max(lr * factor, min_lr), bad = 0

    The first loss always improves (``best`` starts at infinity). This is
    PyTorch's ``ReduceLROnPlateau`` (mode ``"min"``, relative threshold, no
    cooldown) except that its ``patience=p`` decays after ``p + 1`` bad
    epochs where this one decays after ``p``.

    ``uses_valid_loss`` is True: it is the schedule protocol by which
    `Trainer` knows to call ``step(valid_loss)`` (and to require validation
    pairs) rather than ``step()``.
    """

    uses_valid_loss = True  # the schedule protocol: step(valid_loss)
    per_step = False  # ... once at the end of each epoch

    def __init__(self, optimizer, *, factor=0.5, patience=1, min_lr=0.0, threshold=1e-4):
        if not isinstance(optimizer, _Optimizer):
            raise TypeError(f"optimizer must be an SGD or Adam optimiser, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.factor = _number("factor", factor, "(0, 1)")
        self.patience = check_size(patience, "patience")
        self.min_lr = _number("min_lr", min_lr, "[0, inf)")
        self.threshold = _number("threshold", threshold, "[0, inf)")
        self.best = math.inf  # the best validation loss so far (inf: none yet)
        self.bad_epochs = 0  # epochs in a row without improvement, since the last decay

    def improves(self, valid_loss: float) -> bool:
        """Whether ``valid_loss`` improves on the best loss by more than ``threshold``."""
        return math.isinf(self.best) or self.best - valid_loss > self.threshold * abs(self.best)

    def step(self, valid_loss) -> float:
        """End an epoch with its validation loss: set and return the next epoch's
        ``optimizer.lr``."""
        valid_loss = _number("valid_loss", valid_loss, "(-inf, inf)")
        if self.improves(valid_loss):
            self.best, self.bad_epochs = valid_loss, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.bad_epochs = 0
            lr = max(self.optimizer.lr * self.factor, self.min_lr)
            if 0.0 < lr < self.optimizer.lr:  # never up; never to 0 (lr * factor underflows)
                self.optimizer.lr = lr
        return self.optimizer.lr

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"best": 0-d float64 (inf before the first step), "bad_epochs": 0-d int64,
        "lr": 0-d float64}`` (``lr`` is the optimiser's)."""
        return {"best": np.array(self.best, dtype=np.float64),
                "bad_epochs": np.array(self.bad_epochs, dtype=np.int64),
                "lr": np.array(self.optimizer.lr, dtype=np.float64)}

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict` and set ``optimizer.lr`` to its ``lr``; on any
        mismatch raise ValueError naming the key and change nothing."""
        values = _scalars(state, {"best": "float", "bad_epochs": "int", "lr": "float"},
                          "{'best': float or inf, 'bad_epochs': int >= 0, 'lr': float > 0}")
        best = values["best"]
        if best != math.inf:
            _number("state_dict['best']", best, "(-inf, inf)")
        bad = check_size(values["bad_epochs"], "state_dict['bad_epochs']", low=0)
        lr = _number("state_dict['lr']", values["lr"], "(0, inf)")
        self.best, self.bad_epochs, self.optimizer.lr = best, bad, lr


class _PerStepSchedule:
    """What the per-step schedules share: a step count, constants, their state.

    A subclass sets ``CONSTANTS`` (name -> "int" or "float") and ``lr_at``.
    A checkpoint stores the step count and the constants (`state_dict`);
    `load_state_dict` refuses constants other than this schedule's, since the
    resumed rates would then not continue the run's.
    """

    uses_valid_loss = False  # the schedule protocol: step() takes no argument
    per_step = True  # ... and is called before every optimiser step, never at epoch end
    CONSTANTS: dict[str, str] = {}

    def __init__(self, optimizer):
        if not isinstance(optimizer, _Optimizer):
            raise TypeError(f"optimizer must be an SGD or Adam optimiser, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.step_count = 0  # optimiser steps scheduled so far

    def lr_at(self, step) -> float:
        """The rate of the ``step``-th optimiser step (``step`` >= 1)."""
        raise NotImplementedError

    def step(self) -> float:
        """Before an optimiser step: count it, set and return its ``optimizer.lr``."""
        self.optimizer.lr = self.lr_at(self.step_count + 1)
        self.step_count += 1
        return self.optimizer.lr

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"step_count": 0-d int64}`` and each constant as a 0-d int64 or float64."""
        out = {"step_count": np.array(self.step_count, dtype=np.int64)}
        for key, kind in self.CONSTANTS.items():
            out[key] = np.array(getattr(self, key),
                                dtype=np.int64 if kind == "int" else np.float64)
        return out

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict` and set ``optimizer.lr`` to the rate of its last
        step (left as it is at step 0); on any mismatch, constants other than
        this schedule's included, raise ValueError naming the key and change
        nothing."""
        name = type(self).__name__
        kinds = {"step_count": "int", **self.CONSTANTS}
        shown = ", ".join(f"{k!r}: {v}" for k, v in kinds.items())
        values = _scalars(state, kinds, f"{{{shown}}} (a {name}'s)")
        for key in self.CONSTANTS:
            if values[key] != getattr(self, key):
                raise ValueError(f"state_dict[{key!r}] is {_show(values[key])}, but this "
                                 f"{name} has {key}={getattr(self, key)!r}: a resumed "
                                 f"run must keep its schedule's constants, or its rates would "
                                 f"not continue the saved ones")
        count = check_size(values["step_count"], "state_dict['step_count']", low=0)
        if count:
            self.optimizer.lr = self.lr_at(count)
        self.step_count = count


class NoamSchedule(_PerStepSchedule):
    """Warm the learning rate up linearly, then decay it as the inverse square
    root of the step: the schedule of Vaswani et al. 2017, §5.3, eq. 3.

    Parameters
    ----------
    optimizer : SGD or Adam
        Its own ``lr`` is never used: the first `step` replaces it.
    d_model : int, >= 1
        The model width; it scales every rate by ``d_model ** -0.5``.
    warmup : int, >= 1
        The number of warm-up steps; the rate peaks at ``step == warmup``.
    factor : float, > 0
        An overall multiplier (1 in the paper).

    Notes
    -----
    Call `step` before every optimiser step (`Trainer` does: ``per_step`` is
    True). Counting optimiser steps from 1, the ``step``-th update uses::

        lr(step) = factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)

    The two terms of the min are equal at ``step == warmup``: before it the
    second is the smaller, so the rate grows linearly from
    ``factor * d_model**-0.5 * warmup**-1.5`` at step 1; after it the first
    is, so the rate falls as ``1 / sqrt(step)``. The peak is::

        lr(warmup) = factor / sqrt(d_model * warmup)

    The paper used ``d_model = 512``, ``warmup = 4000`` and ``factor = 1`` (a
    peak of about 7.0e-4) with Adam, ``betas = (0.9, 0.98)`` and
    ``eps = 1e-9`` (``Adam(params, betas=(0.9, 0.98), eps=1e-9)``; the
    ``lr`` given to Adam does not matter). The paper does not say why it warms
    up; a common reading is that small first updates protect a model whose
    Adam moment estimates still rest on few gradients. The ``d_model``
    factor gives wider models lower rates.

    A checkpoint stores the step count and the three constants
    (`state_dict`); `load_state_dict` refuses constants other than this
    schedule's, since the resumed rates would then not continue the run's.
    """

    CONSTANTS = {"d_model": "int", "warmup": "int", "factor": "float"}

    def __init__(self, optimizer, *, d_model, warmup, factor=1.0):
        super().__init__(optimizer)
        self.d_model = check_dim(d_model, "d_model")
        self.warmup = check_size(warmup, "warmup")
        self.factor = check_real(factor, "factor", "(0, inf)")

    def lr_at(self, step) -> float:
        """The rate of the ``step``-th optimiser step (``step`` >= 1)."""
        step = check_size(step, "step")
        return self.factor * self.d_model ** -0.5 * min(step ** -0.5,
                                                        step * self.warmup ** -1.5)


class WarmupLinear(_PerStepSchedule):
    """Warm the learning rate up linearly to ``peak``, then let it fall linearly
    to ``peak / (total − warmup + 1)`` at step ``total`` (and stay there).

    Parameters
    ----------
    optimizer : SGD or Adam
        Its own ``lr`` is never used: the first `step` replaces it.
    peak : float, > 0
        The rate at ``step == warmup``.
    warmup : int, >= 1
    total : int, > warmup
        The number of optimiser steps of the run (epochs × batches per epoch).

    Notes
    -----
    Counting optimiser steps from 1 (docs/equations.md §9.7)::

        lr(step) = peak · min(step / warmup, (total − step + 1) / (total − warmup + 1))

    floored at its value at ``step == total``. Decaying to almost 0 by the end
    of the run lets the last updates settle: on dates, the Transformer of the
    command line's defaults ends at 100 % held-out exact match with it where
    the Noam schedule's slow 1/√step decay leaves the score wandering from
    epoch to epoch (README). The shape is the one BERT's training used
    (Devlin et al. 2019, §A.2).
    """

    CONSTANTS = {"peak": "float", "warmup": "int", "total": "int"}

    def __init__(self, optimizer, *, peak, warmup, total):
        super().__init__(optimizer)
        self.peak = check_real(peak, "peak", "(0, inf)")
        self.warmup = check_size(warmup, "warmup")
        self.total = check_size(total, "total", low=self.warmup + 1)

    def lr_at(self, step) -> float:
        """The rate of the ``step``-th optimiser step (``step`` >= 1)."""
        step = min(check_size(step, "step"), self.total)
        return self.peak * min(step / self.warmup,
                               (self.total - step + 1) / (self.total - self.warmup + 1))
