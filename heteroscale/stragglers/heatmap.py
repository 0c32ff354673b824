"""DP rank x PP stage heatmap of worker slowdown (SMon's view): one hot cell is a worker problem,
one hot column a stage imbalance, heat everywhere a sequence-length imbalance. Writes a PNG.
"""

from __future__ import annotations

from pathlib import Path

from heteroscale.stragglers.analysis import Analysis


def write_heatmap(analysis: Analysis, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = analysis.attribution.by_worker
    dp, pp = values.shape
    fig, ax = plt.subplots(figsize=(max(3.0, 1.2 * pp + 2), max(2.5, min(0.3 * dp + 1.5, 14.0))))
    image = ax.imshow(values, aspect="auto", cmap="Reds", vmin=min(1.0, float(values.min())))
    ax.set_xlabel("PP stage")
    ax.set_ylabel("DP rank")
    ax.set_xticks(range(pp))
    if dp <= 32:
        ax.set_yticks(range(dp))
    if dp * pp <= 64:
        for d in range(dp):
            for s in range(pp):
                ax.text(s, d, f"{values[d, s]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="worker slowdown S_w")
    ax.set_title(f"{analysis.meta.name}: S = {analysis.replay.slowdown:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
