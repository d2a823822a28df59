"""``maestro serve``: the lake's HTML files (tearsheets, great-expectations Data Docs) over HTTP on 127.0.0.1.

The Dagster UI links each tearsheet and Data Docs page with a ``MetadataValue.url`` under ``files_url`` (from
``maestro.yaml``, default ``http://127.0.0.1:8765``); a browser cannot open the local paths Dagster would otherwise
show. The server is the standard library's ``ThreadingHTTPServer`` over the lake folder only, bound to 127.0.0.1
(``make ui`` starts it next to the webserver). It writes one thing: a tearsheet asked for that is missing or older
than its ``oos_equity`` table is drawn from that table first (``reporting.render_tearsheet``, atomic, one at a
time), so research runs do not spend 3-4 s per partition on pages nobody opens.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from ..config import config_path, load_config
from ..errors import MaestroError
from ..lake import Lake
from ..reporting import TEARSHEET_FILE, render_tearsheet

__all__ = ["LakeServer", "add_serve_command", "make_server"]


class LakeServer(ThreadingHTTPServer):
    """The lake's files over HTTP; ``render_lock`` lets one tearsheet be drawn at a time (matplotlib is not
    thread-safe)."""

    def __init__(self, root: str, port: int):
        self.lake = Lake(root)
        self.render_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), functools.partial(_LakeHandler, directory=root))

    def tearsheet_partition(self, path: Path) -> dict[str, str] | None:
        """The ``oos_reports`` partition whose tearsheet ``path`` is, or None for any other file."""
        try:
            rel = path.resolve().relative_to((self.lake.root / "oos_reports").resolve())
        except ValueError:
            return None
        levels = rel.parts[:-1]
        if rel.name != TEARSHEET_FILE or not levels or not all("=" in p for p in levels):
            return None
        return dict(p.split("=", 1) for p in levels)


class _LakeHandler(SimpleHTTPRequestHandler):
    server: LakeServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the standard library's name)
        sys.stderr.write(f"maestro serve: {self.address_string()} {format % args}\n")

    def send_head(self):
        partition = self.server.tearsheet_partition(Path(self.translate_path(self.path)))
        if partition is not None:
            try:
                with self.server.render_lock:
                    render_tearsheet(self.server.lake, partition)
            except MaestroError as e:
                self.send_error(HTTPStatus.NOT_FOUND, "no tearsheet", str(e))
                return None
            except Exception as e:  # quantstats failed to draw: say so, keep serving
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "tearsheet failed",
                                f"quantstats could not draw this tearsheet: {type(e).__name__}: {e}")
                return None
        return super().send_head()


def make_server(root: str, port: int) -> LakeServer:
    """A threaded file server for the lake at ``root`` on 127.0.0.1:``port`` (not started)."""
    try:
        return LakeServer(root, port)
    except OSError as e:
        raise MaestroError(f"cannot serve the lake on 127.0.0.1:{port} ({e.strerror}): stop what holds the port "
                           "or change files_url in maestro.yaml (or pass --port)") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    cfg = load_config(path)
    root = cfg.lake_path(path.resolve().parent)
    if not root.is_dir():
        raise MaestroError(f"the lake {root} does not exist yet: run `make demo` (or materialize assets) first")
    port = args.port or urlsplit(cfg.files_url).port or 80
    server = make_server(str(root), port)
    print(f"maestro serve: {root} on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_serve_command(sub) -> None:
    p = sub.add_parser("serve", help="serve the lake's tearsheets and Data Docs on 127.0.0.1 (the UI links them)")
    p.add_argument("--port", type=int, help="port (default: the one in maestro.yaml's files_url, 8765)")
    p.set_defaults(fn=_cmd_serve)
