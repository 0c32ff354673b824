"""argparse ``type=`` checks for numeric flags: a bad value is named with its flag, never a traceback.

argparse reports ``argument --tbt-slo: must be a number > 0, got '-0.05'`` from the message of the
:class:`argparse.ArgumentTypeError` these raise.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def positive_float(text: str) -> float:
    """A finite number above zero (a rate, a scale, a duration)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A count that may be zero."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A count of at least one (worker processes)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port; 0 where the flag documents it as 'off' or 'any free port'."""
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return value
