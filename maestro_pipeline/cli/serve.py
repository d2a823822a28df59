"""``maestro serve``: the lake's HTML files (tearsheets, great-expectations Data Docs) over HTTP on 127.0.0.1.

The Dagster UI links each tearsheet and Data Docs page with a ``MetadataValue.url`` under ``files_url`` (from
``maestro.yaml``, default ``http://127.0.0.1:8765``); a browser cannot open the local paths Dagster would otherwise
show. The server is the standard library's ``ThreadingHTTPServer`` over the lake folder only, read only, bound to
127.0.0.1 (``make ui`` starts it next to the webserver).
"""

from __future__ import annotations

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ..config import config_path, load_config
from ..errors import MaestroError

__all__ = ["add_serve_command", "make_server"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the standard library's name)
        sys.stderr.write(f"maestro serve: {self.address_string()} {format % args}\n")


def make_server(root: str, port: int) -> ThreadingHTTPServer:
    """A threaded static file server for ``root`` on 127.0.0.1:``port`` (not started)."""
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_QuietHandler, directory=root))
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
