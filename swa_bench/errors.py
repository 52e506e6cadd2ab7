"""The one base class of every error that is the user's to fix (a config key, a data path, a run
directory, a device): the CLI prints such an error as one line and exits with status 2. Kept free of
heavy imports, so that catching it costs nothing."""


class UserError(Exception):
    """Bad input or a refused operation, already phrased as one line for the user."""


class ConfigError(UserError, ValueError):
    """A config problem, already phrased as one line for the user (file or --set, and the dotted key)."""
