"""The one exception type users see as a single line on stderr."""


class RnnchatError(Exception):
    """A problem with the user's input or files; its message is shown as-is, without a traceback."""


class CorpusError(RnnchatError):
    pass


class CheckpointError(RnnchatError):
    pass


class ConfigError(RnnchatError):
    pass
