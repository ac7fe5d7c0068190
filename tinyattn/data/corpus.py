"""Sentence-pair files: read, filter and split.

The files are the tab-separated sentence pairs that Tatoeba and
manythings.org/anki distribute: one pair per line, ``source<TAB>target``
or ``source<TAB>target<TAB>attribution``. The attribution column carries
the licence credit of each line, so it is kept.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from tinyattn._validate import check_options, check_path, check_size
from tinyattn.data.text import KINDS, tokenize

_BOM = b"\xef\xbb\xbf"

# The PyTorch seq2seq tutorial keeps English sentences that start like
# these; apostrophes are spaces there ("I'm" -> "i m "), hence both forms.
ENGLISH_PREFIXES = (
    "i am ", "i m ",
    "he is ", "he s ",
    "she is ", "she s ",
    "you are ", "you re ",
    "we are ", "we re ",
    "they are ", "they re ",
)


class DataError(ValueError):
    """A data file that cannot be read; the one-line message names file and line."""


@dataclass(frozen=True)
class Pair:
    """One sentence pair.

    Attributes
    ----------
    src, tgt : str
        The two sentences, surrounding whitespace stripped.
    attribution : str or None
        The third column when the file has one (licence credit).
    line : int
        1-based line number in the file it came from.
    """

    src: str
    tgt: str
    attribution: str | None
    line: int


def _read_lines(path):
    """Yield ``(line_number, text)`` for every line of a UTF-8 file.

    A BOM at the start and a CR before each LF are removed. Splitting on
    LF bytes only, never `str.splitlines`, keeps line numbers equal to
    what an editor shows even when a line holds U+2028 or a form feed.
    """
    check_path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{os.fspath(path)}: is a directory, not a file") from None
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start one
    for number, raw in enumerate(lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{os.fspath(path)} line {number}: invalid UTF-8 "
                            f"(byte {raw[e.start]:#04x} at column {e.start + 1})") from None
        yield number, text


def read_pairs(path, *, skip_bad: bool = False, swap: bool = False) -> tuple[list[Pair], int]:
    """Read a tab-separated sentence-pair file.

    Parameters
    ----------
    path : str or os.PathLike
        UTF-8 text (a BOM at the start and CRLF line ends are tolerated).
        Each non-blank line holds 2 columns (source, target) or 3
        (source, target, attribution). Blank lines are skipped silently.
    skip_bad : bool
        False: a line with another column count or an empty sentence
        raises `DataError`. True: such lines are skipped and counted.
        Invalid UTF-8 always raises: it means the file has the wrong
        encoding, not that one line is bad.
    swap : bool
        Read the file in the other direction: column 2 becomes the
        source and column 1 the target.

    Returns
    -------
    pairs : list of Pair
        In file order.
    n_skipped : int
        Bad lines skipped (always 0 when ``skip_bad`` is False).

    Raises
    ------
    DataError
        Missing file, invalid UTF-8, a bad line (unless ``skip_bad``),
        or no valid pair at all. The message names the file and line:
        ``"pairs.tsv line 7: expected 2 or 3 tab-separated columns, got 1"``.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    pairs, skipped = [], 0
    for number, text in _read_lines(path):
        if not text.strip():
            continue
        cols = text.split("\t")
        problem = None
        if len(cols) not in (2, 3):
            problem = f"expected 2 or 3 tab-separated columns, got {len(cols)}"
        else:
            src, tgt = cols[0].strip(), cols[1].strip()
            if not src or not tgt:
                which = "column 1 (source)" if not src else "column 2 (target)"
                problem = f"empty sentence in {which}"
        if problem is not None:
            if not skip_bad:
                raise DataError(f"{name} line {number}: {problem}")
            skipped += 1
            continue
        attribution = (cols[2].strip() or None) if len(cols) == 3 else None
        if swap:
            src, tgt = tgt, src
        pairs.append(Pair(src, tgt, attribution, number))
    if not pairs:
        extra = f" ({skipped} bad lines skipped)" if skipped else ""
        raise DataError(f"{name}: no valid sentence pairs{extra}")
    return pairs, skipped


def _prefix_key(text: str, lowercase: bool) -> str:
    """NFC, optionally lower case, apostrophes -> space, whitespace runs -> one space."""
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    text = text.replace("'", " ").replace("’", " ")
    return re.sub(r"\s+", " ", text)


