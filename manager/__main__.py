"""Entry point of `python -m manager`."""

import sys

from manager.cli import main

sys.exit(main())
