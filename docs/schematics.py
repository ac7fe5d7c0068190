"""Draw the course's schematics as PNGs (the source articles' own figures are lost).

Usage::

    python docs/schematics.py [--out DIR] [--only NAME ...]

writes into ``docs/images/`` by default (the directory is created if
needed). Each PNG is written atomically (a temporary file in the same
directory, then a rename), and each written path is printed with its size.
An unknown ``--only`` name, or an ``--out`` that is an existing file, is an
error. The figures use the code's names (tinyattn/rnn.py, gru.py, lstm.py,
bidirectional.py, bridge.py, decoders.py, attention.py, local_attention.py,
decoding.py) and the notation of docs/equations.md; local_window.png and
beam_tree.png draw numbers computed by the library itself.

The drawing code is in ``docs/_schematics/`` (``draw``: boxes, arrows, the
atomic save; ``cells``: lessons 01–02; ``attention``: lessons 04–06 and 08;
``search``: lessons 07 and 09).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):  # docs/ for _schematics, the repository for tinyattn
    if p not in sys.path:
        sys.path.insert(0, p)

from _schematics import attention, cells, search  # noqa: E402
from _schematics.draw import save_atomic  # noqa: E402

FIGURES = {
    "rnn_unrolled.png": cells.rnn_unrolled,  # lesson 01
    "gru_cell.png": cells.gru_cell,  # lesson 02
    "lstm_cell.png": cells.lstm_cell,  # lesson 02
    "encoder_decoder.png": attention.encoder_decoder,  # lessons 03–04
    "bahdanau_vs_luong.png": attention.bahdanau_vs_luong,  # lessons 05–06
    "local_window.png": search.local_window,  # lesson 07
    "hard_vs_soft.png": attention.hard_vs_soft,  # lesson 08
    "beam_tree.png": search.beam_tree,  # lesson 09
}


def main(argv=None) -> int:
    """Draw the figures (all, or those named by ``--only``) into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images",
                        help="output directory (default: docs/images)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(FIGURES),
                        help="draw only these files")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a directory")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or FIGURES:
        path = args.out / name
        save_atomic(FIGURES[name](), path)
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
