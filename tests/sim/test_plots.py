"""The plots' axes read as people write the numbers: ratios as p:d, log axes as plain numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display here; the package does the same before it draws
import matplotlib.pyplot as plt
import pytest

from heteroscale.simulate.plots import draw_ratio_curve, ratio_text
from heteroscale.simulate.service import RatioPoint


@pytest.mark.parametrize(("ratio", "text"), [(0.2, "1:5"), (0.5, "1:2"), (1.0, "1:1"), (3.5, "3.5:1"), (9.0, "9:1")])
def test_a_ratio_is_written_prefill_to_decode(ratio: float, text: str) -> None:
    assert ratio_text(ratio) == text


def test_the_stress_test_curve_labels_its_ratio_axis_as_ratios() -> None:
    curve = [RatioPoint((p, 2), p, 2, goodput_per_gpu=70.0 - abs(p - 7), slo_attainment=0.99) for p in (4, 7, 14, 28)]
    fig, ax = plt.subplots()
    draw_ratio_curve(ax, curve)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    # The paper's range 1:5-9:1 is shaded, and the curve runs to 14:1: both ends are labelled.
    assert labels[0] == "1:5"
    assert "9:1" in labels
    assert all(":" in label for label in labels)
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
