"""``python -m maestro_pipeline.bench``."""

from . import main

main()
