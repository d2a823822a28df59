"""Maestro's domain core: market sources, bar rules, splits, strategies, backtests, search, reports, lake.

Nothing in this package imports Dagster except ``definitions.py`` (the composition root) and ``cli.py``
(the command-line shell), so the research logic can be tested and reused on its own.
"""

__version__ = "0.1.0"
