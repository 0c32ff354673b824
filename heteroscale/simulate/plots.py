"""PNG plots of a study. Imports matplotlib lazily with the Agg backend (no display needed).

HeteroScale is drawn last and thickest so it is never hidden; legends sit outside the axes; SLO
limits are drawn where a plot shows latency."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heteroscale.simulate.service import PAPER_RATIO_RANGE, RatioPoint
from heteroscale.simulate.study import Study

#: Drawn on top, in a fixed colour per policy.
EMPHASIS = ("heteroscale", "heteroscale-adaptive")
COLOURS = {
    "heteroscale": "tab:red",
    "heteroscale-adaptive": "tab:purple",
    "hpa-util": "tab:blue",
    "independent": "tab:green",
    "static": "tab:grey",
    "oracle": "black",
}


def _order(names: list[str]) -> list[str]:
    """Others first, so HeteroScale's lines are drawn over them."""
    return [n for n in names if n not in EMPHASIS] + [n for n in names if n in EMPHASIS]


def _style(name: str) -> dict[str, Any]:
    emphasis = name in EMPHASIS
    return {
        "lw": 2.2 if emphasis else 1.0,
        "alpha": 1.0 if emphasis else 0.75,
        "color": COLOURS.get(name),
        "zorder": 3 if emphasis else 2,
        "label": name,
    }


def _legend(ax: Any) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _plain(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (3, 0.05), not matplotlib's 3x10^0."""
    from matplotlib.ticker import FuncFormatter

    label = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_major_formatter(label)
    axis.set_minor_formatter(label)


def ratio_text(ratio: float) -> str:
    """A P/D ratio as a person writes it: 1:5, 1:1, 9:1."""
    return f"{ratio:g}:1" if ratio >= 1 else f"1:{1 / ratio:g}"


class Saver:
    """Writes figures as PNGs into one folder, closes them, and keeps the paths it wrote."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []

    def __call__(self, fig: Any, name: str) -> None:
        import matplotlib.pyplot as plt

        path = self.out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.written.append(path)


def write_plots(study: Study, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    save = Saver(out)

    names = _order(list(study.runs))
    hours = {n: np.arange(r.steps) * r.dt / 3600 for n, r in study.runs.items()}
    first = next(iter(study.runs.values()))

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(hours[first.policy], first.offered_decode_tps, lw=0.5, color="grey", label="offered decode TPS")
    for n in names:
        ax.plot(hours[n], study.runs[n].traj.decode_capacity_tps, **_style(n))
    ax.set(
        xlabel="hour", ylabel="tokens/s", title="Offered decode load and each policy's decode capacity at the TBT SLO"
    )
    _legend(ax)
    save(fig, "load_vs_capacity.png")

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for n in names:
        axes[0].plot(hours[n], study.runs[n].traj.prefill_instances, **_style(n))
        axes[1].plot(hours[n], study.runs[n].traj.decode_instances, **_style(n))
    axes[0].set(ylabel="prefill instances", title="Instances per role (starting or ready)")
    axes[1].set(ylabel="decode instances", xlabel="hour")
    _legend(axes[0])
    save(fig, "replicas.png")

    fig, ax = plt.subplots(figsize=(10, 4))
    for n in names:
        t = study.runs[n].traj
        held = np.maximum(t.prefill_instances + t.decode_instances, 1)
        busy = (t.prefill_busy * t.prefill_ready + t.decode_busy * t.decode_ready) / held
        k = max(int(300 / study.runs[n].dt), 1)
        m = busy.size // k
        ax.plot(hours[n][::k][:m], busy[: m * k].reshape(-1, k).mean(1), **_style(n))
    ax.set(xlabel="hour", ylabel="busy fraction", title="GPU utilisation (work / capacity held, 5 min means)")
    _legend(ax)
    save(fig, "utilization.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    qs = (50, 90, 99)
    limits = {"ttft_s": study.service.ttft_slo_s, "tbt_s": study.service.slo.tbt_s}
    for ax, attr, label in ((axes[0], "ttft_s", "TTFT (s)"), (axes[1], "tbt_s", "TBT (s)")):
        for i, q in enumerate(qs):
            vals = [
                float(np.percentile(getattr(study.runs[n], attr)[study.runs[n].finished], q))
                if study.runs[n].finished.any()
                else 0.0
                for n in names
            ]
            ax.bar(np.arange(len(names)) + i * 0.25, vals, width=0.25, label=f"p{q}")
        ax.axhline(limits[attr], color="red", ls="--", lw=1, label="SLO" if attr == "tbt_s" else "guard's TTFT limit")
        ax.set_xticks(np.arange(len(names)) + 0.25, names, rotation=30, fontsize=7)
        ax.set(ylabel=label, yscale="log")
        _plain(ax.yaxis)
        _legend(ax)
    fig.suptitle("Latency percentiles (TTFT limits are per request: max(2 s, 3x unloaded))")
    fig.tight_layout()
    save(fig, "latency.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(
        names, [study.summaries[n].gpu_hours for n in names], color=[COLOURS.get(n, "tab:cyan") for n in names]
    )
    for bar, n in zip(bars, names, strict=True):
        ax.annotate(
            f"{study.summaries[n].slo_attainment:.2%} SLO",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set(ylabel="GPU-hours", title="GPU-hours per policy (label: SLO attainment)")
    ax.tick_params(axis="x", rotation=30)
    save(fig, "gpu_hours.png")

    curve = study.service.ratio_curve
    if curve:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw_ratio_curve(ax, curve)
        save(fig, "ratio_sweep.png")
    return save.written


def draw_ratio_curve(ax: Any, curve: Sequence[RatioPoint]) -> None:
    """The stress test's goodput per GPU at each P/D ratio (``heteroscale curate``'s report draws it too)."""
    x = [p.ratio[0] / p.ratio[1] for p in curve]
    ax.plot(x, [p.goodput_per_gpu for p in curve], "o-", color="tab:red")
    best = max(curve, key=lambda p: p.goodput_per_gpu)
    ax.annotate(
        f"chosen {best.ratio[0]}:{best.ratio[1]}",
        (best.ratio[0] / best.ratio[1], best.goodput_per_gpu),
        textcoords="offset points",
        xytext=(5, 5),
        fontsize=8,
    )
    ax.axvspan(*PAPER_RATIO_RANGE, color="grey", alpha=0.15, label="paper's production range 1:5-9:1")
    ax.set(
        xscale="log",
        xlabel="P/D ratio (prefill per decode instance)",
        ylabel="decode tokens/s per GPU at the SLO",
        title="Stress test: goodput per GPU at each P/D ratio",
    )
    low, high = ax.get_xlim()
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 9, 20, 50, 100) if low <= t <= high]
    ax.set_xticks(ticks, [ratio_text(t) for t in ticks])
    ax.xaxis.set_minor_formatter("")
    _legend(ax)
