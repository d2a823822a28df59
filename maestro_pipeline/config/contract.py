"""``data_contract:``: which bar rules block, drop rows or warn, and their thresholds per exchange."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..durations import parse_length
from ..errors import MaestroError
from ..quality.rules import CHECKS, Policy
from ._base import Section, closest, known_exchanges


def _contract_length(v: str | int | None, info: Any) -> str | int | None:
    """A gap or run length: a duration (6h, 90m, 2d), a bar count (12) or 0."""
    if v is None or v in (0, "0"):
        return v if v is None else 0
    try:
        parse_length(v, info.field_name, allow_zero=True, allow_months=False)
    except MaestroError as e:
        raise ValueError(str(e)) from None
    return v


class ContractThresholds(Section):
    """Thresholds of the bar contract (crypto trades 24/7: every bar of every day is expected)."""

    max_gap: str | int = "6h"
    spike_z: float = Field(50.0, gt=0)
    max_flat_run: str | int = "6h"
    max_zero_volume_run: str | int = 0
    max_price: float = Field(1e12, gt=0)     # plausibility bound on every price
    max_volume: float = Field(1e18, gt=0)    # plausibility bound on volume
    max_jump: float = Field(10.0, gt=1)      # a bar moving more than this many times the previous close blocks
    calendar: Literal["24/7", "weekdays"] = "24/7"   # weekdays: FX/equity files, weekends are not gaps

    _len = field_validator("max_gap", "max_flat_run", "max_zero_volume_run")(_contract_length)


class ContractThresholdsOverride(Section):
    max_gap: str | int | None = None
    spike_z: float | None = Field(None, gt=0)
    max_flat_run: str | int | None = None
    max_zero_volume_run: str | int | None = None
    max_price: float | None = Field(None, gt=0)
    max_volume: float | None = Field(None, gt=0)
    max_jump: float | None = Field(None, gt=1)
    calendar: Literal["24/7", "weekdays"] | None = None

    _len = field_validator("max_gap", "max_flat_run", "max_zero_volume_run")(_contract_length)


class DataContractConfig(Section):
    """``data_contract``: which rules block, which drop rows, which warn; thresholds by default, per source
    (``exchanges:``: a ccxt exchange id, ``synthetic`` or a file instrument's ``file_<name>``) and per instrument
    (``instruments:``: an instrument key such as ``file_coinbase.BTC_USD.1d``). The most specific wins."""

    severity: dict[str, str] = {}
    default: ContractThresholds = ContractThresholds()
    exchanges: dict[str, ContractThresholdsOverride] = {}
    instruments: dict[str, ContractThresholdsOverride] = {}

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: dict[str, str]) -> dict[str, str]:
        for check, sev in v.items():
            if check not in CHECKS:
                raise ValueError(f"unknown check {check!r}{closest(check, list(CHECKS))}; checks: {', '.join(CHECKS)}")
            allowed = CHECKS[check][1]
            if sev not in allowed:
                raise ValueError(f"check {check!r} cannot be {sev!r}; use {' or '.join(allowed)}")
        return v

    @field_validator("exchanges")
    @classmethod
    def _exchanges(cls, v: dict[str, ContractThresholdsOverride]) -> dict[str, ContractThresholdsOverride]:
        for ex in v:
            if ex == "file":
                raise ValueError("exchanges: 'file' names no source: a file instrument's source is file_<name> (e.g. "
                                 "file_coinbase, its key's first part); or set instruments: {<instrument key>: …}")
            if ex.startswith("file_"):
                continue  # checked against the instruments (MaestroConfig.check_contract_targets)
            if ex not in known_exchanges():
                raise ValueError(f"unknown exchange {ex!r}{closest(ex, known_exchanges())}; a file instrument's "
                                 "source is file_<name>")
        return v

    def check_targets(self, sources: list[str], keys: list[str]) -> None:
        """Every ``file_<name>`` source and instrument key set here must be an instrument of the config."""
        for ex in self.exchanges:
            if ex.startswith("file_") and ex not in sources:
                files = [s for s in sources if s.startswith("file_")]
                raise ValueError(f"data_contract.exchanges: no file instrument has source {ex!r}"
                                 f"{closest(ex, files)}; file sources: {', '.join(files) or 'none'}")
        for key in self.instruments:
            if key not in keys:
                raise ValueError(f"data_contract.instruments: {key!r} is not an instrument{closest(key, keys)}; "
                                 f"instruments: {', '.join(keys)}")

    def severities(self) -> dict[str, str]:
        return {c: self.severity.get(c, CHECKS[c][0]) for c in CHECKS}

    def policy_for(self, exchange: str, key: str | None = None) -> Policy:
        """The contract policy: severities + the thresholds of the default, this source, this instrument."""
        t = self.default.model_dump()
        for over in (self.exchanges.get(exchange), self.instruments.get(key) if key else None):
            if over is not None:
                t.update({k: x for k, x in over.model_dump().items() if x is not None})
        return Policy(severity=self.severities(), **t)


