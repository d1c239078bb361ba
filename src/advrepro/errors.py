"""The errors a user can cause; the CLI turns each into one line and exit code 2."""


class AdvreproError(RuntimeError):
    """Base class: the message names the file, key or value at fault."""


class ParamsError(AdvreproError, ValueError):
    """A params.yaml problem; `key` is the path of the value at fault, where there is one."""

    def __init__(self, message: str, key=()):
        super().__init__(message)
        self.key = tuple(key)


class DataError(AdvreproError):
    """A data file is missing, corrupt or does not match its checksum."""


class CheckpointError(AdvreproError):
    """A checkpoint is missing, truncated or belongs to another experiment."""


class UsageError(AdvreproError):
    """An unknown experiment, table or figure name on the command line."""


class PaperError(AdvreproError):
    """LaTeX is missing or the paper does not compile."""
