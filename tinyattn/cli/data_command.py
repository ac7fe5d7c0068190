"""``tinyattn data fetch NAME [--from PATH] [--quiet]`` and ``tinyattn data list``.

``fetch`` stores a real corpus (`tinyattn.data.download`) in the data
directory and prints its path on stdout; ``list`` shows every known corpus,
whether it is there and where. Errors are `FetchError`s, which
`tinyattn.cli.commands.main` prints as one line (``tinyattn data: error: ...``)
with exit status 2.
"""

from __future__ import annotations

import os

from tinyattn.data.download import CORPORA, FetchError, data_dir, fetch, locate


def add_parser(subparsers) -> None:
    """Add the ``data`` command to the ``subparsers`` of the ``tinyattn`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned; its ``dest`` must be
        ``"command"``, as in `tinyattn.cli.commands.build_parser`.
    """
    data = subparsers.add_parser(
        "data", help="get the real corpora (Tatoeba eng-fra, cmn-eng)",
        description="Download, register and list the real corpora. They are stored in "
        "$TINYATTN_DATA if set, else $XDG_CACHE_HOME/tinyattn or ~/.cache/tinyattn.")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = actions.add_parser(
        "fetch", help="download a corpus (or register a local copy) and print its path",
        description="Store a corpus in the data directory, check its sha256 and print its "
        "path. A copy already there is used without network.")
    f.add_argument("name", metavar="NAME", help="a corpus name (see: tinyattn data list)")
    f.add_argument("--from", dest="source", metavar="PATH",
                   help="register this local copy instead of downloading: the download "
                   "(fra-eng.zip, cmn.txt) or the extracted .tsv; its sha256 is checked")
    f.add_argument("--quiet", action="store_true", help="no progress display")
    actions.add_parser("list", help="the known corpora, whether each is there, and where",
                       description="List the known corpora and where they are stored.")
    data.set_defaults(func=cmd_data)


def cmd_data(args) -> int:
    """``tinyattn data``: run ``fetch`` or ``list``; exit status 0.

    Raises
    ------
    FetchError
        For anything that goes wrong (unknown name, no network, wrong hash...),
        reported by `tinyattn.cli.commands.main` as one line, exit status 2.
    """
    if args.data_command == "fetch":
        path = fetch(args.name, source=args.source, progress=not args.quiet)
        print(path)
        return 0
    _list()
    return 0


def _list() -> None:
    directory = data_dir()
    how = "$TINYATTN_DATA" if os.environ.get("TINYATTN_DATA") else \
        "set TINYATTN_DATA to use another"
    print(f"data directory: {directory} ({how})")
    width = max(len(name) for name in CORPORA)
    for name, corpus in CORPORA.items():
        try:
            path = locate(corpus, directory=directory)
            state = f"present: {path}" if path else \
                f"not fetched: tinyattn data fetch {name}"
        except FetchError as err:
            state = f"damaged: {err}"
        print(f"{name:<{width}}  {corpus.description}")
        print(f"{'':<{width}}  {state}")
