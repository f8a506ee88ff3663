"""`python -m harness`: the same command line as `harness`."""

import sys

from harness.cli.main import main

sys.exit(main())
