"""maestro.yaml's ``instance:`` section and its rendering into dagster.yaml (``maestro instance``)."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from maestro_pipeline.cli import main
from maestro_pipeline.cli.team import ensure_dagster_home, render_instance, worker_command
from maestro_pipeline.config import parse_config
from maestro_pipeline.errors import ConfigError
from tests.support.config import small_config

PG_ENV = {"MAESTRO_PG_HOST": "db.internal", "MAESTRO_PG_USER": "maestro", "MAESTRO_PG_DB": "dagster"}


def _cfg(**instance):
    data = small_config("lake")
    if instance:
        data["instance"] = instance
    return parse_config(data)


def test_defaults_are_the_one_machine_instance():
    cfg = _cfg()
    assert (cfg.instance.storage, cfg.instance.launcher) == ("sqlite", "local")
    out, lines = render_instance({}, cfg, environ={})
    assert "storage" not in out and "run_launcher" not in out
    assert out["concurrency"] == {"runs": {"max_concurrent_runs": 2}, "pools": {"default_limit": 1}}
    assert out["run_monitoring"]["enabled"] is True and out["telemetry"] == {"enabled": False}
    assert any(line.startswith("storage: SQLite") for line in lines)


def test_settings_maestro_does_not_own_are_kept(tmp_path, monkeypatch):
    """The issue: `maestro instance` rewrote dagster.yaml from scratch, dropping what a team had added."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({
        "retention": {"schedule": {"purge_after_days": 90}}, "telemetry": {"enabled": True},
        "concurrency": {"runs": {"tag_concurrency_limits": [{"key": "team", "limit": 1}], "max_concurrent_runs": 9},
                        "pools": {"granularity": "op"}},
        "code_servers": {"local_startup_timeout": 120}}))
    lines: list[str] = []
    ensure_dagster_home(_cfg(), report=lines.append)
    got = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert got["retention"] == {"schedule": {"purge_after_days": 90}}
    assert got["telemetry"] == {"enabled": True} and got["code_servers"] == {"local_startup_timeout": 120}
    assert got["concurrency"]["runs"] == {"tag_concurrency_limits": [{"key": "team", "limit": 1}],
                                          "max_concurrent_runs": 2}
    assert got["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    assert "kept as they were (not Maestro's): code_servers, retention, telemetry" in lines
    with dg.DagsterInstance.from_config(str(tmp_path)) as inst:  # Dagster accepts the merged file
        assert inst.run_monitoring_enabled
        assert inst.event_log_storage.get_concurrency_info("maestro_research").limit == 1


def test_postgres_and_celery_render_env_references_and_no_password():
    cfg = _cfg(storage="postgres", launcher="celery", broker="env:MAESTRO_BROKER_URL")
    env = {**PG_ENV, "MAESTRO_PG_PASSWORD": "s3cret", "MAESTRO_PG_PORT": "6543", "MAESTRO_BROKER_URL": "redis://x"}
    out, lines = render_instance({}, cfg, environ=env)
    db = out["storage"]["postgres"]["postgres_db"]
    assert db == {"hostname": {"env": "MAESTRO_PG_HOST"}, "username": {"env": "MAESTRO_PG_USER"},
                  "db_name": {"env": "MAESTRO_PG_DB"}, "port": {"env": "MAESTRO_PG_PORT"},
                  "password": {"env": "MAESTRO_PG_PASSWORD"}, "scheme": "postgresql+psycopg2"}
    launcher = out["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("resources.celery_launcher", "MaestroCeleryRunLauncher")
    assert launcher["config"]["broker"] == {"env": "MAESTRO_BROKER_URL"}
    assert launcher["config"]["config_source"]["task_track_started"] is True
    assert "s3cret" not in yaml.safe_dump(out) and "s3cret" not in " ".join(lines)
    assert "storage: PostgreSQL maestro@db.internal:6543/dagster" in lines[0]
    # without a password variable the file does not reference one (libpq: PGPASSWORD, ~/.pgpass)
    out, _ = render_instance({}, cfg, environ=PG_ENV)
    assert "password" not in out["storage"]["postgres"]["postgres_db"]


def test_postgres_without_its_variables_is_one_line():
    with pytest.raises(ConfigError, match=r"^maestro.yaml: instance.storage: postgres .*set MAESTRO_PG_HOST, "
                                          r"MAESTRO_PG_DB \(or change instance.postgres_env\)$"):
        render_instance({}, _cfg(storage="postgres"), environ={"MAESTRO_PG_USER": "u"})


@pytest.mark.parametrize(("instance", "needle"), [
    ({"storage": "mysql"}, "instance.storage"),
    ({"launcher": "celery"}, "use storage: postgres with it"),
    ({"storage": "postgres", "launcher": "celery", "broker": "redis://u:pw@host:6379/0"}, "env:VAR"),
    ({"postgres_env": "pg-conn"}, "environment variable prefix"),
    ({"brokr": "x"}, "instance.brokr: unknown key"),
])
def test_instance_mistakes_are_one_line(instance, needle):
    with pytest.raises(ConfigError) as e:
        _cfg(**instance)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_maestro_instance_prints_what_and_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config(str(tmp_path / "lake"))))
    assert main(["--config", str(p), "instance"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'home' / 'dagster.yaml'}: written from {p}" in out
    assert "run_launcher: local processes on this host (instance.launcher: local)" in out
    assert "concurrency: 2 runs at once, research pool 1" in out


def test_worker_needs_celery_and_runs_the_solo_pool(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    p = tmp_path / "maestro.yaml"
    p.write_text(yaml.safe_dump(small_config(str(tmp_path / "lake"))))
    assert main(["--config", str(p), "worker", "--print-only"]) == 2
    assert "instance.launcher: local runs everything on this host" in capsys.readouterr().err
    cfg = _cfg(storage="postgres", launcher="celery")
    cmd = worker_command(cfg, tmp_path, "w1")
    node = cmd[3]
    assert cmd[1:3] == ["-m", "resources.celery_launcher"] and node.startswith("w1@")  # under its heartbeat
    worker = cmd[cmd.index("--") + 1:]
    assert worker[1:5] == ["worker", "start", "-A", "dagster_celery.app"] and worker[worker.index("-n") + 1] == "w1"
    assert worker[-2:] == ["--pool=solo", "--concurrency=1"]
    worker_yaml = yaml.safe_load((tmp_path / "celery_worker.yaml").read_text())
    assert worker_yaml["execution"]["config"]["broker"] == "redis://127.0.0.1:6379/0"
