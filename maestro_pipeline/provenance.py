"""What a result was made with: a hash of the code it depends on, and the versions of the libraries involved."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def code_version(*modules: str) -> str:
    """Hash of these modules' source (read once per process): a change to them changes the version."""
    h = hashlib.sha256()
    for name in modules:
        h.update(inspect.getsource(importlib.import_module(name)).encode())
    return h.hexdigest()[:12]


def library_versions(*names: str) -> dict[str, str]:
    """Installed version of each distribution ("?" for one that is not installed)."""
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "?"
    return out
