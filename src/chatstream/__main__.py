"""`python -m chatstream` is the `chatstream` command."""

import sys

from chatstream.cli import main

sys.exit(main())
