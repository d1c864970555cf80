"""`python -m overture.cli`."""

import sys

from overture.cli import main

sys.exit(main())
