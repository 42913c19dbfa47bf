"""The one exception type for user mistakes: the CLI prints its message on one line and exits non-zero."""


class EdgeError(Exception):
    """A problem with the user's input (file, model, board, option) that they can fix; never a bug."""

    exit_code = 2
