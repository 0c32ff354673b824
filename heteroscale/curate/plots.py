"""The report's PNGs: the stress test's ratio curve and every candidate's GPU-hours against its SLO
attainment. Imports matplotlib lazily with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

from heteroscale.curate.curation import Curation
from heteroscale.curate.report import comparison
from heteroscale.simulate.plots import COLOURS, Saver, draw_ratio_curve
from heteroscale.simulate.service import Service


def write_plots(curation: Curation, service: Service, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    save = Saver(out)

    if service.ratio_curve:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw_ratio_curve(ax, service.ratio_curve)
        save(fig, "ratio_curve.png")

    fig, ax = plt.subplots(figsize=(8, 5))
    for round_, marker in ((1, "o"), (2, "s")):
        shown = [e for e in curation.evaluated if e.round == round_]
        ax.scatter(
            [e.score.slo_attainment for e in shown],
            [e.score.gpu_hours for e in shown],
            marker=marker,
            s=16,
            alpha=0.6,
            color="tab:grey",
            label=f"round {round_} candidates",
        )
    colours = {"curated": COLOURS["heteroscale"], "defaults": "tab:orange"}
    for name, score in comparison(curation).items():
        ax.scatter(
            [score.slo_attainment], [score.gpu_hours], s=70, color=colours.get(name, COLOURS.get(name)), label=name
        )
    ax.axvline(curation.attainment, color="red", ls="--", lw=1, label="SLO attainment target")
    ax.set(xlabel="SLO attainment", ylabel="GPU-hours", title="Every candidate: GPU-hours against SLO attainment")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    save(fig, "candidates.png")
    return save.written
