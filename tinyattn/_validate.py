"""Argument checks shared by every public entry point (docs/design.md §5).

Each check raises `ValueError` or `TypeError` naming the argument, what
was expected and what was received. Nothing is silently broadcast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

_FLOATS = {np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64}


def check_dtype_name(dtype):
    """Return ``np.float32`` or ``np.float64``; reject anything else."""
    if dtype is not None and not isinstance(dtype, (type, np.dtype, str)):
        # np.dtype() would read the dtype off an array or a scalar such as np.float64(nan)
        raise TypeError(f"dtype must be np.float32 or np.float64, got {_show(dtype)}")
    try:
        key = np.dtype(dtype)
    except (TypeError, ValueError):  # np.dtype("x") is a TypeError, some tuples ValueErrors
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


def _show(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_int(value) -> bool:
    """A Python or NumPy integer, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A Python or NumPy real number (int or float), and not a bool."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def check_bool(value, name: str) -> bool:
    """Return ``value`` as a bool; only True and False (or NumPy's) are accepted.

    ``"no"``, 0, 1 and None are refused rather than read by their truth value.

    Examples
    --------
    >>> check_bool("no", "bidirectional")
    Traceback (most recent call last):
    ...
    TypeError: bidirectional must be True or False, got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_show(value)}")
    return bool(value)


def check_real(value, name: str, interval: str = "(-inf, inf)") -> float:
    """Return ``value`` as a float in ``interval``; else a ValueError naming ``name``.

    ``interval`` is written as in maths, ``"(0, inf)"``, ``"[0, 1)"``,
    ``"[0, 10]"``; infinity is accepted only where the interval is closed at
    it (``"(0, inf]"``). Only Python and NumPy ints and floats are numbers
    here: bool, str, complex, None, arrays and NaN are refused.

    Examples
    --------
    >>> check_real(float("nan"), "length_penalty", "[0, 10]")
    Traceback (most recent call last):
    ...
    ValueError: length_penalty must be a number in [0, 10], got nan
    """
    lo, hi = (float(x) for x in interval[1:-1].split(","))
    v = math.nan
    if is_real(value):
        try:
            v = float(value)
        except OverflowError:  # a Python int beyond the float range
            v = math.inf if value > 0 else -math.inf
    ok = ((v > lo if interval[0] == "(" else v >= lo)
          and (v < hi if interval[-1] == ")" else v <= hi))  # NaN compares False
    if not ok:
        want = "a finite number" if interval == "(-inf, inf)" else f"a number in {interval}"
        raise ValueError(f"{name} must be {want}, got {_show(value)}")
    return v


def check_id(value, name: str, vocab: int, *, none_ok: bool = False) -> int | None:
    """One token id: an int in ``0..vocab - 1`` (not a bool, a float or a str);
    with ``none_ok``, None is accepted and returned.

    Examples
    --------
    >>> check_id(1.5, "pad_id", 9)
    Traceback (most recent call last):
    ...
    ValueError: pad_id must be an id in 0..8, got 1.5
    """
    if none_ok and value is None:
        return None
    if not is_int(value) or not 0 <= value < vocab:
        raise ValueError(f"{name} must be {'None or ' if none_ok else ''}an id in "
                         f"0..{vocab - 1}, got {_show(value)}")
    return int(value)


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
                         f"got {_show(value)}")
    return int(value)


MAX_DIM = 2**24  # largest layer or vocabulary size: beyond it no weight could be allocated


def check_dim(value, name: str, *, none_ok: bool = False) -> int | None:
    """A layer size, vocabulary size or beam width: an int in ``1..MAX_DIM`` (2**24).

    An absurd size is refused here rather than by NumPy's allocator. (Sizes
    each within the limit can still multiply to more memory than the machine
    has: that is NumPy's MemoryError, which the command line reports.)
    """
    checked = check_size(value, name, none_ok=none_ok)
    if checked is not None and checked > MAX_DIM:
        raise ValueError(f"{name} must be a positive int of at most {MAX_DIM} (2**24), "
                         f"got {_show(value)}")
    return checked


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
        raise NonFiniteError(f"{name} contains NaN or inf")
    return x


def as_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)``, with a ragged nesting reported under ``name``
    instead of as NumPy's "inhomogeneous shape" error."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be an array (equal-length rows), got "
                         f"{_show(value)}") from err


def is_sequence(value) -> bool:
    """Iterable and a sequence of items: not a str, bytes, mapping or 0-d array."""
    return (hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))
            and not (isinstance(value, np.ndarray) and value.ndim == 0))


def as_list(value, name: str, what: str = "a sequence (a list)") -> list:
    """``list(value)`` for a sequence; a str, bytes, mapping, 0-d array or anything not
    iterable is a TypeError naming ``name`` (``what`` says what was expected)."""
    if not is_sequence(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {_show(value)}")
    return list(value)


def as_real_array(value, name: str, *, finite: bool = True) -> np.ndarray:
    """An array_like of real numbers as an ndarray (ints or floats, dtype kept).

    Complex, bool, str and object arrays are a TypeError naming ``name``; with
    ``finite``, NaN or inf a `NonFiniteError`.
    """
    arr = as_array(value, name)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype.name}")
    if finite and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise NonFiniteError(f"{name} contains NaN or inf")
    return arr


def check_span(span, name: str, S: int) -> tuple[int, int]:
    """A half-open source span ``(start, end)`` of ints with 0 <= start < end <= S."""
    ok = isinstance(span, (tuple, list)) and len(span) == 2 and all(is_int(v) for v in span)
    if not ok:
        raise TypeError(f"{name} must be None or a (start, end) pair of ints, got {_show(span)}")
    start, end = int(span[0]), int(span[1])
    if not 0 <= start < end <= S:
        raise ValueError(
            f"{name} must be a half-open source span (start, end) with 0 <= start < end <= "
            f"{S} (the source length of its alpha), got ({start}, {end})"
        )
    return start, end


def check_lengths(lengths, batch: int, max_len: int, name: str = "lengths"):
    """Return ``lengths`` as an int64 array of shape (B,), each in 1..T.

    ``None`` stays ``None`` (every sequence has length T).
    """
    if lengths is None:
        return None
    arr = as_array(lengths, name)
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


def check_ids(ids, name: str, vocab: int | None, *, shape=None, where=None) -> np.ndarray:
    """Token ids: an int array with every entry in ``0..vocab - 1``.

    ``shape`` (sizes, None for any) fixes the shape; ``where`` (a bool array
    of the same shape) limits the range check to those entries, e.g. the
    real tokens of a padded batch; ``vocab`` None checks only that they are
    non-negative. Returns the ids as an ndarray.

    Examples
    --------
    >>> check_ids([[3, 9]], "src", 9)
    Traceback (most recent call last):
    ...
    ValueError: src must be token ids in 0..8 (the vocabulary has 9), got src[0, 1] = 9
    """
    arr = as_array(ids, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype.name}")
    if shape is not None and (arr.ndim != len(shape) or any(
            e is not None and e != g for e, g in zip(shape, arr.shape))):
        raise ValueError(f"{name} must have shape {_shape_str(shape)}, got {arr.shape}")
    bad = (arr < 0) if vocab is None else (arr < 0) | (arr >= vocab)
    if where is not None:
        bad &= where
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        index = ", ".join(map(str, first))
        want = ("non-negative token ids" if vocab is None else
                f"token ids in 0..{vocab - 1} (the vocabulary has {vocab})")
        raise ValueError(f"{name} must be {want}, got {name}[{index}] = {int(arr[first])}")
    return arr


def _same_option(value, option) -> bool:
    if value is option:
        return True
    if isinstance(option, str):  # never compare an array or a list with ==
        return isinstance(value, str) and value == option
    return is_int(option) and is_int(value) and value == option


def check_options(name: str, value, allowed) -> None:
    """``value`` must be one of ``allowed`` (strs, ints or None), compared by type too."""
    if not any(_same_option(value, a) for a in allowed):
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}; got {_show(value)}")


def check_mask(mask, name: str, batch: int, steps: int, what: str) -> np.ndarray:
    """A (batch, steps) bool mask, True at real tokens, with at least one per row.

    ``what`` names a row in the message ("source", "sequence").
    """
    mask = as_array(mask, name)
    if mask.dtype != bool or mask.shape != (batch, steps):
        raise ValueError(f"{name} must be a bool array of shape ({batch}, {steps}) (True = "
                         f"real token), got {mask.dtype.name} {mask.shape}")
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"{name}[{int(np.flatnonzero(empty)[0])}] has no True entry: "
                         f"an all-pad {what} has nothing to attend to")
    return mask


def check_path(path, name: str = "path", what: str = "") -> str:
    """``path`` as a str; a TypeError naming ``name`` unless it is a str or
    os.PathLike (``what`` adds what else is expected, e.g. "ending in .png")."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike)"
                        f"{' ' + what if what else ''}, got {type(path).__name__}")
    return os.fspath(path)


