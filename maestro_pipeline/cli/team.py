"""Team mode: ``maestro instance`` (dagster.yaml from maestro.yaml's ``instance:`` and ``concurrency:``) and
``maestro worker`` (a Celery worker host for ``launcher: celery``). See docs/team.md.

dagster.yaml is merged, not rewritten: Maestro owns ``storage``, ``run_launcher``, ``run_monitoring`` and
``concurrency.runs.max_concurrent_runs`` / ``concurrency.pools.default_limit``; every other key a team adds
(retention, telemetry, sensors, code servers, other concurrency settings, ...) is kept as it is.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..config import config_path, load_config
from ..errors import ConfigError, MaestroError

__all__ = ["OWNED_KEYS", "add_team_commands", "ensure_dagster_home", "render_instance", "worker_command"]

OWNED_KEYS = ("storage", "run_launcher", "run_monitoring", "concurrency.runs.max_concurrent_runs",
              "concurrency.pools.default_limit")


def _env_or(value: str) -> Any:
    """A setting that may name an environment variable (``env:VAR``) as Dagster's ``{env: VAR}``."""
    return {"env": value[4:]} if value.startswith("env:") else value


def _postgres_block(cfg, environ: dict[str, str]) -> tuple[dict, list[str]]:
    inst = cfg.instance
    names = inst.postgres_vars()
    missing = [names[k] for k in ("hostname", "username", "db_name") if not environ.get(names[k])]
    if missing:
        raise ConfigError(f"maestro.yaml: instance.storage: postgres reads its connection from the environment; "
                          f"set {', '.join(missing)} (or change instance.postgres_env)")
    db: dict[str, Any] = {k: {"env": names[k]} for k in ("hostname", "username", "db_name")}
    # Optional ones are referenced only when set: without them libpq uses port 5432 and PGPASSWORD/~/.pgpass.
    for k in ("port", "password"):
        if environ.get(names[k]):
            db[k] = {"env": names[k]}
    db["scheme"] = "postgresql+psycopg2"  # SQLAlchemy 2.1 maps plain postgresql to psycopg 3 (DESIGN §9)
    where = f"{environ[names['username']]}@{environ[names['hostname']]}:{environ.get(names['port']) or 5432}/" \
            f"{environ[names['db_name']]}"
    return {"postgres": {"postgres_db": db}}, [f"storage: PostgreSQL {where} (instance.storage: postgres; "
                                               f"connection from ${names['hostname']} etc., no password in the file)"]


