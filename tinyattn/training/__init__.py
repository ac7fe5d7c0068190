"""Training machinery: optimisers and clipping (`optim`), the training loop
(`trainer`), checkpoints (`checkpoint`) and padded batches (`batching`).

None of it is seq2seq maths: it works on any model of the protocol in
docs/models.md.
"""

from tinyattn.training.batching import Batch, make_batches, pad_batch, pad_ids
from tinyattn.training.checkpoint import load_checkpoint, save_checkpoint
from tinyattn.training.optim import SGD, Adam, clip_grad_norm
from tinyattn.training.schedules import NoamSchedule, PlateauDecay, StepDecay, WarmupLinear
from tinyattn.training.trainer import EpochRecord, Interrupted, Trainer

__all__ = ["SGD", "Adam", "Batch", "EpochRecord", "Interrupted", "NoamSchedule", "PlateauDecay",
           "StepDecay", "WarmupLinear", "Trainer", "clip_grad_norm", "load_checkpoint",
           "make_batches", "pad_batch", "pad_ids", "save_checkpoint"]
