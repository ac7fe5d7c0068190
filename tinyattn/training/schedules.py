"""Two learning-rate schedules for the optimisers of `tinyattn.training.optim`:
`StepDecay` (every ``step_size`` epochs) and `PlateauDecay` (when the validation
loss stops improving). docs/equations.md §9.4 and §9.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from tinyattn._validate import check_size, is_int
from tinyattn.training.optim import _number, _Optimizer


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
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping (a state_dict()), "
                            f"got {type(state).__name__}")
        kinds = {"best": "float", "bad_epochs": "int", "lr": "float"}
        if set(state) != set(kinds):
            raise ValueError(f"state_dict must be {{'best': float or inf, 'bad_epochs': "
                             f"int >= 0, 'lr': float > 0}}, got the keys "
                             f"{sorted(map(str, state))}")
        values = {}
        for key, kind in kinds.items():
            arr = np.asarray(state[key])
            if arr.shape != () or arr.dtype.kind not in ("iu" if kind == "int" else "f"):
                raise ValueError(f"state_dict[{key!r}] must be a 0-d {kind} array, got "
                                 f"shape {arr.shape} and dtype {arr.dtype}")
            values[key] = arr.item()
        best = values["best"]
        if best != math.inf:
            _number("state_dict['best']", best, "(-inf, inf)")
        bad = check_size(values["bad_epochs"], "state_dict['bad_epochs']", low=0)
        lr = _number("state_dict['lr']", values["lr"], "(0, inf)")
        self.best, self.bad_epochs, self.optimizer.lr = best, bad, lr