def render_instance(existing: dict | None, cfg, environ: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """dagster.yaml's content from ``existing`` (what the file holds now) and the config: Maestro's keys set from
    maestro.yaml, everything else kept. Returns the mapping and one line per decision (what and why)."""
    environ = dict(os.environ if environ is None else environ)
    out = dict(existing or {})
    lines: list[str] = []
    inst, conc = cfg.instance, cfg.concurrency
    out.setdefault("telemetry", {"enabled": False})

    if inst.storage == "postgres":
        out["storage"], more = _postgres_block(cfg, environ)
        lines += more
    else:
        out.pop("storage", None)
        lines.append("storage: SQLite files in $DAGSTER_HOME (instance.storage: sqlite, the one-machine default)")

    if inst.launcher == "celery":
        out["run_launcher"] = {"module": "resources.celery_launcher", "class": "MaestroCeleryRunLauncher", "config": {
            "broker": _env_or(inst.broker), "backend": _env_or(inst.backend), "default_queue": inst.queue,
            # STARTED must be recorded, or run monitoring takes a running run's PENDING state for a dead worker.
            "config_source": {"task_track_started": True, "broker_connection_retry_on_startup": True}}}
        lines.append(f"run_launcher: Celery, broker {inst.broker}, queue {inst.queue!r} (instance.launcher: celery; "
                     "start workers with `maestro worker`)")
    else:
        out.pop("run_launcher", None)
        lines.append("run_launcher: local processes on this host (instance.launcher: local)")

    m = inst.run_monitoring
    out["run_monitoring"] = {"enabled": m.enabled, "poll_interval_seconds": m.poll_seconds,
                             "start_timeout_seconds": m.start_timeout, "max_resume_run_attempts": m.max_resume_attempts,
                             "free_slots_after_run_end_seconds": m.free_slots_after}
    lines.append(f"run_monitoring: {'on' if m.enabled else 'off'} (the daemon fails runs whose worker died and frees "
                 f"their pool slots; resume attempts {m.max_resume_attempts})")

    concurrency = dict(out.get("concurrency") or {})
    runs, pools = dict(concurrency.get("runs") or {}), dict(concurrency.get("pools") or {})
    runs["max_concurrent_runs"], pools["default_limit"] = conc.max_concurrent_runs, conc.research_pool
    concurrency.update(runs=runs, pools=pools)
    out["concurrency"] = concurrency
    lines.append(f"concurrency: {conc.max_concurrent_runs} runs at once, research pool {conc.research_pool} "
                 "(concurrency: in maestro.yaml)")
    kept = sorted(k for k in out if k not in ("storage", "run_launcher", "run_monitoring", "concurrency", "telemetry")
                  ) + (["telemetry"] if (existing or {}).get("telemetry") is not None else [])
    if kept:
        lines.append(f"kept as they were (not Maestro's): {', '.join(kept)}")
    return out, lines


def ensure_dagster_home(cfg=None, report: Callable[[str], None] | None = None) -> Path:
    """A persistent Dagster instance for the demo and ``make ui`` (``$DAGSTER_HOME``, default ``.dagster_home``).

    With a config, its ``instance:`` and ``concurrency:`` sections are merged into ``dagster.yaml`` (storage, run
    launcher, run monitoring, run queue and pool limits); every other key already in the file is kept
    (:func:`maestro_pipeline.cli.team.render_instance`). ``report`` receives one line per decision."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if cfg is None and path.exists():
        return home
    existing: dict = {}
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise MaestroError(f"{path}: not valid YAML ({getattr(e, 'problem', e)}); fix or delete it") from None
        if not isinstance(existing, dict):
            raise MaestroError(f"{path}: expected a mapping of Dagster instance settings; fix or delete it")
    if cfg is None:
        content, lines = {**existing, "telemetry": existing.get("telemetry", {"enabled": False})}, []
    else:
        content, lines = render_instance(existing, cfg)
    header = ("# Dagster instance settings. Maestro owns storage, run_launcher, run_monitoring and the two\n"
              "# concurrency limits (rendered from maestro.yaml by `maestro instance`); other keys are kept.\n")
    tmp = path.with_name(f".dagster.yaml.{os.getpid()}.tmp")
    tmp.write_text(header + yaml.safe_dump(content, sort_keys=False))
    tmp.replace(path)
    for line in lines:
        (report or (lambda _line: None))(line)
    return home


def _cmd_instance(args: argparse.Namespace) -> int:
    cfg = load_config(config_path(args.config))
    lines: list[str] = []
    home = ensure_dagster_home(cfg, report=lines.append)
    print(f"{home / 'dagster.yaml'}: written from {config_path(args.config)}")
    for line in lines:
        print(f"  {line}")
    return 0


def worker_command(cfg, home: Path, name: str | None = None) -> list[str]:
    """The ``dagster-celery worker start`` command line of one worker host: the solo pool (Celery's prefork pool
    forbids the child processes a research run starts), one run at a time, the configured queue."""
    inst = cfg.instance
    worker_yaml = home / "celery_worker.yaml"
    text = yaml.safe_dump({"execution": {"config": {
        "broker": _env_or(inst.broker), "backend": _env_or(inst.backend),
        "config_source": {"task_track_started": True, "broker_connection_retry_on_startup": True}}}})
    tmp = worker_yaml.with_suffix(".tmp")
    tmp.write_text("# Written by `maestro worker` from maestro.yaml's instance section.\n" + text)
    tmp.replace(worker_yaml)
    exe = shutil.which("dagster-celery", path=str(Path(sys.executable).parent)) or "dagster-celery"
    name = name or "maestro"
    node = f"{name}@{socket.gethostname()}"  # Celery's node name: dagster-celery appends @<host> to -n
    # under its heartbeat (resources/celery_launcher.py), which tells run monitoring when this worker is gone
    return [sys.executable, "-m", "resources.celery_launcher", node, inst.backend, "--",
            exe, "worker", "start", "-A", "dagster_celery.app", "-y", str(worker_yaml), "-q", inst.queue,
            "-n", name, "--", "--pool=solo", "--concurrency=1"]


def _cmd_worker(args: argparse.Namespace) -> int:
    cfg = load_config(config_path(args.config))
    if cfg.instance.launcher != "celery":
        raise ConfigError("maestro.yaml: instance.launcher: local runs everything on this host; set it to celery "
                          "(with instance.storage: postgres) to use worker hosts")
    if args.name and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        raise ConfigError(f"--name {args.name!r}: use letters, digits, '.', '_' or '-' (the host is added as @<host>)")
    home = ensure_dagster_home(cfg)
    cmd = worker_command(cfg, home, args.name)
    if args.print_only:
        print(" ".join(cmd))
        return 0
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # dagster-celery runs `celery`
    print(f"maestro worker: {' '.join(cmd)}", flush=True)
    return subprocess.call(cmd, env=env)


def add_team_commands(sub: Any) -> None:
    sub.add_parser("instance", help="write the Dagster instance's dagster.yaml from maestro.yaml (storage, launcher, "
                   "monitoring, concurrency; other settings kept) and say what and why").set_defaults(fn=_cmd_instance)
    w = sub.add_parser("worker", help="run a Celery worker host for instance.launcher: celery (solo pool)")
    w.add_argument("--name", help="worker name, unique per host (default maestro; the node is NAME@<host>)")
    w.add_argument("--print-only", action="store_true", help="print the worker command instead of running it")
    w.set_defaults(fn=_cmd_worker)
