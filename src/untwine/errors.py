"""The one exception type for user mistakes: the CLI prints it as one line and exits 2."""


class UntwineError(ValueError):
    """a wrong name, value, path or file; the message says what is accepted."""


class UntwineWarning(UserWarning):
    """something the user should know that does not stop the work (e.g. skipped files)."""
