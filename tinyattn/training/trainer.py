"""Training: mini-batches, gradient clipping, validation, early stopping,
checkpoints that resume exactly.

::

    trainer = Trainer(model, Adam(model.named_parameters(), lr=3e-3),
                      pad_id=0, sos_id=1, eos_id=2, rng=np.random.default_rng(0))
    history = trainer.fit(train_pairs, valid_pairs, epochs=10, patience=2,
                          checkpoint_path="runs/x/checkpoint.npz")

``pairs`` are lists of ``(src_ids, tgt_ids)``. Each epoch appends an
`EpochRecord` (loss, validation loss, time, gradient norm, learning rate).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from tinyattn.training.batching import make_batches
from tinyattn.training.optim import clip_grad_norm


class Interrupted(Exception):
    """Training stopped between two batches because `Trainer.stop_requested` was set."""


@dataclass
class EpochRecord:
    """What one training epoch measured (`Trainer.history` holds one per epoch)."""

    epoch: int
    train_loss: float  # mean cross-entropy per real target token
    valid_loss: float | None
    seconds: float  # training time of the epoch (validation not included)
    grad_norm: float  # mean global gradient norm before clipping
    lr: float


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
    schedule : StepDecay, optional
        Stepped once per epoch.
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
        desc = f"epoch {len(self.history) + 1}"
        self.model.train()
        start = time.perf_counter()
        try:
            for batch in progress(batches[ep["done"]:], desc, self.show_progress):
                if self.stop_requested:
                    raise Interrupted(f"stopped after {ep['done']} of {len(batches)} batches "
                                      f"of epoch {len(self.history) + 1}")
                self.model.zero_grad()
                loss = self.model(*batch)
                self.model.backward()
                # max_norm = inf measures the norm without clipping
                norm = clip_grad_norm(self.model, self.clip if self.clip else np.inf)
                self.optimizer.step()
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

    def evaluate(self, pairs) -> float:
        """Mean loss per real target token over ``pairs`` (no update)."""
        if len(pairs) == 0:
            raise ValueError("pairs is empty: nothing to evaluate")
        total = tokens = 0.0
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in make_batches(pairs, self.batch_size, **self.ids):
                total += self.model(*batch) * batch.n_tokens
                tokens += batch.n_tokens
        finally:
            self.model.train(was_training)
        return total / tokens

    def fit(self, train_pairs, valid_pairs=None, *, epochs, patience=None,
            checkpoint_path=None, on_epoch=None) -> list[EpochRecord]:
        """Train until ``epochs`` epochs in all (counting resumed ones) or
        until the validation loss has not improved for ``patience`` epochs.

        With ``checkpoint_path``, a checkpoint is written after every epoch;
        ``on_epoch(record)`` is called after each epoch (to print it, say).
        """
        while len(self.history) < epochs:
            train_loss, grad_norm = self.train_epoch(train_pairs)
            valid_loss = None if valid_pairs is None else self.evaluate(valid_pairs)
            record = EpochRecord(len(self.history) + 1, train_loss, valid_loss,
                                 self.last_epoch_seconds, grad_norm, self.optimizer.lr)
            self.history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if self.schedule is not None:
                self.schedule.step()
            if valid_loss is not None and valid_loss < self.best_valid:
                self.best_valid, self.bad_epochs = valid_loss, 0
            elif valid_loss is not None:
                self.bad_epochs += 1
            if checkpoint_path is not None:
                self.save(checkpoint_path)
            if patience is not None and self.bad_epochs >= patience:
                break
        return self.history

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

    def resume(self, path) -> Trainer:
        """Load a checkpoint written by `save` and continue from it."""
        ckpt = self.model.load_weights(path)
        if ckpt.optimizer_state is None or "trainer" not in ckpt.extra:
            raise ValueError(f"{str(path)!r} is a model checkpoint without training state; "
                             "it can be loaded with Seq2Seq.load but not resumed")
        self.optimizer.load_state_dict(ckpt.optimizer_state)
        state = json.loads(str(ckpt.extra["trainer"]))
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.rng.bit_generator.state = state["rng"]
        self.best_valid = np.inf if state["best_valid"] is None else state["best_valid"]
        self.bad_epochs = state["bad_epochs"]
        self._epoch = state.get("epoch_in_progress")
        self.batch_losses = list(state.get("batch_losses", []))
        if self.schedule is not None:
            self.schedule.load_state_dict({k[len("schedule/"):]: v for k, v in ckpt.extra.items()
                                           if k.startswith("schedule/")})
        return self
