"""The one Dagster ``Definitions`` (composition root), loaded by ``dg dev`` / ``dg check defs``
(``[tool.dg]`` in pyproject.toml) and by ``dagster`` commands with ``-w workspace.yaml`` or ``-m``.

It reads ``maestro.yaml`` (or ``$MAESTRO_CONFIG``); relative paths in it (the lake root) are resolved against
the config file's folder, so the UI, the CLI and the tests agree on where the lake is.
"""

from assets import build_definitions
from maestro_pipeline.config import config_path, load_config

_path = config_path()
defs = build_definitions(load_config(_path), _path.resolve().parent)
