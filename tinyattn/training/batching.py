"""Padding, lengths and batches for sequence pairs of token ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyattn._validate import check_size


@dataclass
class Batch:
    """A padded batch, the arguments of `Seq2Seq.__call__` in order.

    ``tgt_in`` is ``<sos> y_1 … y_n`` and ``tgt_out`` is ``y_1 … y_n <eos>``
    (teacher forcing: step i reads y_{i-1} and predicts y_i), so a target
    of n tokens has length n + 1.
    """

    src: np.ndarray  # (B, S) int
    src_lengths: np.ndarray  # (B,)
    tgt_in: np.ndarray  # (B, T) int
    tgt_out: np.ndarray  # (B, T) int
    tgt_lengths: np.ndarray  # (B,)

    def __iter__(self):
        return iter((self.src, self.src_lengths, self.tgt_in, self.tgt_out, self.tgt_lengths))

    @property
    def n_tokens(self) -> int:
        """The number of real target tokens (the loss is a mean over them)."""
        return int(self.tgt_lengths.sum())


def pad_ids(seqs, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad id sequences into ``(B, max length)`` int64 and return their lengths ``(B,)``."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), lengths.max()), pad_id, dtype=np.int64)
    for row, seq in zip(out, seqs):
        row[: len(seq)] = seq
    return out, lengths


def pad_batch(pairs, *, pad_id: int, sos_id: int, eos_id: int) -> Batch:
    """Pad a list of ``(src_ids, tgt_ids)`` pairs into one `Batch`.

    An empty target is allowed (``tgt_in = <sos>``, ``tgt_out = <eos>``: an
    undertrained model's empty output can be scored and drawn); an empty
    source is not, since the encoder needs a token.
    """
    if len(pairs) == 0:
        raise ValueError("pairs is empty: a batch needs at least one example")
    for k, (src, _) in enumerate(pairs):
        if len(src) == 0:
            raise ValueError(f"example {k} has an empty source sequence")
    src, src_lengths = pad_ids([list(s) for s, _ in pairs], pad_id)
    tgt_in, tgt_lengths = pad_ids([[sos_id, *t] for _, t in pairs], pad_id)
    tgt_out, _ = pad_ids([[*t, eos_id] for _, t in pairs], pad_id)
    return Batch(src, src_lengths, tgt_in, tgt_out, tgt_lengths)


def make_batches(pairs, batch_size: int, *, pad_id: int, sos_id: int, eos_id: int,
                 rng: np.random.Generator | None = None, bucket: bool = False) -> list[Batch]:
    """Split ``pairs`` into padded batches.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Shuffle the examples (and, with buckets, the batch order); None
        keeps the given order.
    bucket : bool
        Group examples of similar source length (within windows of 50
        batches) so batches carry less padding.
    """
    check_size(batch_size, "batch_size")
    order = np.arange(len(pairs)) if rng is None else rng.permutation(len(pairs))
    if bucket:
        window = 50 * batch_size
        chunks = [order[i:i + window] for i in range(0, len(order), window)]
        order = np.concatenate([c[np.argsort([len(pairs[j][0]) for j in c], kind="stable")]
                                for c in chunks]) if chunks else order
    groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if bucket and rng is not None:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    return [pad_batch([pairs[j] for j in g], pad_id=pad_id, sos_id=sos_id, eos_id=eos_id)
            for g in groups]
