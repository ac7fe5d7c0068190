"""``python -m tinyattn``: the command line (see `tinyattn.cli.commands`)."""

import sys

from tinyattn.cli.commands import main

sys.exit(main())