def filter_pairs(pairs, *, max_len: int | None = None, prefixes=None, prefix_side: str = "src",
                 src_kind: str = "word", tgt_kind: str = "word",
                 lowercase: bool = True) -> list[Pair]:
    """Keep the pairs that are short enough and start with one of some prefixes.

    Parameters
    ----------
    pairs : iterable of Pair
    max_len : int or None
        Keep a pair only when both sides have at most ``max_len`` tokens,
        counted with ``tokenize(src, src_kind)`` and
        ``tokenize(tgt, tgt_kind)``. None: no length limit.
    prefixes : str, sequence of str, or None
        Keep a pair only when its source (its target with ``prefix_side="tgt"``)
        starts with one of these, e.g. `ENGLISH_PREFIXES`. Text and prefixes
        are compared after the
        same normalisation: NFC, lower case (when ``lowercase``), each
        apostrophe (' or ’) replaced by a space and runs of whitespace
        made one space, so "I'm cold." matches "i m ". None: no filter.
    prefix_side : {"src", "tgt"}
        The side ``prefixes`` are matched against: the English one ("tgt"
        when English is the target, as in the PyTorch tutorial's French →
        English).
    src_kind, tgt_kind : {"char", "word", "zh"}
        Tokenisers for the length limit.
    lowercase : bool
        Compare prefixes case-insensitively.

    Returns
    -------
    list of Pair
        The kept pairs, in their original order.
    """
    check_size(max_len, "max_len", none_ok=True)
    check_options("src_kind", src_kind, KINDS)
    check_options("tgt_kind", tgt_kind, KINDS)
    check_options("prefix_side", prefix_side, ("src", "tgt"))
    if prefixes is not None:
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        prefixes = tuple(prefixes)
        if not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise ValueError(f"prefixes must be None or a non-empty sequence of str, "
                             f"got {prefixes!r}")
        prefixes = tuple(_prefix_key(p, lowercase) for p in prefixes)
    kept = []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, Pair):
            raise TypeError(f"pairs[{k}] must be a Pair, got {type(pair).__name__}")
        text = pair.src if prefix_side == "src" else pair.tgt
        if prefixes is not None and \
                not _prefix_key(text, lowercase).lstrip().startswith(prefixes):
            continue
        if max_len is not None and (len(tokenize(pair.src, src_kind)) > max_len
                                    or len(tokenize(pair.tgt, tgt_kind)) > max_len):
            continue
        kept.append(pair)
    return kept


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def split_pairs(items, *, valid: float = 0.1, test: float = 0.1, seed: int = 0,
                key=None) -> tuple[list, list, list]:
    """Shuffle ``items`` and cut them into train, valid and test lists.

    Parameters
    ----------
    items : sequence
        Anything (pairs, examples); not modified.
    valid, test : float
        Fractions: ``round(n * valid)`` items go to valid and
        ``round(n * test)`` to test (Python's round), the rest to train.
        Each in [0, 1) and ``valid + test < 1``.
    seed : int
        Seeds ``np.random.default_rng``; the same seed and items always
        give the same split.
    key : callable, optional
        Split by group instead of by item: items with equal ``key(item)``
        (the same source sentence, say) always land in the same list, and
        the fractions count groups. Inside a list, a group's items stay
        together in their original order. None: every item is its own group.

    Returns
    -------
    train, valid, test : list
        In shuffled order.

    Raises
    ------
    ValueError
        Bad fractions or seed, no items, or fractions so large that
        train would be empty.
    """
    items = list(items)
    valid, test = _check_fraction(valid, "valid"), _check_fraction(test, "test")
    if valid + test >= 1:
        raise ValueError(f"valid + test must be < 1 so that some items are left to train, "
                         f"got {valid} + {test} = {valid + test}")
    check_size(seed, "seed", low=0)
    if key is not None and not callable(key):
        raise TypeError(f"key must be None or a function of an item, got {type(key).__name__}")
    if not items:
        raise ValueError("items is empty: nothing to split")
    groups: dict = {}
    for k, item in enumerate(items):  # dicts keep first-seen order: a deterministic split
        groups.setdefault(k if key is None else key(item), []).append(item)
    groups = list(groups.values())
    n = len(groups)
    n_valid, n_test = round(n * valid), round(n * test)
    what = "items" if key is None else "groups"
    if n_valid + n_test >= n:
        raise ValueError(f"valid={valid} and test={test} of {n} {what} leave no training "
                         f"{what} ({n_valid} valid + {n_test} test)")
    order = np.random.default_rng(seed).permutation(n)

    def flat(part):
        return [item for i in part for item in groups[i]]
    return (flat(order[n_valid + n_test:]), flat(order[:n_valid]),
            flat(order[n_valid:n_valid + n_test]))
