"""Training: mini-batches, gradient clipping, validation, early stopping,
checkpoints that resume exactly.

::

    trainer = Trainer(model, Adam(model.named_parameters(), lr=3e-3),
                      pad_id=0, sos_id=1, eos_id=2, rng=np.random.default_rng(0))
    history = trainer.fit(train_pairs, valid_pairs, epochs=10, patience=2,
                          checkpoint_path="runs/x/checkpoint.npz",
                          best_path="runs/x/best.npz")

``pairs`` are lists of ``(src_ids, tgt_ids)``. Each epoch appends an
`EpochRecord` (loss, validation loss, time, gradient norm, learning rate).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from tinyattn._validate import (
    NonFiniteError,
    as_list,
    check_bool,
    check_path,
    check_real,
    check_rng,
    check_size,
    is_int,
    non_finite,
)
from tinyattn.module import eval_mode
from tinyattn.training.batching import make_batches
from tinyattn.training.optim import clip_grad_norm

# An epoch's training loss this many times the first batch's loss means
# training is running away even though every number is still finite.
GROWTH_WARNING = 10.0


# numpy's overflow warnings are silenced where Diverged reports the fault instead
_QUIET = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


def _seed_of(state: dict) -> int:
    """A 64-bit seed that is a function of a bit generator's state alone."""
    text = json.dumps(state, sort_keys=True).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


class Interrupted(Exception):
    """Training stopped between two batches because `Trainer.stop_requested` was set."""


class Diverged(NonFiniteError):
    """The loss or the gradients became NaN or inf during training.

    Raised before the optimiser touches the parameters of the failing
    batch and before any checkpoint of the failing epoch is written, so the
    last checkpoint (of the last finished epoch) stays good. ``epoch`` and
    ``batch`` (1-based; batch 0 when the fault showed after the epoch's
    batches, in the validation loss or the updated weights) say where.
    """

    def __init__(self, cause: str, *, epoch: int, lr: float, batch: int = 0, of: int = 0):
        where = f"epoch {epoch}" + (f", batch {batch} of {of}" if batch else "")
        what = f"training diverged at {where}: {cause}"
        super().__init__(f"{what}; the last finished epoch's checkpoint is kept. Lower the "
                         f"learning rate (lr={lr:g}) or the clipping norm")
        self.what, self.epoch, self.batch = what, epoch, batch


class LossGrowthWarning(UserWarning):
    """An epoch's training loss grew far above its starting value (finite, but diverging)."""


@dataclass
class EpochRecord:
    """What one training epoch measured (`Trainer.history` holds one per epoch)."""

    epoch: int
    train_loss: float  # mean cross-entropy per real target token
    valid_loss: float | None
    seconds: float  # training time of the epoch (validation not included)
    grad_norm: float  # mean global gradient norm before clipping
    lr: float


def _is_ids(seq) -> bool:
    """A list, tuple or 1-d int array of non-negative ids (no bools, no floats)."""
    if isinstance(seq, np.ndarray):
        return seq.ndim == 1 and seq.dtype.kind in "iu" and bool((seq >= 0).all())
    return isinstance(seq, (list, tuple)) and all(
        (type(t) is int or is_int(t)) and t >= 0 for t in seq)


def check_pairs(pairs, name: str) -> None:
    """``pairs`` must be a non-empty sequence of ``(src_ids, tgt_ids)``: int ids, a
    non-empty source (an empty target is fine: the model learns to say ``<eos>``)."""
    pairs = as_list(pairs, name, "a list of (src_ids, tgt_ids) pairs")
    if len(pairs) == 0:
        raise ValueError(f"{name} is empty: there is nothing to train or evaluate on")
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            got = f"{len(pair)} items" if isinstance(pair, (tuple, list)) else \
                type(pair).__name__
            raise ValueError(f"{name}[{k}] must be a pair (src_ids, tgt_ids), got {got}")
        for side, seq in zip(("source", "target"), pair):
            if not _is_ids(seq):
                raise TypeError(f"{name}[{k}]: the {side} must be a list of non-negative int "
                                f"token ids, got {seq!r:.80}")
        if len(pair[0]) == 0:
            raise ValueError(f"{name}[{k}] has an empty source: the encoder needs at least "
                             "one token")


def progress(items, desc: str, enabled: bool = True):
    """Tqdm when installed (it honours TQDM_DISABLE), else a plain line on stderr."""
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _plain_progress(items, desc)
    return tqdm(items, desc=desc, leave=False)


