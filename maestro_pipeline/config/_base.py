"""What every section of the configuration shares: the strict, frozen base model and name suggestions."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

#: Sources that are not ccxt exchanges. ``file`` instruments take ``path`` (and ``name``); their key's exchange
#: part is ``file_<name>`` (e.g. ``file_bitvavo.BTC_EUR.1h``) so two files of one symbol stay two instruments.
BUILTIN_SOURCES = ("synthetic", "file")
FILE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@lru_cache(maxsize=1)
def known_exchanges() -> tuple[str, ...]:
    import ccxt  # imported lazily: ~0.5 s, only needed to validate exchange ids

    return tuple(BUILTIN_SOURCES) + tuple(ccxt.exchanges)


def closest(word: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    near = difflib.get_close_matches(word, choices, n=n)
    return f" (did you mean {', '.join(near)}?)" if near else ""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


