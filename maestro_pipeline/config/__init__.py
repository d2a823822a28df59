"""``maestro.yaml``: what to research, validated on load.

Every mistake becomes one line that names the key and what is allowed (``ConfigError``), because the file is
read by the Dagster code location at load time, by the CLI and by tests, and a traceback helps none of them.
Sections are typed pydantic models (``instruments``, ``research``: walk-forward, search, regimes; ``operations``:
costs, concurrency, schedule; ``contract``: the bar contract); ``loading`` is the root model and the reader.
"""

from ._base import BUILTIN_SOURCES, known_exchanges
from .contract import ContractThresholds, ContractThresholdsOverride, DataContractConfig
from .instance import InstanceConfig, RunMonitoringConfig
from .instruments import InstrumentConfig
from .live import TRADEABLE_VERDICTS, LiveConfig
from .loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    MaestroConfig,
    config_path,
    load_config,
    parse_config,
    parse_section,
)
from .operations import ConcurrencyConfig, CostConfig, CostsConfig, ScheduleConfig, SyntheticConfig
from .research import RegimesConfig, SearchConfig, WalkForwardConfig
from .risk import EvaluationConfig, RiskConfig, RiskOverride, RiskSettings, parse_stop

__all__ = [
    "BUILTIN_SOURCES", "CONFIG_ENV", "DEFAULT_CONFIG_PATH", "ConcurrencyConfig", "ContractThresholds",
    "ContractThresholdsOverride", "CostConfig", "CostsConfig", "DataContractConfig", "EvaluationConfig",
    "InstanceConfig", "InstrumentConfig", "LiveConfig", "MaestroConfig", "RegimesConfig", "RiskConfig", "RiskOverride",
    "RiskSettings", "RunMonitoringConfig", "ScheduleConfig", "SearchConfig", "SyntheticConfig", "TRADEABLE_VERDICTS",
    "WalkForwardConfig", "config_path", "known_exchanges", "load_config", "parse_config", "parse_section",
    "parse_stop",
]
