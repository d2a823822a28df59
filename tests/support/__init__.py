"""Helpers the tests share: bar factories, the Backtrader replay, the exchange stand-in, the dagster dev launcher."""
