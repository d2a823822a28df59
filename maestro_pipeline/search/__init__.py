"""The parameter search: one seeded in-memory Optuna study per split, run in parallel, persisted afterwards.

``space`` (what a split may search), ``study`` (one split's search: samplers, pruning, objectives, the ledger),
``selection`` (the one pick), ``storage`` (persisting finished studies), ``runner`` (every split of an
instrument x strategy: fingerprints, reuse, worker processes).
"""

from .risk import RISK_PARAM_NAMES, risk_space, risk_spec, split_params
from .runner import (
    LOOKAHEAD_SAMPLE_BARS,
    SearchContext,
    SearchOutcome,
    SplitTask,
    optimize_splits,
    refuse_lookahead,
    resolve_workers,
    search_fingerprint,
    split_seed,
)
from .sampling import MAX_GRID_POINTS, grid_space, sampler_label, sampler_settings, suggest
from .selection import select_trial
from .space import (
    WINDOW_WORDS,
    check_window_fits,
    fitted_space,
    is_window_param,
    max_warmup,
    shortest_train_bars,
    window_params_over,
)
from .storage import clear_storage_cache, normalize_storage_url, persist_study, prepare_storage
from .study import LEDGER_COLUMNS, OBJECTIVES, SearchResult, search_split

__all__ = [
    "LEDGER_COLUMNS", "LOOKAHEAD_SAMPLE_BARS", "MAX_GRID_POINTS", "OBJECTIVES", "RISK_PARAM_NAMES", "WINDOW_WORDS",
    "SearchContext", "SearchOutcome", "SearchResult", "SplitTask", "check_window_fits", "clear_storage_cache",
    "fitted_space", "grid_space", "is_window_param", "max_warmup", "normalize_storage_url", "optimize_splits",
    "persist_study",
    "prepare_storage", "refuse_lookahead", "resolve_workers", "risk_space", "risk_spec", "sampler_label",
    "sampler_settings", "search_fingerprint", "search_split", "select_trial", "shortest_train_bars", "split_params",
    "split_seed", "suggest", "window_params_over",
]
