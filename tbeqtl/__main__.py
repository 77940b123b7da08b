"""Allow ``python -m tbeqtl``."""

import sys

from .cli import main

sys.exit(main())
