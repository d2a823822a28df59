"""The bar data contract: which bars research may read (great-expectations suites, severities, quarantine, gaps).

``rules`` is the catalog (no GE import), ``derive`` the polars-derived columns, ``suites`` the GE context and
suites, ``evaluate`` one partition's evaluation, ``docs`` GE's Data Docs page, ``gaps`` missing-bar ranges,
``explain`` why a month is blocked and which setting would change it.
"""

from .docs import render_data_docs, rule_columns
from .evaluate import STRUCTURAL_RULES, ContractResult, RuleOutcome, RuleResult, check_bars, checks_of, evaluate
from .explain import block_reason, fix_hint
from .gaps import find_gaps, window_gaps
from .rules import (
    CHECKS,
    CONTINUITY_RULES,
    DEFAULT_THRESHOLDS,
    DROP,
    ERROR,
    ROW_RULES,
    RULES,
    WARN,
    Policy,
    Rule,
    blocking_checks,
)
from .status import QUARANTINE, blocked_months, quarantine_partition
from .suites import clear_ge_cache, ge_build_seconds

__all__ = [
    "CHECKS", "CONTINUITY_RULES", "DEFAULT_THRESHOLDS", "DROP", "ERROR", "QUARANTINE", "ROW_RULES", "RULES",
    "STRUCTURAL_RULES", "WARN", "ContractResult", "Policy", "Rule", "RuleOutcome", "RuleResult", "block_reason",
    "blocked_months", "blocking_checks", "check_bars", "checks_of", "clear_ge_cache", "evaluate", "find_gaps",
    "fix_hint", "ge_build_seconds",
    "quarantine_partition", "render_data_docs", "rule_columns", "window_gaps",
]
