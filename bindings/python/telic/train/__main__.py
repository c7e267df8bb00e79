"""``python -m telic.train``: see ``telic.train.cli``."""

import sys

from .cli import main

sys.exit(main())
