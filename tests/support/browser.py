"""Debian's chromium (``/usr/bin/chromium``) for Playwright: where it is and how it is started.

Playwright's own browser download is never used (``playwright install`` needs the network): the tests launch the
system chromium, and fail (not skip) when it is missing, naming the apt command that installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The system chromium (override with ``$MAESTRO_CHROMIUM``).
CHROMIUM = Path(os.environ.get("MAESTRO_CHROMIUM", "/usr/bin/chromium"))

#: Flags for a headless chromium on a closed network, running as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
