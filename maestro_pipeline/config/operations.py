"""How the pipeline runs: ``costs:``, ``synthetic:``, ``concurrency:`` and ``schedule:``."""

from __future__ import annotations

from pydantic import Field, model_validator

from ._base import Section


class CostConfig(Section):
    """Per fill: ``fee`` of notional, ``slippage`` of price; ``maintenance_margin``: the share of a short's notional
    at which it is liquidated (0.5 % by default; at least the fee, which the liquidating fill pays)."""

    fee: float = Field(0.001, ge=0, lt=0.1)
    slippage: float = Field(0.0005, ge=0, lt=0.1)
    maintenance_margin: float = Field(0.005, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _margin_covers_fee(self) -> CostConfig:
        if self.maintenance_margin < self.fee:
            raise ValueError(f"maintenance_margin {self.maintenance_margin} is below the fee {self.fee}: a liquidation "
                             "pays its fee out of the remaining margin; use at least the fee")
        return self


class CostsConfig(Section):
    default: CostConfig = CostConfig()
    exchanges: dict[str, CostConfig] = {}


class SyntheticConfig(Section):
    seed: int = Field(7, ge=0)




class ConcurrencyConfig(Section):
    """Dagster's limits, written into the instance's dagster.yaml by ``maestro demo`` / ``make ui``.

    ``max_concurrent_runs`` runs at once (backfills, sensor runs); ``research_pool`` research steps at once across
    all runs (each searches its splits with ``search.workers`` processes, so keep pool x workers near the cores).
    """

    max_concurrent_runs: int = Field(2, ge=1, le=1000)
    research_pool: int = Field(1, ge=1, le=1000)


class ScheduleConfig(Section):
    nightly_cron: str = "30 0 * * *"
    timezone: str = "UTC"


