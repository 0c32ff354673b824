"""The one error a command raises for a user's mistake.

It lives here, not in :mod:`heteroscale.cli`, so that the entry point imports the commands and the
commands import this module, and neither imports the other.
"""

from __future__ import annotations


class UserInputError(Exception):
    """A problem with what the user gave (a file, a flag): printed as one line, without a traceback."""
