"""``python -m maestro_pipeline.cli``: the same as the ``maestro`` command."""

import sys

from . import main

sys.exit(main())
