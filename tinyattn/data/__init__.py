"""Data for tinyattn: synthetic tasks with gold alignments, sentence-pair files,
tokenisers and vocabularies.

``python -m tinyattn.data`` writes every task's train/valid/test files to ``data/``.
"""

from tinyattn.data.corpus import (
    ENGLISH_PREFIXES,
    DataError,
    Pair,
    filter_pairs,
    read_pairs,
    split_pairs,
)
from tinyattn.data.tasks import (
    SPLITS,
    TASKS,
    Example,
    make_splits,
    make_task,
    read_task_tsv,
    write_task_tsv,
)
from tinyattn.data.text import Vocab, detokenize, tokenize

__all__ = [
    "ENGLISH_PREFIXES",
    "SPLITS",
    "TASKS",
    "DataError",
    "Example",
    "Pair",
    "Vocab",
    "detokenize",
    "filter_pairs",
    "make_splits",
    "make_task",
    "read_pairs",
    "read_task_tsv",
    "split_pairs",
    "tokenize",
    "write_task_tsv",
]
