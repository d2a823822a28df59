"""Bench rows of team mode: persisting Optuna studies, and a Dagster run on PostgreSQL instance storage."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.storages.journal import JournalFileBackend

from ..cli import tiny_run_seconds
from ..search import clear_storage_cache, normalize_storage_url, persist_study
from .common import Row

__all__ = ["team_rows"]


def _bench_trials(n: int) -> list:
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(t):
        t.set_user_attr("trades", t.suggest_int("fast", 2, 50) % 9)
        return t.suggest_float("slow_ratio", 1.1, 5.0)

    study.optimize(objective, n_trials=n)
    return study.trials


def team_rows(trials: int = 100, studies: int = 5) -> list[Row]:
    """Optuna persistence per trial: Maestro's one transaction per study, against Optuna's own ``add_trials``
    (a commit per trial) on SQLite and against journal-file storage (the local alternative optuna-dashboard also
    opens); and, when ``MAESTRO_BENCH_POSTGRES`` names a PostgreSQL database (``postgresql://user@host:port/db``),
    the per-run overhead of a Dagster instance on PostgreSQL against SQLite."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = _bench_trials(trials)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = f"sqlite:///{tmp}/ours.db"
        persist_study(url, "warm", made, ["sharpe"], {})
        t0 = time.perf_counter()
        for i in range(studies):
            persist_study(url, f"s{i}", made, ["sharpe"], {"seed": i})
        ours = (time.perf_counter() - t0) / (studies * trials)
        clear_storage_cache()

        def optuna_add_trials(storage) -> float:
            optuna.create_study(storage=storage, study_name="warm").add_trials(made[:5])
            t0 = time.perf_counter()
            for i in range(studies):
                study = optuna.create_study(storage=storage, study_name=f"s{i}", directions=["maximize"])
                study.set_metric_names(["sharpe"])
                study.add_trials(made)
            return (time.perf_counter() - t0) / (studies * trials)

        rdb = optuna_add_trials(optuna.storages.RDBStorage(f"sqlite:///{tmp}/optuna.db"))
        journal = optuna_add_trials(optuna.storages.JournalStorage(JournalFileBackend(f"{tmp}/journal.log")))
    rows.append(Row(f"persist a {trials}-trial study to SQLite, per trial: one transaction (Maestro)", ours * 1e3,
                    rdb * 1e3, "ms", "reference: Optuna's study.add_trials on the same SQLite storage (a commit per "
                    "trial)"))
    rows.append(Row(f"persist a {trials}-trial study, per trial: journal file (Optuna add_trials)", journal * 1e3,
                    ours * 1e3, "ms", "reference: Maestro's SQLite transaction; the journal is optuna-dashboard's "
                    "other local format, but cannot make a study atomic"))
    pg = os.environ.get("MAESTRO_BENCH_POSTGRES")
    if pg:
        rows.append(_instance_overhead_row(pg))
    return rows


def _instance_overhead_row(pg_url: str, runs: int = 10) -> Row:
    """Wall time of one tiny run (one asset, one partition-free materialization) on each instance storage."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        Path(a, "dagster.yaml").write_text("telemetry: {enabled: false}\n")
        Path(b, "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, "storage": {
            "postgres": {"postgres_url": normalize_storage_url(pg_url)}}}))
        sqlite, postgres = tiny_run_seconds(a, runs), tiny_run_seconds(b, runs)
    return Row("one Dagster run (1 asset), instance storage PostgreSQL", postgres, sqlite, "s",
               f"reference: SQLite instance storage; mean of {runs} runs each")


