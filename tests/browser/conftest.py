"""Browser tests drive the real Dagster UI with Debian's chromium through Playwright (see
:mod:`tests.support.browser`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots go: ``$MAESTRO_SCREENSHOT_DIR`` or ``artifacts/screenshots`` (git-ignored)."""
    d = Path(os.environ.get("MAESTRO_SCREENSHOT_DIR") or ROOT / "artifacts" / "screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d
