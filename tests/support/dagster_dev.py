"""Start the real ``dg dev`` (what ``make ui`` runs: Dagster's CLI, reading [tool.dg] in pyproject.toml) on a free
loopback port for a test, and always stop its whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], log_path: Path, start_timeout: float = 240) -> Iterator[str]:
    """Yield the base URL once ``/server_info`` answers; on exit SIGINT the group, then SIGKILL what is left.

    ``dg`` runs as a module of this interpreter (``--use-active-venv``: its code server, webserver and daemon too),
    so a test under the team overlay venv serves with that venv's packages."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_dg_cli.cli", "dev", "--use-active-venv", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env={**env, "VIRTUAL_ENV": sys.prefix}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # A shell's background job inherits SIGINT ignored, and dagster dev maps SIGTERM to SIGINT's handler:
        # restore the default so the teardown's SIGINT stops it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, f"dagster dev exited:\n{tail(log_path)}"
            assert time.time() < deadline, (f"dagster dev did not answer /server_info in {start_timeout:.0f} s:\n"
                                            f"{tail(log_path)}")
            time.sleep(1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # make sure its webserver, daemon and code servers are gone
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
