"""Allow ``python -m tbeqtl.cli``."""

import sys

from . import main

sys.exit(main())