def _plain_progress(items, desc):
    n = len(items)
    for k, item in enumerate(items, 1):
        yield item
        if k == n or k % max(1, n // 10) == 0:
            print(f"\r{desc}: {k}/{n} batches", end="\n" if k == n else "", file=sys.stderr,
                  flush=True)


class Trainer:
    """Fit a model with an optimiser from `tinyattn.training.optim`.

    Parameters
    ----------
    model : Seq2Seq, or any model of the protocol in docs/models.md
        Trained in train mode; `evaluate` runs it in eval mode.
    optimizer : SGD or Adam
        Built on ``model.named_parameters()``.
    pad_id, sos_id, eos_id : int
    batch_size : int
    clip : float or None
        Clip the global gradient norm to this (recurrent gradients explode,
        document 003 figure 4); None disables clipping.
    schedule : StepDecay, PlateauDecay or NoamSchedule, optional
        Built on ``optimizer``. The protocol: a schedule whose ``per_step``
        is True (`NoamSchedule`) is called as ``schedule.step()`` before every
        optimiser step and never at epoch end (a record's ``lr`` is then its
        epoch's last rate). Any other is stepped once at the end of each
        epoch, after the epoch's record (whose ``lr`` is the rate the epoch
        trained with) and before its checkpoint: one whose
        ``uses_valid_loss`` is True (`PlateauDecay`) as
        ``schedule.step(valid_loss)``, needing ``valid_pairs`` in `fit`; any
        other (`StepDecay`) as ``schedule.step()``. Its ``state_dict()``
        goes into every checkpoint (``schedule/<key>`` extras).
    rng : numpy.random.Generator
        Shuffles the training data each epoch; its state is checkpointed,
        so a resumed run sees the same batches as an uninterrupted one.
    show_progress : bool

    Notes
    -----
    Setting ``stop_requested = True`` (a Ctrl-C handler does) stops training
    after the current batch with `Interrupted`; the model is then between
    two updates, and `save` records how far into the epoch it got, so
    `resume` continues with the next batch, exactly as if never stopped.
    """

    def __init__(self, model, optimizer, *, pad_id, sos_id, eos_id, batch_size=32, clip=5.0,
                 schedule=None, bucket=True, rng, show_progress=True):
        for name, value in (("pad_id", pad_id), ("sos_id", sos_id), ("eos_id", eos_id)):
            check_size(value, name, low=0)
        model_pad = getattr(model, "pad_id", None)
        if model_pad is not None and model_pad != pad_id:
            raise ValueError(f"pad_id must be the model's pad_id {model_pad}, got {pad_id!r}")
        check_size(batch_size, "batch_size")
        if clip is not None:
            try:
                clip = check_real(clip, "clip", "(0, inf)")
            except ValueError as err:
                raise ValueError(f"{err} (or None: no clipping)") from None
        bucket, show_progress = check_bool(bucket, "bucket"), check_bool(show_progress,
                                                                         "show_progress")
        check_rng(rng)
        for method in ("__call__", "backward", "named_parameters", "zero_grad", "save",
                       "load_weights", "train", "eval"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"model must be a model of the protocol in docs/models.md "
                                f"(a Seq2Seq, say): it has no {method}(), got "
                                f"{type(model).__name__}")
        try:  # checkpoints store the shuffling state as JSON
            json.dumps(rng.bit_generator.state)
        except TypeError:
            raise TypeError(f"rng must be a Generator whose state a checkpoint can store "
                            f"(PCG64 or PCG64DXSM, as np.random.default_rng(seed) makes), got "
                            f"one on {type(rng.bit_generator).__name__}") from None
        for name in ("step", "zero_grad", "state_dict", "load_state_dict"):
            if not callable(getattr(optimizer, name, None)):
                raise TypeError(f"optimizer must be an optimiser of tinyattn.training.optim "
                                f"(SGD, Adam), got {type(optimizer).__name__}")
        if schedule is not None:
            for name in ("step", "state_dict", "load_state_dict"):
                if not callable(getattr(schedule, name, None)):
                    raise TypeError(f"schedule must be None or an lr schedule of tinyattn."
                                    f"training.schedules (StepDecay, PlateauDecay, NoamSchedule),"
                                    f" got {type(schedule).__name__}")
            if getattr(schedule, "optimizer", optimizer) is not optimizer:
                raise ValueError(f"schedule must be built on this trainer's optimizer, got a "
                                 f"{type(schedule).__name__} of another optimiser (its lr "
                                 f"changes would not reach training)")
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.ids = dict(pad_id=pad_id, sos_id=sos_id, eos_id=eos_id)
        self.batch_size, self.clip, self.bucket = batch_size, clip, bucket
        self.rng, self.show_progress = rng, show_progress
        self.history: list[EpochRecord] = []
        self.batch_losses: list[float] = []  # every batch's mean loss per token, in order
        self.best_valid = np.inf
        self.bad_epochs = 0  # epochs since the validation loss last improved
        self.stop_requested = False
        self.checkpoint_extra = {}  # arrays every checkpoint also stores (e.g. vocabularies)
        self.last_epoch_seconds = None  # training time of the last finished epoch
        self.resumed = False  # continued from a checkpoint (`resume`): owns fit's best_path
        # The epoch in progress: the rng state its batches were drawn from,
        # batches done, running sums (saved on interruption, for resume).
        self._epoch = None

    def train_epoch(self, pairs) -> tuple[float, float]:
        """One pass over ``pairs``: (mean loss per token, mean gradient norm)."""
        if self._epoch is None:
            self._epoch = {"rng": self.rng.bit_generator.state, "done": 0, "loss_sum": 0.0,
                           "tokens": 0, "norm_sum": 0.0, "seconds": 0.0}
        ep = self._epoch
        self.rng.bit_generator.state = ep["rng"]  # the same batches after a resume
        batches = make_batches(pairs, self.batch_size, rng=self.rng, bucket=self.bucket,
                               **self.ids)
        epoch = len(self.history) + 1
        # dropout masks from (the epoch's shuffling state, batch number) alone, so a
        # resumed run draws the same ones and the shuffling stream is not consumed
        dropout_seed = _seed_of(ep["rng"]) if getattr(self.model, "uses_dropout", False) \
            else None
        if ep["done"] > len(batches):
            raise ValueError(f"the epoch in progress had done {ep['done']} batches, but the "
                             f"training data makes {len(batches)}: it is not the data (or "
                             "batch size) the checkpoint was trained with")
        self.model.train()
        start = time.perf_counter()
        try:
            for batch in progress(batches[ep["done"]:], f"epoch {epoch}", self.show_progress):
                if self.stop_requested:
                    raise Interrupted(f"stopped after {ep['done']} of {len(batches)} batches "
                                      f"of epoch {epoch}")
                if dropout_seed is not None:
                    self.model.seed_dropout([dropout_seed, ep["done"]])
                loss, norm = self._step(batch, epoch, ep["done"] + 1, len(batches))
                ep["loss_sum"] += loss * batch.n_tokens
                self.batch_losses.append(float(loss))
                ep["tokens"] += batch.n_tokens
                ep["norm_sum"] += norm
                ep["done"] += 1
        finally:
            ep["seconds"] += time.perf_counter() - start  # before an interruption too
        self._epoch = None
        self.last_epoch_seconds = ep["seconds"]
        return ep["loss_sum"] / ep["tokens"], ep["norm_sum"] / len(batches)

    def _step(self, batch, epoch: int, k: int, n: int) -> tuple[float, float]:
        """Forward, backward, clip and update on one batch: (loss, gradient norm).

        Non-finite values raise `Diverged` before the optimiser step, so a
        NaN never reaches the parameters; numpy's overflow warnings are
        silenced here because these checks report the fault instead.
        """
        stage = "the model's activations became NaN or inf (its weights have grown too large)"
        with np.errstate(**_QUIET):
            try:
                self.model.zero_grad()
                loss = self.model(*batch)
                if not math.isfinite(loss):
                    stage = f"the loss became {loss}"
                    raise NonFiniteError(stage)
                stage = "the gradients became NaN or inf"
                self.model.backward()
                # max_norm = inf measures the norm without clipping
                norm = clip_grad_norm(self.model, self.clip if self.clip else np.inf)
                if getattr(self.schedule, "per_step", False):  # NoamSchedule: this step's lr
                    self.schedule.step()
                self.optimizer.step()
            except NonFiniteError as err:
                if stage.startswith("the gradients"):
                    stage += f" ({err})"
                raise Diverged(stage, epoch=epoch, batch=k, of=n, lr=self.optimizer.lr) from err
        return loss, norm

    def evaluate(self, pairs) -> float:
        """Mean loss per real target token over ``pairs`` (no update)."""
        check_pairs(pairs, "pairs")
        total = tokens = 0.0
        with eval_mode(self.model):
            for batch in make_batches(pairs, self.batch_size, **self.ids):
                total += self.model(*batch) * batch.n_tokens
                tokens += batch.n_tokens
        return total / tokens

    def fit(self, train_pairs, valid_pairs=None, *, epochs, patience=None,
            checkpoint_path=None, best_path=None, on_epoch=None) -> list[EpochRecord]:
        """Train until ``epochs`` epochs in all (counting resumed ones) or
        until the validation loss has not improved for ``patience`` epochs.

        Parameters
        ----------
        train_pairs, valid_pairs : list of (src_ids, tgt_ids)
            ``valid_pairs`` is optional, except with ``best_path`` or a
            schedule that steps on the validation loss (`PlateauDecay`).
        epochs : int
            The number of epochs in all, resumed ones included.
        patience : int, optional
            Stop early after this many epochs in a row whose validation
            loss is not below the best so far (`best_valid`).
        checkpoint_path : str or os.PathLike, optional
            A checkpoint (model, optimiser, schedule and data-order state,
            `save`) is written here atomically after every epoch.
        best_path : str or os.PathLike, optional
            After each epoch whose validation loss is below every earlier
            one, the model is written here atomically as
            ``model.save(best_path, extra=...)``: its weights and
            configuration, the arrays of ``checkpoint_extra`` (the
            vocabularies, say) and ``best_epoch`` (0-d int64) and
            ``best_valid_loss`` (0-d float64), but no optimiser or trainer
            state: it is a model to load (``Seq2Seq.load``), not a run to
            resume. A diverged epoch never writes it; an epoch that is not
            the best leaves it as it is. It is written before the epoch's
            checkpoint, so a run stopped between the two redoes the epoch on
            `resume` and writes the same file. Its directory must exist, and
            it must differ from ``checkpoint_path``; an existing file there is
            refused while this trainer has finished no epoch (a user's file
            is never overwritten), and taken as this run's own after that
            (a `resume`, or another `fit` call).
        on_epoch : callable, optional
            Called as ``on_epoch(record)`` after each epoch (to print it, say),
            once its files are written.

        Returns
        -------
        list of EpochRecord
            `history`, every epoch so far.

        Raises
        ------
        Diverged
            When the loss or gradients become NaN or inf; nothing of the
            failing epoch is saved. A finite loss that grows to
            `GROWTH_WARNING` times its first batch's value gives a
            `LossGrowthWarning` instead.
        """
        check_pairs(train_pairs, "train_pairs")
        if valid_pairs is not None:
            check_pairs(valid_pairs, "valid_pairs")
        check_size(epochs, "epochs")
        check_size(patience, "patience", none_ok=True)
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"on_epoch must be None or a function of the epoch's record, "
                            f"got {type(on_epoch).__name__}")
        if checkpoint_path is not None:
            check_path(checkpoint_path, "checkpoint_path")
        if best_path is not None:
            best_path = self._check_best_path(best_path, checkpoint_path, valid_pairs)
        plateau = self.schedule is not None and bool(getattr(self.schedule, "uses_valid_loss",
                                                             False))
        if plateau and valid_pairs is None:
            raise ValueError(f"valid_pairs is needed: the schedule {type(self.schedule).__name__}"
                             f" steps on the validation loss, got valid_pairs=None")
        while len(self.history) < epochs:
            train_loss, grad_norm = self.train_epoch(train_pairs)
            epoch = len(self.history) + 1
            try:
                with np.errstate(**_QUIET):
                    valid_loss = None if valid_pairs is None else self.evaluate(valid_pairs)
            except NonFiniteError:
                valid_loss = math.nan  # an activation overflowed: the same divergence
            if valid_loss is not None and not math.isfinite(valid_loss):
                raise Diverged(f"the validation loss became {valid_loss}", epoch=epoch,
                               lr=self.optimizer.lr)
            first = self.batch_losses[0]
            if train_loss > GROWTH_WARNING * first:
                warnings.warn(LossGrowthWarning(
                    f"epoch {epoch}: the training loss {train_loss:.4g} is "
                    f"{train_loss / first:.3g} times the first batch's {first:.4g}; training "
                    f"is diverging: lower the learning rate (lr={self.optimizer.lr:g})"),
                    stacklevel=2)
            bad = non_finite([(n, v) for n, v, _ in self.model.named_parameters()]
                             + list(self.optimizer.state_dict().items()))
            if bad:  # the last update overflowed: this epoch is neither recorded nor saved
                raise Diverged(f"NaN or inf in {', '.join(bad)}", epoch=epoch,
                               lr=self.optimizer.lr)
            record = EpochRecord(epoch, train_loss, valid_loss, self.last_epoch_seconds,
                                 grad_norm, self.optimizer.lr)
            self.history.append(record)
            if plateau:
                self.schedule.step(valid_loss)
            elif self.schedule is not None and not getattr(self.schedule, "per_step", False):
                self.schedule.step()
            best = valid_loss is not None and valid_loss < self.best_valid
            if best:
                self.best_valid, self.bad_epochs = valid_loss, 0
            elif valid_loss is not None:
                self.bad_epochs += 1
            if best and best_path is not None:  # before the checkpoint (see the docstring)
                self.model.save(best_path, extra={
                    **self.checkpoint_extra, "best_epoch": np.array(epoch, dtype=np.int64),
                    "best_valid_loss": np.array(valid_loss, dtype=np.float64)})
            if checkpoint_path is not None:
                self.save(checkpoint_path)
            if on_epoch is not None:
                on_epoch(record)
            if self.stop_requested:  # asked during the epoch's last batch: it is saved
                raise Interrupted(f"stopped after epoch {epoch}")
            if patience is not None and self.bad_epochs >= patience:
                break
        return self.history

    def _check_best_path(self, best_path, checkpoint_path, valid_pairs) -> str:
        """`fit`'s ``best_path``, checked before any training."""
        best_path = check_path(best_path, "best_path")
        if valid_pairs is None:
            raise ValueError("best_path needs valid_pairs: the best epoch is the one with the "
                             "lowest validation loss, got valid_pairs=None")
        full = os.path.abspath(best_path)
        if checkpoint_path is not None and (
                full == os.path.abspath(checkpoint_path)
                or (os.path.exists(full) and os.path.exists(checkpoint_path)
                    and os.path.samefile(full, checkpoint_path))):
            raise ValueError(f"best_path must be another file than checkpoint_path, got "
                             f"{best_path!r} for both")
        if not os.path.isdir(os.path.dirname(full)):
            raise FileNotFoundError(f"best_path {best_path!r}: directory "
                                    f"{os.path.dirname(full)!r} does not exist")
        if os.path.isdir(full):
            raise IsADirectoryError(f"best_path {best_path!r} is a directory, not a file path")
        if os.path.lexists(full) and not self.history and not self.resumed:
            raise FileExistsError(f"best_path {best_path!r} already exists and this trainer "
                                  "has finished no epoch and resumed no checkpoint, so it is not "
                                  "this run's: remove it or choose another path (it is never "
                                  "overwritten)")
        return best_path

    # ----- checkpoints ------------------------------------------------------
    def _state(self) -> dict:
        return {"history": [asdict(r) for r in self.history],
                "rng": self.rng.bit_generator.state,
                "best_valid": None if np.isinf(self.best_valid) else self.best_valid,
                "bad_epochs": self.bad_epochs,
                "batch_losses": self.batch_losses,
                "epoch_in_progress": self._epoch}

    def save(self, path) -> None:
        """Model, optimiser, schedule and data-order state in one checkpoint,
        with the arrays of ``checkpoint_extra`` stored alongside."""
        extra = {**self.checkpoint_extra, "trainer": np.array(json.dumps(self._state()))}
        if self.schedule is not None:
            extra.update({f"schedule/{k}": v for k, v in self.schedule.state_dict().items()})
        self.model.save(path, optimizer=self.optimizer, extra=extra)

    def _rng_state(self, state, name: str) -> dict:
        """``state`` if it is a state of this trainer's kind of bit generator."""
        probe = type(self.rng.bit_generator)()
        try:
            probe.state = state
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{name}: not a {type(probe).__name__} state ({err})") from None
        return state

    def _restore(self, state) -> None:
        """Apply a `_state` dict, checking each field; nothing is changed on error."""
        if not isinstance(state, dict):
            raise TypeError(f"expected a JSON object, got {type(state).__name__}")
        # each record's fields: the interval check_real enforces, or None allowed
        record_fields = {"epoch": None, "train_loss": "[0, inf)", "valid_loss": "[0, inf)",
                         "seconds": "[0, inf)", "grad_norm": "[0, inf)", "lr": "(0, inf)"}
        names = [f.name for f in fields(EpochRecord)]
        if not isinstance(state["history"], list):
            raise TypeError(f"history must be a list, got {type(state['history']).__name__}")
        history = []
        for k, r in enumerate(state["history"]):
            if not isinstance(r, dict) or sorted(r) != sorted(names):
                raise ValueError(f"history[{k}] must have the fields {names}, got {r!r}")
            if r["epoch"] != k + 1 or not is_int(r["epoch"]):
                raise ValueError(f"history[{k}].epoch must be {k + 1}, got {r['epoch']!r}")
            for key, interval in record_fields.items():
                if interval and not (key == "valid_loss" and r[key] is None):
                    check_real(r[key], f"history[{k}].{key}", interval)
            history.append(EpochRecord(**r))
        self._rng_state(state["rng"], "rng")
        best = state["best_valid"]
        if best is not None:
            check_real(best, "best_valid")
        check_size(state["bad_epochs"], "bad_epochs", low=0)
        losses = state.get("batch_losses", [])
        if not isinstance(losses, list):
            raise TypeError(f"batch_losses must be a list, got {type(losses).__name__}")
        for k, x in enumerate(losses):
            check_real(x, f"batch_losses[{k}]", "[0, inf)")
        epoch = state.get("epoch_in_progress")
        keys = {"rng", "done", "loss_sum", "tokens", "norm_sum", "seconds"}
        if epoch is not None:
            if not isinstance(epoch, dict) or set(epoch) != keys:
                raise ValueError(f"epoch_in_progress must be null or an object with the keys "
                                 f"{sorted(keys)}, got {epoch!r:.200}")
            self._rng_state(epoch["rng"], "epoch_in_progress.rng")
            for key in ("done", "tokens"):
                check_size(epoch[key], f"epoch_in_progress.{key}", low=0)
            for key in ("loss_sum", "norm_sum", "seconds"):
                check_real(epoch[key], f"epoch_in_progress.{key}", "[0, inf)")
            if (epoch["done"] == 0) != (epoch["tokens"] == 0):
                raise ValueError(f"epoch_in_progress: {epoch['done']} batches done but "
                                 f"{epoch['tokens']} tokens counted")
        self.history, self.best_valid = history, np.inf if best is None else best
        self.rng.bit_generator.state = state["rng"]
        self.bad_epochs, self._epoch, self.batch_losses = state["bad_epochs"], epoch, list(losses)

    def resume(self, path) -> Trainer:
        """Load a checkpoint written by `save` and continue from it.

        All or nothing: when any part of the checkpoint is unusable, the
        model, optimiser and trainer are left as they were.
        """
        params = {n: v.copy() for n, v, _ in self.model.named_parameters()}
        optim_state = {k: np.copy(v) for k, v in self.optimizer.state_dict().items()}
        state = json.loads(json.dumps(self._state()))
        schedule = None if self.schedule is None else dict(self.schedule.state_dict())
        try:
            self._resume(path)
        except BaseException:
            for n, v, _ in self.model.named_parameters():
                np.copyto(v, params[n])
            self.optimizer.load_state_dict(optim_state)
            self._restore(state)
            if schedule is not None:
                self.schedule.load_state_dict(schedule)
            raise
        # a run's best file may exist before its first epoch is in the history:
        # stopped in epoch 1, resumed, then killed between best file and checkpoint
        self.resumed = True
        return self

    def _resume(self, path) -> None:
        ckpt = self.model.load_weights(path)
        if ckpt.optimizer_state is None or "trainer" not in ckpt.extra:
            raise ValueError(f"{str(path)!r} is a model checkpoint without training state; "
                             "it can be loaded with Seq2Seq.load but not resumed")
        try:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{str(path)!r}: the optimiser state is unusable: {err}") from None
        try:
            self._restore(json.loads(str(ckpt.extra["trainer"])))
        except (TypeError, ValueError, KeyError) as err:
            why = f"missing field {err}" if isinstance(err, KeyError) else err
            raise ValueError(f"{str(path)!r}: the training state stored in it is malformed "
                             f"({why})") from None
        if self.schedule is not None:
            try:
                self.schedule.load_state_dict({k[len("schedule/"):]: v for k, v in
                                               ckpt.extra.items() if k.startswith("schedule/")})
            except (TypeError, ValueError) as err:
                raise ValueError(f"{str(path)!r}: the schedule state is unusable: {err}") \
                    from None
