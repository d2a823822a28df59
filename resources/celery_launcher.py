"""Team mode's Celery side: a ``CeleryRunLauncher`` that tells a dead worker from a busy one, and the worker
heartbeat it reads (``instance.launcher: celery``; needs the ``team`` extra).

dagster-celery's health check reads the run's Celery task state. A worker killed mid-run (kill -9, a host lost)
never updates it, so the task stays ``STARTED`` and run monitoring would take the run for a running one forever,
keeping its pool slots. Pinging the worker does not help: a solo-pool worker runs the task in its only thread and
answers nothing until the task ends. So every ``maestro worker`` keeps a heartbeat key in the result backend
(Redis), refreshed every ``HEARTBEAT_SECONDS`` by the process that supervises the Celery worker, expiring after
``HEARTBEAT_TTL``; the task's state names its worker (``task_track_started``). A ``STARTED`` run whose worker's
heartbeat has expired is reported ``FAILED`` to Dagster's run monitoring, which marks it failed (or, with
``instance.run_monitoring.max_resume_attempts`` > 0, resumes it on another worker); the concurrency daemon then
frees its pool slots.

``python -m resources.celery_launcher NODENAME BACKEND_URL -- <worker command>`` runs a worker under its heartbeat
(``maestro worker`` does this).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import redis
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

__all__ = ["HEARTBEAT_SECONDS", "HEARTBEAT_TTL", "MaestroCeleryRunLauncher", "heartbeat_key", "run_worker"]

HEARTBEAT_SECONDS = 3
HEARTBEAT_TTL = 15


def heartbeat_key(nodename: str) -> str:
    return f"maestro:worker:{nodename}:heartbeat"


class MaestroCeleryRunLauncher(CeleryRunLauncher):
    def check_run_worker_health(self, run):
        # Dagster exports no public type for this hook's result: the parent's own result (a named tuple whose status
        # is Dagster's WorkerStatus enum) is returned, or a copy of it with the status changed to FAILED.
        result = super().check_run_worker_health(run)
        if result.status.value != "RUNNING" or not str(self.backend or "").startswith("redis"):
            return result
        task = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG])
        info = task.info if isinstance(task.info, dict) else {}
        worker = info.get("hostname")
        if worker and not redis.Redis.from_url(self.backend).exists(heartbeat_key(worker)):
            return result._replace(status=type(result.status).FAILED,
                                   msg=f"Celery worker {worker} (pid {info.get('pid')}) that ran this run is gone: "
                                   f"no heartbeat for {HEARTBEAT_TTL} s")
        return result


def run_worker(nodename: str, backend: str, cmd: list[str]) -> int:
    """Run the Celery worker command and keep its heartbeat while it lives (the key expires when it dies)."""
    client = redis.Redis.from_url(backend)
    key, stop = heartbeat_key(nodename), threading.Event()
    proc = subprocess.Popen(cmd)

    def beat() -> None:
        while not stop.is_set() and proc.poll() is None:
            try:
                client.set(key, str(proc.pid), ex=HEARTBEAT_TTL)
            except redis.RedisError:
                pass  # the backend is down: runs cannot report either; the key expires
            stop.wait(HEARTBEAT_SECONDS)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        return proc.wait()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        try:
            client.delete(key)
        except redis.RedisError:
            pass


if __name__ == "__main__":
    args = sys.argv[1:]
    sep = args.index("--")
    env_backend = args[1]
    backend = os.environ[env_backend[4:]] if env_backend.startswith("env:") else env_backend
    sys.exit(run_worker(args[0], backend, args[sep + 1:]))
