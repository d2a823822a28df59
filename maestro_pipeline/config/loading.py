"""The whole ``maestro.yaml``: the root model, one-line errors, and reading the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from ..errors import ConfigError, MaestroError
from ..instruments import Instrument
from ..strategies import available_strategies
from ._base import Section, closest
from .contract import DataContractConfig
from .instance import InstanceConfig
from .instruments import InstrumentConfig
from .live import LiveConfig
from .operations import ConcurrencyConfig, CostConfig, CostsConfig, ScheduleConfig, SyntheticConfig
from .research import RegimesConfig, ResearchDataConfig, SearchConfig, WalkForwardConfig
from .risk import EvaluationConfig, RiskConfig

DEFAULT_CONFIG_PATH = "maestro.yaml"
M = TypeVar("M", bound=BaseModel)
CONFIG_ENV = "MAESTRO_CONFIG"


class MaestroConfig(Section):
    lake_root: str = "data_lake"
    owners: list[str] = ["team:research"]   # who answers for the assets (Dagster owners: team:name or an email)
    files_url: str = "http://127.0.0.1:8765"  # where `maestro serve` publishes the lake's HTML (UI links)
    instruments: list[InstrumentConfig]
    strategies: list[str]
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    search: SearchConfig = SearchConfig()
    costs: CostsConfig = CostsConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    regimes: RegimesConfig = RegimesConfig()
    research: ResearchDataConfig = ResearchDataConfig()
    risk: RiskConfig = RiskConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    data_contract: DataContractConfig = DataContractConfig()
    live: LiveConfig = LiveConfig()
    instance: InstanceConfig = InstanceConfig()

    @field_validator("files_url")
    @classmethod
    def _files_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"files_url must be an http(s) URL such as http://127.0.0.1:8765, not {v!r}")
        return v.rstrip("/")

    @field_validator("owners")
    @classmethod
    def _owners(cls, v: list[str]) -> list[str]:
        bad = [o for o in v if not (o.startswith("team:") and len(o) > 5) and "@" not in o]
        if bad:
            raise ValueError(f"owners must be team:<name> or an email address, not {', '.join(bad)}")
        return v

    @field_validator("instruments")
    @classmethod
    def _instruments(cls, v: list[InstrumentConfig]) -> list[InstrumentConfig]:
        if not v:
            raise ValueError("list at least one instrument (exchange, symbol, timeframe, start)")
        keys = [i.to_instrument().key for i in v]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"instrument listed twice: {', '.join(dupes)}")
        return v

    @field_validator("strategies", mode="before")
    @classmethod
    def _all_strategies(cls, v: Any) -> Any:
        """``strategies: all`` researches the whole catalog (every strategy file, including plugins)."""
        if v == "all":
            return available_strategies()
        if isinstance(v, str):
            raise ValueError(f"write a list of strategy names (e.g. [ema_cross, rsi]) or 'all', not {v!r}")
        return v

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"list at least one strategy; available: {', '.join(available_strategies())}")
        avail = available_strategies()
        for name in v:
            if name not in avail:
                raise ValueError(
                    f"unknown strategy {name!r}{closest(name, avail)}; available: {', '.join(avail)}"
                )
        if len(set(v)) != len(v):
            raise ValueError("a strategy is listed twice")
        return v

    @model_validator(mode="after")
    def _risk_per_strategy(self) -> MaestroConfig:
        for name in self.strategies:
            try:
                self.risk.for_strategy(name)
            except ValidationError as e:
                msg = e.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"risk (for {name}): {msg}") from None
        return self

    @model_validator(mode="after")
    def _contract_targets(self) -> MaestroConfig:
        self.data_contract.check_targets([i.source_id for i in self.instruments],
                                         [i.key for i in self.instrument_objs])
        return self

    # --- conveniences -------------------------------------------------------------------------------
    @property
    def instrument_objs(self) -> list[Instrument]:
        return [i.to_instrument() for i in self.instruments]

    def instrument(self, key: str) -> Instrument:
        for inst in self.instrument_objs:
            if inst.key == key:
                return inst
        raise MaestroError(f"instrument {key!r} is not in maestro.yaml")

    def costs_for(self, exchange: str) -> CostConfig:
        return self.costs.exchanges.get(exchange, self.costs.default)

    def lake_path(self, base: Path | None = None) -> Path:
        p = Path(os.path.expandvars(os.path.expanduser(self.lake_root)))
        return p if p.is_absolute() or base is None else base / p



def _format_error(err: ValidationError, source: str, section: str = "") -> str:
    """``maestro.yaml: walk_forward.step: <what is wrong>`` (``section`` prefixes the key path of a sub-model)."""
    first = err.errors()[0]
    loc = section
    for part in first["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1]) if first["loc"] else ""
        msg = f"unknown key; remove it or check its spelling{closest(key, _all_keys())}"
    elif first["type"] == "missing":
        msg = "missing; add it"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{more}" if loc else f"{source}: {msg}{more}"


def _all_keys() -> list[str]:
    """Every key any section of maestro.yaml knows (for "did you mean" on a misspelt one)."""
    seen: set[str] = set()
    todo: list[type] = [MaestroConfig]
    done: set[type] = set()
    while todo:
        model = todo.pop()
        done.add(model)
        for name, field in model.model_fields.items():
            seen.add(name)
            todo.extend(t for t in _models_in(field.annotation) if t not in done)
    return sorted(seen)


def _models_in(annotation: Any) -> list[type]:
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def parse_section(model: type[M], data: Any, where: str) -> M:
    """One section of the configuration (``SearchConfig``, ``WalkForwardConfig``, ...) from a mapping, with the
    one-line ``ConfigError`` of ``maestro.yaml`` (``where`` names the section in the message)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, "maestro.yaml", where)) from None


def parse_config(data: Any, source: str = "maestro.yaml") -> MaestroConfig:
    """Validate a mapping (the parsed YAML) into a ``MaestroConfig`` or raise a one-line ``ConfigError``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'instruments' and 'strategies' at the top")
    try:
        return MaestroConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently, so a
    repeated ``search:`` section would reset the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue   # ``<<: *anchor``: its keys may be overridden here, that is what merging is for
            key = self.construct_object(key_node, deep=True)
            try:
                line = first.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue   # an unhashable key: the base loader reports it
            if line != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first at line {line}); keep one {key!r} and merge the two",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """Parse YAML text with the safe loader, refusing duplicate keys (``yaml.YAMLError`` on any problem)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | os.PathLike | None = None) -> MaestroConfig:
    """Read and validate ``maestro.yaml`` (or ``$MAESTRO_CONFIG``)."""
    p = config_path(path)
    if not p.exists():
        raise ConfigError(f"{p}: not found; create it (see README) or set {CONFIG_ENV}")
    try:
        data = read_yaml(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return parse_config(data, str(p))
