"""Errors a user can fix. The CLI prints them as one line and exits 2."""


class ZsarError(Exception):
    """A user error: bad flag, unknown name, missing root, invalid config."""


class ConfigError(ZsarError):
    """A config key, type or value is invalid."""


class DataError(ZsarError):
    """A dataset is missing, unreadable or unusable under the chosen protocol."""


class DivergedError(ZsarError, FloatingPointError):
    """A loss or the selection metric became NaN or infinite (a learning rate too high, bad data)."""
