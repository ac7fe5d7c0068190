"""``python -m tinyattn``: the command line (see `tinyattn.cli`)."""

import sys

from tinyattn.cli import main

sys.exit(main())
