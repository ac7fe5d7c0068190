"""Write every synthetic task's train/valid/test files.

Usage (from the repository root)::

    python -m tinyattn.data [--out DIR]

writes ``DIR/<task>/{train,valid,test}.tsv`` (DIR defaults to ``data``)
with `make_splits`' default sizes and seeds, so the files are exactly
reproducible, and prints each file with its line count and size.
"""

from __future__ import annotations

import argparse
import os
import sys

from tinyattn.data.tasks import SPLIT_NAMES, TASKS, make_splits, write_task_tsv


def main(argv=None) -> int:
    """Write every generated task's TSV files under ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m tinyattn.data",
        description="Write DIR/<task>/{train,valid,test}.tsv for every synthetic task "
                    "(default sizes and seeds of tinyattn.data.make_splits).")
    parser.add_argument("--out", default="data", metavar="DIR",
                        help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    total = 0
    for task in TASKS:
        folder = os.path.join(args.out, task)
        os.makedirs(folder, exist_ok=True)
        splits = make_splits(task)
        for split in SPLIT_NAMES:
            path = os.path.join(folder, f"{split}.tsv")
            write_task_tsv(path, splits[split])
            size = os.path.getsize(path)
            total += size
            print(f"{path:<32} {len(splits[split]):>6} lines {size:>10,} bytes")
    print(f"{'total':<32} {'':>6}       {total:>10,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
