"""The one exception type users see as a single line on stderr."""


class RnnchatError(Exception):
    """A problem with the user's input or files; its message is shown as-is, without a traceback."""


class CorpusError(RnnchatError):
    pass


class CheckpointError(RnnchatError):
    pass


class SaveError(RnnchatError):
    """Writing a run's files failed (a full disk, say): the CLI exits 1, since the input was fine."""


class ConfigError(RnnchatError):
    """A setting the engine refuses. With ``field`` (a config field name such as "seq_len") the message
    is "<field> <detail>", and each front end names the field its own way (``--seq-len``, "Window")."""

    def __init__(self, detail: str, field: str | None = None):
        super().__init__(f"{field} {detail}" if field else detail)
        self.detail = detail
        self.field = field

    def phrased(self, name: str) -> str:
        """The message with the field called ``name``."""
        return f"{name} {self.detail}" if self.field else str(self)
