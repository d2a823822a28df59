"""Team mode on one machine, with every part real: PostgreSQL (Dagster's instance and the Optuna studies), Redis
(Celery's broker and result backend), ``dagster dev`` as the control host (webserver + daemon, runs queued and
launched by ``CeleryRunLauncher``), two ``maestro worker`` processes (solo pool). A research backfill of four
instrument x strategy partitions, launched through GraphQL as the UI does, runs on both workers, equals an
in-process run of the same partitions, and its studies open from PostgreSQL.

Run with ``make test-cluster`` (it installs the ``team`` extra into an overlay venv).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.cluster.services import start_postgres, start_redis
from tests.support.config import small_config
from tests.support.dagster_dev import dagster_dev, tail

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ["ema_cross", "rsi", "bollinger", "macd"]   # the backfill on two workers
KILLED = "channel"                                      # the run whose worker is killed -9, then re-run
INSTRUMENT = "synthetic.BTC_USDT.1h"
N_TRIALS = 8


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    pg = start_postgres(("dagster", "optuna"))
    try:
        redis = start_redis(tmp_path_factory.mktemp("redis"))
    except BaseException:
        pg.stop()
        raise
    try:
        yield pg, redis
    finally:
        redis.stop()
        pg.stop()


def _config(tmp: Path, redis, *, team: bool) -> Path:
    cfg = small_config(str(tmp / "lake"),
                       instruments=[{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
                                     "start": "2025-01-01", "end": "2025-05-01"}],
                       strategies=[*STRATEGIES, KILLED], walk_forward={"train": "40d", "test": "20d", "n_splits": 2},
                       search={"n_trials": N_TRIALS, "seed": 9, "workers": 1, "storage": "none"})
    cfg["regimes"] = {"enabled": False}
    if team:
        cfg["search"]["storage"] = "postgresql://postgres@127.0.0.1:${MAESTRO_PG_PORT}/optuna"
        cfg["instance"] = {"storage": "postgres", "launcher": "celery", "broker": redis.url(0),
                           "backend": redis.url(1), "run_monitoring": {"poll_seconds": 5, "free_slots_after": 1}}
        cfg["concurrency"] = {"max_concurrent_runs": 4, "research_pool": 2}
    p = tmp / "maestro.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _graphql(base: str, query: str, variables: dict) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        out = json.loads(r.read())
    assert "errors" not in out, out
    return out["data"]


BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""


#: What `maestro demo` materializes per instrument x strategy (the in-process reference): the research steps (whole:
#: their multi-assets are not subsettable) and the live assets the leaderboard joins.
RESEARCH_ASSETS = ["split_optimal_params", "trial_ledger", "trial_returns", "oos_reports", "oos_equity",
                   "oos_split_metrics", "oos_rolling", "param_stability", "oos_trades", "live_parameters",
                   "live_performance"]


def _backfill(base: str, keys: list[str]) -> str:
    params = {"partitionNames": keys, "fromFailure": False,
              "assetSelection": [{"path": [k]} for k in RESEARCH_ASSETS]}
    for _attempt in range(60):  # the code location may still be loading
        res = _graphql(base, BACKFILL, {"p": params})["launchPartitionBackfill"]
        if res["__typename"] == "LaunchBackfillSuccess":
            return res["backfillId"]
        time.sleep(2)
    raise AssertionError(res)


def _wait_runs(inst, backfill_id: str, n: int, done, timeout: float = 900) -> list:
    import dagster as dg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = inst.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if len(runs) == n and all(done(r) for r in runs):
            return runs
        time.sleep(1)
    return inst.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))


def _run_pids(inst, run_id: str) -> set[int]:
    return {int(m) for e in inst.all_logs(run_id) if e.message for m in re.findall(r"pid: (\d+)", e.message)}


def _descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {pid} | {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def test_research_backfill_runs_on_two_celery_workers_and_equals_in_process(services, tmp_path, monkeypatch):
    import dagster as dg
    import optuna

    from maestro_pipeline.cli import run_graph
    from maestro_pipeline.config import load_config
    from maestro_pipeline.evaluation import build_leaderboard
    from maestro_pipeline.lake import Lake

    pg, redis = services
    team_dir, ref_dir = tmp_path / "team", tmp_path / "ref"
    team_dir.mkdir(), ref_dir.mkdir()
    cfg_path = _config(team_dir, redis, team=True)
    home = team_dir / "home"
    home.mkdir()
    # a setting Maestro does not own, which `maestro instance` must keep: the asset daemon off, so that only the
    # backfill (not the eager automation sensor) launches research runs here
    (home / "dagster.yaml").write_text("auto_materialize:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MAESTRO_CONFIG": str(cfg_path), "PYTHONPATH": str(ROOT),
           "PYTHONWARNINGS": "ignore", "MAESTRO_PG_HOST": "127.0.0.1", "MAESTRO_PG_PORT": str(pg.port),
           "MAESTRO_PG_USER": pg.user, "MAESTRO_PG_DB": "dagster",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k in ("MAESTRO_PG_HOST", "MAESTRO_PG_PORT", "MAESTRO_PG_USER", "MAESTRO_PG_DB"):
        monkeypatch.setenv(k, env[k])  # this process opens the instance too
    cli = [sys.executable, "-m", "maestro_pipeline.cli", "--config", str(cfg_path)]
    out = subprocess.run([*cli, "instance"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "storage: PostgreSQL postgres@127.0.0.1" in out.stdout and "run_launcher: Celery" in out.stdout
    assert "kept as they were (not Maestro's): auto_materialize" in out.stdout
    rendered = yaml.safe_load((home / "dagster.yaml").read_text())
    assert rendered["auto_materialize"] == {"enabled": False}
    assert rendered["storage"]["postgres"]["postgres_db"]["hostname"] == {"env": "MAESTRO_PG_HOST"}

    # bars and splits in process, on the shared PostgreSQL instance (research is what the workers do)
    prep = subprocess.run([sys.executable, "-c", PREPARE, str(cfg_path)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert prep.returncode == 0, prep.stdout[-2000:] + prep.stderr[-3000:]

    workers, logs = [], []
    try:
        for name in ("w1", "w2"):
            log = open(team_dir / f"{name}.log", "w")
            logs.append(log)
            workers.append(subprocess.Popen([*cli, "worker", "--name", name], env=env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
        with dagster_dev(env, team_dir / "dagster_dev.log") as base:
            keys = [f"{INSTRUMENT}|{s}" for s in STRATEGIES]
            backfill = _backfill(base, keys)
            with dg.DagsterInstance.from_config(str(home)) as inst:
                runs = _wait_runs(inst, backfill, len(keys), lambda r: r.is_finished)
                worker_pids = {name: _descendants(w.pid) for name, w in zip(("w1", "w2"), workers, strict=True)}
                statuses = sorted(r.status.value for r in runs)
                detail = "\n".join(tail(team_dir / f, 1500) for f in ("w1.log", "w2.log", "dagster_dev.log"))
                assert statuses == ["SUCCESS"] * len(keys), f"{statuses}\n{detail}"
                ran_on = {r.run_id: {n for n, ps in worker_pids.items() if _run_pids(inst, r.run_id) & ps}
                          for r in runs}
                assert all(len(v) == 1 for v in ran_on.values()), ran_on
                assert set().union(*ran_on.values()) == {"w1", "w2"}, f"both workers ran runs: {ran_on}"
                assert all(r.tags.get("dagster-celery/task_id") for r in runs)  # launched through Celery

                # a worker dies (kill -9 of its whole process group) while it runs a research run
                killed = _backfill(base, [f"{INSTRUMENT}|{KILLED}"])
                victim, deadline = None, time.monotonic() + 300
                while victim is None and time.monotonic() < deadline:
                    for r in inst.get_runs(dg.RunsFilter(tags={"dagster/backfill": killed})):
                        pids = _run_pids(inst, r.run_id)
                        victim = next((i for i, (n, ps) in enumerate(worker_pids.items()) if pids & ps), None)
                        dead_run = r.run_id
                    time.sleep(0.3)
                assert victim is not None, "the run never started on a worker"
                os.killpg(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                (failed,) = _wait_runs(inst, killed, 1, lambda r: r.is_finished, timeout=180)
                assert failed.run_id == dead_run and failed.status == dg.DagsterRunStatus.FAILURE, failed.status
                messages = " ".join(e.message or "" for e in inst.all_logs(dead_run))
                assert "is gone: no heartbeat" in messages
                deadline = time.monotonic() + 240  # the daemon frees it on a monitoring pass (slow on a busy host)
                while dead_run in {s.run_id for s in
                                   inst.event_log_storage.get_concurrency_info("maestro_research").claimed_slots}:
                    assert time.monotonic() < deadline, "the dead run's pool slot was not freed"
                    time.sleep(1)
                assert [p for p in (team_dir / "lake").rglob("*") if ".tmp" in p.name] == []  # no partial file
                # the re-run, on the surviving worker
                (again,) = _wait_runs(inst, _backfill(base, [f"{INSTRUMENT}|{KILLED}"]), 1,
                                      lambda r: r.is_finished, timeout=600)
                assert again.status == dg.DagsterRunStatus.SUCCESS, tail(team_dir / "dagster_dev.log", 3000)
    finally:
        for w in workers:  # each worker's own group: maestro worker, its heartbeat, dagster-celery, celery
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, signal.SIGKILL)
                w.wait()
        for log in logs:
            log.close()

    # the same partitions in process (SQLite, no Celery) give the same results
    ref_cfg = _config(ref_dir, redis, team=False)
    with dg.instance_for_test() as instance:
        run_graph(ref_cfg, instance=instance, log=lambda *_: None)
    team_cfg, ref = load_config(cfg_path), load_config(ref_cfg)
    pairs = [(INSTRUMENT, s) for s in [*STRATEGIES, KILLED]]
    drop = {"computed_at", "code_version", "rank"}

    def rows(cfg):
        return sorted(({k: v for k, v in r.items() if k not in drop}
                       for r in build_leaderboard(Lake(cfg.lake_path()), pairs).to_dicts()),
                      key=lambda r: r["strategy"])

    # every figure bit for bit (JSON text, so NaN, which the report uses for "not computed", equals NaN)
    assert json.dumps(rows(team_cfg), sort_keys=True, default=str) == json.dumps(rows(ref), sort_keys=True, default=str)

    # every split's study is in PostgreSQL, complete
    url = f"postgresql+psycopg2://{pg.user}@127.0.0.1:{pg.port}/optuna"
    names = optuna.get_all_study_names(url)
    for s in [*STRATEGIES, KILLED]:
        mine = [n for n in names if n.startswith(f"{INSTRUMENT}/{s}/split")]
        assert len(mine) >= 2, names
        assert all(len(optuna.load_study(study_name=n, storage=url).trials) == N_TRIALS for n in mine)  # complete


PREPARE = """
import sys
from pathlib import Path
import dagster as dg
from assets import build_definitions
from assets.partitions import bars_key
from maestro_pipeline.config import load_config
from maestro_pipeline.durations import month_of, months_between
cfg_path = Path(sys.argv[1]); cfg = load_config(cfg_path)
defs = build_definitions(cfg, cfg_path.parent)
repo = defs.get_repository_def()
assets = list(repo.assets_defs_by_key.values())
by = {k.path[-1]: a for k, a in repo.assets_defs_by_key.items()}
inst = dg.DagsterInstance.get()
for i in cfg.instrument_objs:
    for m in months_between(month_of(i.start_ms), month_of(i.end_ms - 1)):
        sel = [by["raw_candles"], by["validated_bars"]]
        assert dg.materialize(assets, selection=sel, partition_key=bars_key(m, i.key), instance=inst).success
    assert dg.materialize(assets, selection=[by["walk_forward_splits"]], partition_key=i.key, instance=inst).success
print("prepared")
"""
