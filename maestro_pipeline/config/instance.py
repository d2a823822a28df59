"""``instance:``: where the Dagster instance keeps its state and how it launches runs (one machine or a team).

Rendered into ``$DAGSTER_HOME/dagster.yaml`` by ``maestro instance`` (and ``maestro demo``); the keys it renders
are the only ones Maestro owns there, every other setting in that file is kept (see ``cli/team.py``).

- ``storage: sqlite`` (default): SQLite files in ``$DAGSTER_HOME``; ``postgres``: one PostgreSQL database for
  runs, events and schedules, shared by the control host and every worker. The connection comes from
  environment variables named by ``postgres_env`` (``<prefix>_HOST``, ``_PORT``, ``_USER``, ``_DB`` and an
  optional ``_PASSWORD``): dagster.yaml refers to them and never holds a password.
- ``launcher: local`` (default): runs are processes on this host; ``celery``: the daemon hands each run to a
  Celery worker host (``maestro worker``) through the broker at ``broker`` (a URL, or ``env:VAR`` when it
  carries a password).
- ``run_monitoring``: the daemon marks a run whose worker died as failed (after ``start_timeout`` for one that
  never started) and frees its pool slots; ``max_resume_attempts`` > 0 resumes it on another worker instead.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import Section

ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: What a URL's ``user:password@`` part looks like (a password in maestro.yaml is refused).
_PASSWORD_IN_URL = re.compile(r"^[a-z0-9+.-]+://[^/@:]*:[^/@]+@", re.IGNORECASE)


class RunMonitoringConfig(Section):
    enabled: bool = True
    poll_seconds: int = Field(30, ge=5, le=3600)         # how often the daemon checks running runs
    start_timeout: int = Field(300, ge=30, le=86400)     # a launched run that has not started by then fails
    max_resume_attempts: int = Field(0, ge=0, le=10)     # > 0: a run whose worker died resumes elsewhere
    free_slots_after: int = Field(60, ge=1, le=86400)    # s after a run ended to free its slots (Dagster: 0 = off)


class InstanceConfig(Section):
    storage: Literal["sqlite", "postgres"] = "sqlite"
    postgres_env: str = "MAESTRO_PG"                     # prefix of the connection variables (_HOST, _PORT, ...)
    launcher: Literal["local", "celery"] = "local"
    broker: str = "redis://127.0.0.1:6379/0"             # Celery broker: a URL without password, or env:VAR
    backend: str = "redis://127.0.0.1:6379/1"            # Celery result backend (run health checks read it)
    queue: str = "dagster"                               # the Celery queue workers listen on
    run_monitoring: RunMonitoringConfig = RunMonitoringConfig()

    @field_validator("postgres_env")
    @classmethod
    def _env_prefix(cls, v: str) -> str:
        if not ENV_NAME_RE.match(v):
            raise ValueError(f"{v!r} is not an environment variable prefix; use upper case, digits and _ "
                             "(e.g. MAESTRO_PG)")
        return v

    @field_validator("broker", "backend")
    @classmethod
    def _no_password(cls, v: str) -> str:
        if v.startswith("env:"):
            if not ENV_NAME_RE.match(v[4:]):
                raise ValueError(f"{v!r}: after env: name an environment variable (e.g. env:MAESTRO_BROKER_URL)")
            return v
        if "://" not in v:
            raise ValueError(f"{v!r} is not a URL; write e.g. redis://host:6379/0, or env:VAR")
        if _PASSWORD_IN_URL.match(v):
            raise ValueError("holds a password; put the URL in an environment variable and write env:VAR "
                             "(e.g. env:MAESTRO_BROKER_URL)")
        return v

    @model_validator(mode="after")
    def _celery_needs_shared_storage(self) -> InstanceConfig:
        if self.launcher == "celery" and self.storage == "sqlite":
            raise ValueError("launcher: celery runs on other hosts, which cannot share SQLite files; "
                             "use storage: postgres with it")
        return self

    def postgres_vars(self) -> dict[str, str]:
        """The environment variables the PostgreSQL connection is read from, by role."""
        p = self.postgres_env
        return {"hostname": f"{p}_HOST", "port": f"{p}_PORT", "username": f"{p}_USER", "db_name": f"{p}_DB",
                "password": f"{p}_PASSWORD"}
