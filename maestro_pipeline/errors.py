"""One exception type for user mistakes, so every entry point can print one line instead of a traceback."""


class MaestroError(Exception):
    """A problem the user can fix (bad config, bad input, impossible request). The message says how."""


class ConfigError(MaestroError):
    """``maestro.yaml`` (or an equivalent mapping) is invalid."""


class DataError(MaestroError):
    """Market data is missing, malformed or does not cover what was asked."""
