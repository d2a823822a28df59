"""Shared fixtures: a small configuration file, a temporary Dagster instance, the exchange stand-in.

Helpers live in :mod:`tests.support`; this file holds fixtures only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.support.config import small_config
from tests.support.standin import StandIn, start

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config("lake")))
    return p


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A fresh temporary Dagster instance (``dg.instance_for_test``)."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A fresh exchange stand-in with the synthetic listings (seed 7) and the tests' pinned clock."""
    from maestro_pipeline.market import clear_market_cache

    si = start()
    clear_market_cache()
    try:
        yield si
    finally:
        si.close()
        clear_market_cache()


def pytest_collection_modifyitems(config, items):
    # Real-data tests need MAESTRO_DATASETS; they fail loudly (not skip) when it is missing: see tests/real_data.
    pass
