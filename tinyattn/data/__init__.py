"""Data for tinyattn: synthetic tasks with gold alignments, sentence-pair files,
the real Tatoeba corpora (`fetch`), tokenisers and vocabularies.

``python -m tinyattn.data`` writes every task's train/valid/test files to ``data/``;
``tinyattn data fetch eng-fra`` downloads a corpus (`tinyattn.data.download`).
"""

from tinyattn.data.corpus import (
    ENGLISH_PREFIXES,
    DataError,
    Pair,
    filter_pairs,
    read_pairs,
    split_pairs,
)
from tinyattn.data.download import (
    CORPORA,
    Corpus,
    FetchError,
    corpus_names,
    data_dir,
    fetch,
    file_sha256,
    get_corpus,
    locate,
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
    "CORPORA",
    "ENGLISH_PREFIXES",
    "SPLITS",
    "TASKS",
    "Corpus",
    "DataError",
    "Example",
    "FetchError",
    "Pair",
    "Vocab",
    "corpus_names",
    "data_dir",
    "detokenize",
    "fetch",
    "file_sha256",
    "filter_pairs",
    "get_corpus",
    "locate",
    "make_splits",
    "make_task",
    "read_pairs",
    "read_task_tsv",
    "split_pairs",
    "tokenize",
    "write_task_tsv",
]
