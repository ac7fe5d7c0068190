"""Synthetic character-level tasks with gold alignments.

Each example knows which source characters explain each target
character (``gold``), so a trained model's attention can be scored
against the truth. The tasks:

- ``copy``, ``reverse``, ``sort``: a random string over the 20 letters
  ``a``..``t``; the target is the same string, reversed, or sorted.
- ``dates``: a date written by people (`dates.DATE_FORMATS`) -> its ISO
  form ``YYYY-MM-DD``.
- ``date-fields``: sequence labelling of the same date strings, one tag
  per source character: ``Y`` year, ``M`` month, ``D`` day (an ordinal
  suffix counts as day), ``W`` weekday, ``O`` anything else.

`make_splits` draws train/valid/test sets whose sources do not overlap;
``python -m tinyattn.data`` writes them to ``data/<task>/*.tsv``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from tinyattn._validate import check_options, check_size, is_int
from tinyattn.data.corpus import DataError, Pair, _read_lines
from tinyattn.data.dates import DateSample, sample_date
from tinyattn.training.checkpoint import write_text_atomic

TASKS = ("copy", "reverse", "sort", "dates", "date-fields")
LETTERS = "abcdefghijklmnopqrst"
# (train, valid, test) sizes and seeds that make the files under data/.
SPLITS = {"copy": (5000, 500, 500), "reverse": (5000, 500, 500), "sort": (5000, 500, 500),
          "dates": (20000, 1000, 1000), "date-fields": (5000, 500, 500)}
DEFAULT_SEEDS = {"copy": 101, "reverse": 102, "sort": 103, "dates": 104, "date-fields": 105}
SPLIT_NAMES = ("train", "valid", "test")
MIN_LEN, MAX_LEN = 3, 10  # letter-task string lengths: make_task's defaults, used by make_splits


@dataclass(frozen=True)
class Example:
    """One source/target pair with its gold alignment.

    Attributes
    ----------
    src : tuple of str
        Source tokens (one character each in every task here).
    tgt : tuple of str
        Target tokens.
    gold : tuple of (int, int) or None
        One entry per target token: the half-open span ``[start, end)``
        of source positions it comes from, or None where no source token
        explains it (the "-" of an ISO date).
    origin : Pair or None
        The sentence pair of a file the tokens came from (None for the
        generated tasks); not compared.
    """

    src: tuple[str, ...]
    tgt: tuple[str, ...]
    gold: tuple[tuple[int, int] | None, ...]
    origin: Pair | None = field(default=None, compare=False)

    def __post_init__(self):
        for name in ("src", "tgt", "gold"):  # lists in, tuples stored: hashable, immutable
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.gold) != len(self.tgt):
            raise ValueError(f"gold must have one entry per target token ({len(self.tgt)}), "
                             f"got {len(self.gold)}")
        n, spans = len(self.src), []
        for k, span in enumerate(self.gold):
            if span is not None and not (isinstance(span, (tuple, list)) and len(span) == 2
                                         and all(map(is_int, span))
                                         and 0 <= span[0] < span[1] <= n):
                raise ValueError(f"gold[{k}] must be None or a pair of ints (start, end) with "
                                 f"0 <= start < end <= {n} (the source length), got {span!r}")
            spans.append(None if span is None else (int(span[0]), int(span[1])))
        object.__setattr__(self, "gold", tuple(spans))


def _letters_example(task: str, rng: np.random.Generator, min_len: int, max_len: int) -> Example:
    n = int(rng.integers(min_len, max_len + 1))
    src = tuple(LETTERS[i] for i in rng.integers(len(LETTERS), size=n))
    if task == "copy":
        order = list(range(n))
    elif task == "reverse":
        order = list(range(n - 1, -1, -1))
    else:  # Python's sort is stable: the k-th "a" of the target is the k-th "a" of the source
        order = sorted(range(n), key=src.__getitem__)
    return Example(src, tuple(src[j] for j in order), tuple((j, j + 1) for j in order))


def date_example(sample: DateSample, task: str = "dates") -> Example:
    """Turn a rendered date into a ``dates`` or ``date-fields`` example.

    ``dates``: the target is the 10 ISO characters; each year character's
    gold is the whole year span ("1979" or "79"), each month character's
    the month span ("5", "05", "May", "MAY"), each day character's the
    day span with any ordinal suffix ("21st"); the two "-" are None.
    ``date-fields``: one tag per source character, gold ``(i, i + 1)``.
    """
    check_options("task", task, ("dates", "date-fields"))
    src = tuple(sample.text)
    if task == "date-fields":
        tags = ["O"] * len(src)
        for field, start, end in sample.spans:
            tags[start:end] = field * (end - start)
        return Example(src, tuple(tags), tuple((i, i + 1) for i in range(len(src))))
    year, month, day = sample.span("Y"), sample.span("M"), sample.span("D")
    gold = (year,) * 4 + (None,) + (month,) * 2 + (None,) + (day,) * 2
    return Example(src, tuple(sample.iso), gold)


def _stream(task: str, rng: np.random.Generator, min_len: int, max_len: int):
    """An endless, seed-determined sequence of examples of one task."""
    while True:
        if task in ("dates", "date-fields"):
            yield date_example(sample_date(rng), task)
        else:
            yield _letters_example(task, rng, min_len, max_len)


def make_task(name: str, n: int, *, seed: int, min_len: int = MIN_LEN,
              max_len: int = MAX_LEN) -> list[Example]:
    """Draw ``n`` examples of a synthetic task.

    Parameters
    ----------
    name : {"copy", "reverse", "sort", "dates", "date-fields"}
    n : int
        Number of examples (>= 0).
    seed : int
        Seeds ``np.random.default_rng``: the same arguments always give
        the same examples.
    min_len, max_len : int
        Source length range, both ends included, for copy / reverse /
        sort (uniform). The date tasks ignore them.

    Returns
    -------
    list of Example
        May hold repeated sources; `make_splits` gives disjoint splits.

    Notes
    -----
    Date tasks draw a day uniformly in 1950-01-01..2049-12-31, then one
    of the formats in `tinyattn.data.dates.DATE_FORMATS` and a casing
    for month/weekday names uniformly. Two-digit years mean 1950–2049
    (50–99 -> 19xx, 00–49 -> 20xx); slashes are month/day/year and dots
    day.month.year.
    """
    check_options("name", name, TASKS)
    n = check_size(n, "n", low=0)
    seed = check_size(seed, "seed", low=0)
    min_len = check_size(min_len, "min_len", low=1)
    max_len = check_size(max_len, "max_len", low=min_len)
    stream = _stream(name, np.random.default_rng(seed), min_len, max_len)
    return [next(stream) for _ in range(n)]


def make_splits(name: str, sizes=None, *, seed: int | None = None) -> dict[str, list[Example]]:
    """Draw train, valid and test sets of a task with no shared source.

    Parameters
    ----------
    name : {"copy", "reverse", "sort", "dates", "date-fields"}
    sizes : (int, int, int) or None
        (train, valid, test) sizes; None uses ``SPLITS[name]``.
    seed : int or None
        None uses ``DEFAULT_SEEDS[name]`` (copy 101, reverse 102, sort 103,
        dates 104, date-fields 105), the seeds of the files in data/.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}``.

    Notes
    -----
    One seeded stream of examples (default lengths 3..10 for the letter
    tasks): train is its first ``sizes[0]`` examples, exactly
    ``make_task(name, sizes[0], seed=seed)``, and may repeat a source.
    Valid and then test keep drawing from the stream and drop any example
    whose source string was already used by train, valid or test, so every
    valid/test source is unique and absent from train.
    """
    check_options("name", name, TASKS)
    if sizes is None:
        sizes = SPLITS[name]
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) != 3:
        raise ValueError(f"sizes must be None or (train, valid, test), got {sizes!r}")
    n_train, n_valid, n_test = (check_size(s, f"sizes[{k}]", low=0) for k, s in enumerate(sizes))
    seed = DEFAULT_SEEDS[name] if seed is None else check_size(seed, "seed", low=0)
    stream = _stream(name, np.random.default_rng(seed), MIN_LEN, MAX_LEN)
    out = {"train": [next(stream) for _ in range(n_train)]}
    seen = {ex.src for ex in out["train"]}
    budget = 50 * (n_valid + n_test) + 10_000  # draws allowed before giving up
    for split, size in (("valid", n_valid), ("test", n_test)):
        out[split] = []
        while len(out[split]) < size:
            budget -= 1
            if budget < 0:
                raise ValueError(f"sizes {tuple(sizes)} are too large for task {name!r}: could "
                                 f"not find {size} new {split} sources not used before")
            ex = next(stream)
            if ex.src not in seen:
                seen.add(ex.src)
                out[split].append(ex)
    return out


def write_task_tsv(path, examples) -> None:
    """Write examples as a header-free TSV file, one example per line.

    Columns: source tokens joined with "", target tokens joined with "",
    and gold spans as space-separated ``start:end`` (``-`` for None).
    Every token must be one character other than tab, CR or LF, so that
    `read_task_tsv` gives the examples back. The parent folder must exist.
    """
    lines = []
    for k, ex in enumerate(examples):
        if not isinstance(ex, Example):
            raise TypeError(f"examples[{k}] must be an Example, got {type(ex).__name__}")
        for side in ("src", "tgt"):
            bad = [t for t in getattr(ex, side) if len(t) != 1 or t in "\t\r\n"]
            if bad:
                raise ValueError(f"examples[{k}].{side} tokens must be single characters "
                                 f"other than tab/CR/LF to be written as TSV, got {bad[0]!r}")
        gold = " ".join("-" if g is None else f"{g[0]}:{g[1]}" for g in ex.gold)
        lines.append(f"{''.join(ex.src)}\t{''.join(ex.tgt)}\t{gold}\n")
    write_text_atomic(path, "".join(lines))


def _parse_gold(text: str, n_tgt: int) -> tuple:
    items = text.split(" ") if text else []
    if len(items) != n_tgt:
        raise ValueError(f"expected {n_tgt} gold spans (one per target character), "
                         f"got {len(items)}")
    gold = []
    for item in items:
        if item == "-":
            gold.append(None)
            continue
        start, sep, end = item.partition(":")
        if not (sep and start.isdigit() and end.isdigit()):  # Example checks the range
            raise ValueError(f"gold span {item!r} is not 'start:end' (two ints) or '-'")
        gold.append((int(start), int(end)))
    return tuple(gold)


def read_task_tsv(path) -> list[Example]:
    """Read a file written by `write_task_tsv`.

    Raises
    ------
    DataError
        Naming the file and line: missing file, invalid UTF-8, a line
        without 3 tab-separated columns, or a malformed gold column.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    examples = []
    for number, text in _read_lines(path):
        if not text:
            continue
        cols = text.split("\t")
        try:
            if len(cols) != 3:
                raise ValueError(f"expected 3 tab-separated columns, got {len(cols)}")
            gold = _parse_gold(cols[2], len(cols[1]))
            examples.append(Example(tuple(cols[0]), tuple(cols[1]), gold))
        except ValueError as e:
            raise DataError(f"{name} line {number}: {e}") from None
    return examples
