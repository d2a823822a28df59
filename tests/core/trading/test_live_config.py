"""The ``live:`` section: defaults, and one line naming the key for every mistake."""

from __future__ import annotations

import pytest

from maestro_pipeline.config import parse_config
from maestro_pipeline.errors import ConfigError
from tests.support.config import small_config


def test_defaults():
    live = parse_config(small_config("lake")).live
    assert (live.tradeable_from, live.band_level, live.band_resamples, live.band_seed, live.min_live_bars,
            live.reoptimize_on_drift, live.freqtrade_class) == ("promising", 0.95, 2000, 0, 24, False, {})


@pytest.mark.parametrize(("live", "msg"), [
    ({"tradeable_from": "great"}, "live.tradeable_from: Input should be 'robust', 'promising' or 'weak'"),
    ({"band_level": 1.5}, "live.band_level: Input should be less than 1"),
    ({"band_resamples": 10}, "live.band_resamples"),
    ({"freqtrade_class": {"ema_crosss": "X"}}, "live.freqtrade_class: unknown strategy 'ema_crosss' (did you mean"),
    ({"freqtrade_class": {"ema_cross": "1x"}}, "'1x' is not a Python class name"),
    ({"bandlevel": 0.9}, "live.bandlevel: unknown key"),
])
def test_mistakes_are_one_line_naming_the_key(live, msg):
    with pytest.raises(ConfigError) as e:
        parse_config(small_config("lake", live=live))
    assert msg in str(e.value) and "\n" not in str(e.value)