def non_finite(named) -> list[str]:
    """The names of the float arrays among ``(name, array)`` pairs that hold NaN or inf."""
    return [name for name, a in named
            if np.asarray(a).dtype.kind in "fc" and not np.isfinite(a).all()]


class NonFiniteError(ValueError):
    """A value that must be finite is NaN or inf (an input, a gradient, a loss, a weight).

    A `ValueError`, so ``except ValueError`` still catches it; the trainer
    catches this class alone to report divergence in the user's terms.
    """


def check_targets(src, tgt_in, tgt_out, tgt_lengths, tgt_vocab: int):
    """A teacher-forced batch's target side (the model protocol, docs/models.md):
    ``(tgt_in, tgt_out, tgt_lengths, tgt_mask)`` checked, ``tgt_mask (B, T)`` True at
    real tokens. ``src`` is only compared for its batch size (the model checks it)."""
    from tinyattn.functional import length_mask  # functional imports this module

    tgt_in = check_ids(tgt_in, "tgt_in", tgt_vocab, shape=(None, None))
    tgt_out = as_array(tgt_out, "tgt_out")
    if tgt_out.shape != tgt_in.shape:
        raise ValueError(f"tgt_out must have the shape of tgt_in {tgt_in.shape}, "
                         f"got {tgt_out.shape}")
    src = as_array(src, "src")
    if src.ndim == 2 and src.shape[0] != tgt_in.shape[0]:
        raise ValueError(f"src and tgt_in must have the same batch size, got "
                         f"{src.shape[0]} and {tgt_in.shape[0]}")
    B, T = tgt_in.shape
    tgt_lengths = check_lengths(as_array(tgt_lengths, "tgt_lengths"), B, T, "tgt_lengths")
    tgt_mask = length_mask(tgt_lengths, T)
    tgt_out = check_ids(tgt_out, "tgt_out", tgt_vocab, where=tgt_mask)
    return tgt_in, tgt_out, tgt_lengths, tgt_mask


def check_source(src, src_lengths, src_vocab: int):
    """A batch's source side (the model protocol): ``src (B, S)`` ids in
    ``0..src_vocab - 1`` and ``src_lengths (B,)`` in 1..S, checked."""
    src = check_ids(src, "src", src_vocab, shape=(None, None))
    lengths = check_lengths(as_array(src_lengths, "src_lengths"), src.shape[0], src.shape[1],
                            "src_lengths")
    return src, lengths
