"""PNG plots of a study. Imports matplotlib lazily with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heteroscale.simulate.study import Study


def write_plots(study: Study, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: object, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        written.append(path)

    hours = {n: np.arange(r.steps) * r.dt / 3600 for n, r in study.runs.items()}
    first = next(iter(study.runs.values()))

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(hours[first.policy], first.offered_decode_tps, lw=0.5, color="grey", label="offered decode TPS")
    for n, r in study.runs.items():
        ax.plot(hours[n], r.traj.decode_capacity_tps, lw=1, label=f"{n} decode capacity at SLO")
    ax.set(xlabel="hour", ylabel="tokens/s", title="Load against capacity")
    ax.legend(fontsize=7)
    save(fig, "load_vs_capacity.png")

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for n, r in study.runs.items():
        axes[0].plot(hours[n], r.traj.prefill_instances, lw=1, label=n)
        axes[1].plot(hours[n], r.traj.decode_instances, lw=1, label=n)
    axes[0].set(ylabel="prefill instances", title="Replicas per role")
    axes[1].set(ylabel="decode instances", xlabel="hour")
    axes[0].legend(fontsize=7)
    save(fig, "replicas.png")

    fig, ax = plt.subplots(figsize=(10, 4))
    for n, r in study.runs.items():
        held = np.maximum(r.traj.prefill_instances + r.traj.decode_instances, 1)
        busy = (r.traj.prefill_busy * r.traj.prefill_ready + r.traj.decode_busy * r.traj.decode_ready) / held
        k = max(int(300 / r.dt), 1)
        ax.plot(hours[n][::k][: busy.size // k], busy[: busy.size // k * k].reshape(-1, k).mean(1), lw=1, label=n)
    ax.set(xlabel="hour", ylabel="busy fraction", title="GPU utilisation (work / capacity held, 5 min means)")
    ax.legend(fontsize=7)
    save(fig, "utilization.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(study.runs)
    qs = (50, 90, 99)
    for ax, attr, label in ((axes[0], "ttft_s", "TTFT (s)"), (axes[1], "tbt_s", "TBT (s)")):
        for i, q in enumerate(qs):
            vals = [
                float(np.percentile(getattr(r, attr)[r.finished], q)) if r.finished.any() else 0.0
                for r in study.runs.values()
            ]
            ax.bar(np.arange(len(names)) + i * 0.25, vals, width=0.25, label=f"p{q}")
        ax.set_xticks(np.arange(len(names)) + 0.25, names, rotation=30, fontsize=7)
        ax.set(ylabel=label, yscale="log")
        ax.legend(fontsize=7)
    fig.suptitle("Latency percentiles")
    save(fig, "latency.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, [study.summaries[n].gpu_hours for n in names])
    ax.set(ylabel="GPU-hours", title="GPU-hours per policy")
    ax.tick_params(axis="x", rotation=30)
    save(fig, "gpu_hours.png")
    return written
