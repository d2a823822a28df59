"""Real exchange candles from the folder named by MAESTRO_DATASETS (never copied into the project); the bars
themselves come from :func:`tests.support.datasets.load`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def datasets() -> Path:
    folder = os.environ.get("MAESTRO_DATASETS")
    if not folder:
        pytest.fail("MAESTRO_DATASETS is not set: point it at the real-candles folder, e.g. ../shared/datasets")
    path = Path(folder)
    if not path.is_dir():
        pytest.fail(f"MAESTRO_DATASETS={folder} is not a directory")
    return path
