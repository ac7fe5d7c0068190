"""Argument checks shared by every public entry point (docs/design.md §5).

Each check raises `ValueError` or `TypeError` naming the argument, what
was expected and what was received. Nothing is silently broadcast.
"""

from __future__ import annotations

import numpy as np

_FLOATS = {np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64}


def check_dtype_name(dtype):
    """Return ``np.float32`` or ``np.float64``; reject anything else."""
    try:
        key = np.dtype(dtype)
    except TypeError:
        key = None
    if key not in _FLOATS:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return _FLOATS[key]


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def is_int(value) -> bool:
    """A Python or NumPy integer, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_size(value, name: str, *, low: int = 1, high: int | None = None,
               none_ok: bool = False) -> int | None:
    """Return ``value`` as an int in ``low..high`` (no upper end when ``high`` is None);
    with ``none_ok``, None is accepted and returned."""
    if none_ok and value is None:
        return None
    if not is_int(value) or value < low or (high is not None and value > high):
        if high is not None:
            want = f"an int in {low}..{high}"
        else:
            want = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {'None or ' if none_ok else ''}{want}, "
                         f"got {value!r}")
    return int(value)


def _shape_str(expected) -> str:
    return "(" + ", ".join(str(s) for s in expected) + ("," if len(expected) == 1 else "") + ")"


def check_array(x, name: str, expected, dtype) -> np.ndarray:
    """Check an ndarray's shape (None = any size), float dtype and finiteness.

    ``expected`` is a tuple of sizes, ``None`` for a free size; the
    message shows free sizes by the letters given in ``expected`` when
    they are strings.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    shown = _shape_str(["?" if s is None else s for s in expected])
    if x.ndim != len(expected) or any(
        isinstance(s, int) and s != n for s, n in zip(expected, x.shape)
    ):
        raise ValueError(f"{name} must have shape {shown}, got {x.shape}")
    if x.dtype != np.dtype(dtype):
        raise TypeError(
            f"{name} must have dtype {np.dtype(dtype).name} (the layer's dtype), "
            f"got {x.dtype.name}; convert it with .astype(np.{np.dtype(dtype).name})"
        )
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_lengths(lengths, batch: int, max_len: int, name: str = "lengths"):
    """Return ``lengths`` as an int64 array of shape (B,), each in 1..T.

    ``None`` stays ``None`` (every sequence has length T).
    """
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype.name}")
    if arr.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), got {arr.shape}")
    bad = (arr < 1) | (arr > max_len)
    if bad.any():
        b = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be in 1..{max_len} (the padded length T), "
            f"got {name}[{b}] = {int(arr[b])}"
        )
    return arr.astype(np.int64)


def check_ids(ids, name: str, vocab: int, *, shape=None, where=None) -> np.ndarray:
    """Token ids: an int array with every entry in ``0..vocab - 1``.

    ``shape`` (sizes, None for any) fixes the shape; ``where`` (a bool array
    of the same shape) limits the range check to those entries, e.g. the
    real tokens of a padded batch. Returns the ids as an ndarray.

    Examples
    --------
    >>> check_ids([[3, 9]], "src", 9)
    Traceback (most recent call last):
    ...
    ValueError: src must be token ids in 0..8 (the vocabulary has 9), got src[0, 1] = 9
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype.name}")
    if shape is not None and (arr.ndim != len(shape) or any(
            e is not None and e != g for e, g in zip(shape, arr.shape))):
        raise ValueError(f"{name} must have shape {_shape_str(shape)}, got {arr.shape}")
    bad = (arr < 0) | (arr >= vocab)
    if where is not None:
        bad &= where
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        index = ", ".join(map(str, first))
        raise ValueError(f"{name} must be token ids in 0..{vocab - 1} (the vocabulary has "
                         f"{vocab}), got {name}[{index}] = {int(arr[first])}")
    return arr


def check_options(name: str, value, allowed) -> None:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}; got {value!r}")


def check_mask(mask, name: str, batch: int, steps: int, what: str) -> np.ndarray:
    """A (batch, steps) bool mask, True at real tokens, with at least one per row.

    ``what`` names a row in the message ("source", "sequence").
    """
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (batch, steps):
        raise ValueError(f"{name} must be a bool array of shape ({batch}, {steps}) (True = "
                         f"real token), got {mask.dtype.name} {mask.shape}")
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"{name}[{int(np.flatnonzero(empty)[0])}] has no True entry: "
                         f"an all-pad {what} has nothing to attend to")
    return mask
