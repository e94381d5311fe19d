"""The one exception type for user mistakes: the CLI prints its message as one line, exit 2."""


class ServableError(Exception):
    """A user-facing error: bad input, a missing file, a tampered bundle. One clear line."""
