"""Allow ``python -m kexecwatch``."""

import sys

from kexecwatch.program import main

sys.exit(main())
