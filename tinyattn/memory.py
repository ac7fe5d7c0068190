"""`Memory`: what a decoder reads from the encoder, prepared once per
source batch, and where the gradients for it collect.

Every decoder takes one (`tinyattn.decoders`): the plain decoder reads its
``context`` (the encoder's final state, c); the attention decoders read
``annotations`` and the projected ``keys``. A decoder's backward returns a
`MemoryGrad`, so `tinyattn.Seq2Seq` treats every decoder alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from tinyattn.recurrent import DeferredGrads


@dataclass
class Memory:
    """The encoder side of a batch, as the decoder reads it.

    Attributes
    ----------
    annotations : ndarray of shape (B, S, Hk)
        The encoder states h_j (``[→h_j ; ←h_j]`` when bidirectional).
    mask : bool ndarray of shape (B, S)
        True at real source positions.
    keys : ndarray of shape (B, S, K), or None
        The annotations as the score function reads them, projected once
        per batch: ``annotations @ U_a`` (Bahdanau), ``annotations @ W_a.T``
        (Luong general), the annotations themselves (dot). None for the
        plain decoder, which does not attend.
    context : ndarray of shape (B, Hk), or None
        The encoder's final state c, read by the plain decoder.
    dkeys : ndarray like ``keys``
        Gradient of the keys, summed over the decoder steps.
    pending : list of (alpha, dcontext)
        Each attention step's weights and context gradient, waiting to
        become ``alpha^T @ dcontext`` over all steps in one product.
    deferred : DeferredGrads
        Query-side weight-gradient products, run once after the last step.
    """

    annotations: np.ndarray
    mask: np.ndarray
    keys: np.ndarray | None = None
    context: np.ndarray | None = None
    dkeys: np.ndarray | None = field(default=None, repr=False)
    pending: list = field(default_factory=list, repr=False)
    deferred: DeferredGrads = field(default_factory=DeferredGrads, repr=False)

    def __post_init__(self):
        if self.keys is not None:
            self.dkeys = np.zeros_like(self.keys)

    @property
    def lengths(self) -> np.ndarray:
        """(B,) real source lengths."""
        return self.mask.sum(axis=1)


class MemoryGrad(NamedTuple):
    """A decoder's gradient for its `Memory`: ``annotations (B, S, Hk)`` and
    ``context (B, Hk)``; either is None when the decoder did not read it."""

    annotations: np.ndarray | None
    context: np.ndarray | None
