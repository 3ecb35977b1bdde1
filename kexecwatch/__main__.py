"""Allow ``python -m kexecwatch``."""

import sys

from kexecwatch.cli import main

sys.exit(main())
