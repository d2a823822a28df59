"""Real PostgreSQL and Redis servers for the cluster tests: unprivileged, on 127.0.0.1, a free port, data and
socket under a temp dir, stopped by their own PID. Debian's ``postgresql`` and ``redis-server`` packages
(``.ci/run`` installs them when missing)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Postgres", "Redis", "free_port", "start_postgres", "start_redis", "stop_pid"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (apt-get install postgresql)")
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    port: int
    data: Path
    pid: int
    user: str

    def stop(self) -> None:
        """Fast shutdown of the postmaster we started (SIGINT to its PID), then remove its temp dir."""
        stop_pid(self.pid, signal.SIGINT)
        shutil.rmtree(self.data.parent, ignore_errors=True)

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"


def start_postgres(dbs: tuple[str, ...]) -> Postgres:
    """initdb + pg_ctl start in a fresh temp dir directly under the system temp dir (the postgres user must be able
    to reach it, which pytest's private tmp_path is not)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    data = root / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-t", "60",
                                 "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start"]),
                   check=True, capture_output=True, timeout=120)
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    for db in dbs:
        subprocess.run(_as_postgres([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, db]),
                       check=True, capture_output=True, timeout=60)
    return Postgres(port, data, pid, user)


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        stop_pid(self.proc.pid)
        self.proc.wait(10)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def start_redis(root: Path) -> Redis:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(root), "--protected-mode", "yes"],
                            stdout=open(root / "redis.log", "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return Redis(port, proc)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("redis-server did not answer PING within 30 s")


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Stop one process we started, by its PID (SIGTERM, then SIGKILL after ``timeout``)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
