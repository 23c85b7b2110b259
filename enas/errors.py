"""Errors meant for the user (no torch import, so light readers and the run lock stay light)."""


class UserError(Exception):
    """A problem with the user's input (file, config value): printed as one line, no traceback."""
