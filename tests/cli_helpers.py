"""What the command-line tests share: a tiny model's flags, a call that
captures what the user would see, and a trained run to read from."""

from pathlib import Path

import tinyattn.cli.commands as cli

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--emb-size", "8", "--hidden-size", "8", "--batch-size", "16", "--quiet",
        "--plots", "1"]


def run_cli(capsys, *argv):
    """``tinyattn ARGV``: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def train_dates(out: Path, *flags) -> Path:
    """A tiny dates run in ``out`` (one epoch), which must succeed."""
    code = cli.main(["train", "dates", "--out", str(out), "--epochs", "1", *TINY, *flags])
    assert code == 0
    return out
