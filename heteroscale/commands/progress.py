"""The progress bar of the long offline commands: one tqdm bar per stage, named for what it runs.

It is the simulator's :class:`~heteroscale.simulate.engine.Progress` (``simulate``: one bar per
simulation pass, in steps) and curation's meter (``curate``: one bar per round, in candidates,
advanced by fractions as the workers report). tqdm is imported only when a bar starts.
"""

from __future__ import annotations

from typing import Any

#: Curation's bar: fractions of candidates come in as the workers report their passes.
_CANDIDATES = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} candidates [{elapsed}<{remaining}]"


class Bar:
    @classmethod
    def candidates(cls, *, disabled: bool) -> Bar:
        """A bar counting curation's candidates."""
        return cls(disabled=disabled, unit="candidate", bar_format=_CANDIDATES)

    def __init__(self, *, disabled: bool, unit: str = "step", bar_format: str | None = None) -> None:
        self._disabled = disabled
        self._unit = unit
        self._format = bar_format
        self._bar: Any = None

    def start(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.close()
        self._bar = tqdm(
            total=total,
            unit=self._unit,
            desc=label,
            disable=self._disabled,
            mininterval=0.5,
            bar_format=self._format,
        )

    def advance(self, amount: float) -> None:
        if self._bar is not None:
            # Shares reported by workers add up to the total only up to rounding.
            self._bar.update(min(amount, self._bar.total - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
