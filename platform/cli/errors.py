"""Expected failures of a command: a message for the user and an exit code, no traceback."""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2


class CliError(Exception):
    """A failure the user can act on; ``main`` prints ``message`` and exits with ``code``."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CliError):
    """Bad input on the command line or in a file it names (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)
