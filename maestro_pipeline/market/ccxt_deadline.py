"""Wall-clock deadlines for ccxt's HTTP requests.

ccxt's ``timeout`` is handed to ``requests`` and bounds each socket read, not a reply: an exchange (or a proxy)
that drips a few bytes every second never trips it, and the retry budget only counts between attempts. The
:class:`DeadlineAdapter` is mounted on the exchange's ``requests`` session; it reads each reply body in the
pieces that arrive and stops at the deadline the source hands it (the page's, or the whole fetch's when that is
sooner), raising :class:`DeadlineExceeded` — a ``requests`` timeout, which ccxt turns into ``RequestTimeout``.
Connecting and the status line/headers stay bounded by the socket timeout (one read each).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from requests.adapters import HTTPAdapter
from requests.exceptions import ReadTimeout

__all__ = ["DeadlineAdapter", "DeadlineExceeded"]

_PIECE = 64 * 1024


class DeadlineExceeded(ReadTimeout):
    """A reply was not complete by its wall-clock deadline (``which``: "page" or "fetch")."""

    def __init__(self, message: str, which: str):
        super().__init__(message)
        self.which = which


class DeadlineAdapter(HTTPAdapter):
    """``requests`` transport adapter whose replies must be complete by ``cutoff()`` (monotonic s, which)."""

    def __init__(self, cutoff: Callable[[], tuple[float, str]]):
        super().__init__()
        self._cutoff = cutoff

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: D102
        deadline, which = self._cutoff()
        resp = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        if stream:  # pragma: no cover - ccxt never streams
            return resp
        pieces: list[bytes] = []
        while True:
            if time.monotonic() > deadline:
                resp.raw.close()   # a dripping connection is not reused
                raise DeadlineExceeded(f"the reply was not complete by the {which} deadline", which)
            piece = resp.raw.read1(_PIECE, decode_content=True)   # what has arrived (one socket read at most)
            if not piece:
                break
            pieces.append(piece)
        resp._content = b"".join(pieces)
        resp._content_consumed = True
        resp.raw.release_conn()
        return resp
