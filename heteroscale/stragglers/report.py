"""What the analysis says, for people (a text report they can act on) and for tools (JSON).

The JSON keys ``slowdown``, ``waste``, ``replay_error``, ``by_optype``, ``by_dp_rank``,
``by_stage``, ``by_worker``, ``M_W``, ``M_W_what_if``, ``M_S``, ``root_causes`` and
``suspect_ranks`` are the stable interface; the rest adds detail (per-step attribution, timelines,
correlations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from heteroscale.stragglers.analysis import Analysis
from heteroscale.stragglers.attribution import WORKER_PERCENT
from heteroscale.stragglers.replay import REPLAY_ERROR_LIMIT
from heteroscale.stragglers.root_cause import (
    LAST_STAGE_M_S,
    SEQUENCE_CORRELATION,
    STRAGGLING_SLOWDOWN,
    WORKER_M_W,
    Cause,
)

_ACTIONS = {
    Cause.WORKER: (
        "inspect the suspect ranks' GPUs and hosts (clocks, thermals, ECC, NIC flaps); cordon or "
        "replace them, and give their nodes to placement as slow nodes (--slow-nodes)"
    ),
    Cause.LAST_STAGE: (
        "rebalance the pipeline partition: move layers off the last stage, which also runs the output layer and loss"
    ),
    Cause.SEQUENCE_IMBALANCE: (
        "balance microbatches by token count (sequence-length-aware packing or sorting) so that "
        "no microbatch carries far more attention work than the others"
    ),
}


def _indexed(values: np.ndarray) -> dict[str, float]:
    return {str(i): float(v) for i, v in enumerate(values)}


def _workers(workers: tuple[tuple[int, int], ...], rank: np.ndarray) -> list[dict[str, int]]:
    return [{"dp_rank": d, "stage": s, "rank": int(rank[d, s])} for d, s in workers]


def to_json(analysis: Analysis) -> dict[str, Any]:
    rep, attr, diag, rank = analysis.replay, analysis.attribution, analysis.diagnosis, analysis.rank
    meta = analysis.meta
    dp, pp = rank.shape
    by_worker = []
    for d in range(dp):
        for s in range(pp):
            entry: dict[str, Any] = {
                "dp_rank": d,
                "stage": s,
                "rank": int(rank[d, s]),
                "slowdown": float(attr.by_worker[d, s]),
                "approx_slowdown": float(attr.worker_score[d, s]),
            }
            node = analysis.nodes.get(int(rank[d, s]))
            if node is not None:
                entry["node"] = node
            by_worker.append(entry)
    per_step = {
        str(int(step)): {
            "slowdown": float(rep.step_slowdown[i]),
            "by_optype": {name: float(v[i]) for name, v in attr.by_optype_step.items()},
            "by_dp_rank": _indexed(attr.by_dp_rank_step[i]),
            "by_stage": _indexed(attr.by_stage_step[i]),
        }
        for i, step in enumerate(rep.steps)
    }
    return {
        "job": meta.name,
        "sizes": {"dp": meta.dp, "pp": meta.pp, "tp": meta.tp, "cp": meta.cp, "vpp": meta.vpp},
        "ops": analysis.n_ops,
        "steps": [int(s) for s in rep.steps],
        "slowdown": rep.slowdown,
        "waste": rep.waste,
        "replay_error": rep.replay_error,
        "replay_trusted": rep.replay_trusted,
        "step_time": {
            "recorded": float(rep.recorded.mean()),
            "replayed": float(rep.replayed.mean()),
            "ideal": float(rep.ideal.mean()),
        },
        "step_slowdown": {str(int(s)): float(v) for s, v in zip(rep.steps, rep.step_slowdown, strict=True)},
        "by_optype": dict(sorted(attr.by_optype.items(), key=lambda kv: -kv[1])),
        "by_dp_rank": _indexed(attr.by_dp_rank),
        "by_stage": _indexed(attr.by_stage),
        "by_worker": by_worker,
        "M_W": attr.M_W,
        "M_W_what_if": attr.M_W_what_if,
        "M_S": attr.M_S,
        "slowest_workers": _workers(attr.slowest_workers, rank),
        "slowest_workers_what_if": _workers(attr.slowest_workers_what_if, rank),
        "fb_correlation": diag.fb_correlation,
        "fb_correlation_by_stage": _indexed(diag.fb_correlation_by_stage),
        "straggling": diag.straggling,
        "root_causes": [str(c) for c in diag.causes],
        "suspect_ranks": list(diag.suspect_ranks),
        "suspect_nodes": list(diag.suspect_nodes),
        "per_step": per_step,
    }


def render_text(analysis: Analysis) -> str:
    rep, attr, diag, rank, meta = (
        analysis.replay,
        analysis.attribution,
        analysis.diagnosis,
        analysis.rank,
        analysis.meta,
    )
    dp, pp = rank.shape
    lines = [
        f"Straggler analysis of {meta.name}: DP {meta.dp} x PP {meta.pp} x TP {meta.tp} x CP {meta.cp}"
        f" (VPP {meta.vpp}), {len(rep.steps)} steps, {analysis.n_ops:,} ops",
        f"Slowdown S = {rep.slowdown:.3f}: {rep.replayed.mean():.3f} s per step against "
        f"{rep.ideal.mean():.3f} s without stragglers; {rep.waste:.1%} of the GPU time is wasted.",
    ]
    if diag.straggling:
        lines.append(f"The job is straggling (S ≥ {STRAGGLING_SLOWDOWN}).")
    else:
        lines.append(f"The job is not straggling (S < {STRAGGLING_SLOWDOWN}); no root cause is reported.")
    trust = "trusted" if rep.replay_trusted else f"NOT trusted: ≥ {REPLAY_ERROR_LIMIT:.0%}, untraced work"
    lines.append(f"Replay error {rep.replay_error:+.2%} against the recorded step time ({trust}).")
    lines.append("")
    if diag.causes:
        lines.append("Root causes:")
    for cause in diag.causes:
        if cause is Cause.WORKER:
            share = f"{WORKER_PERCENT}%"
            lines.append(
                f"  * worker problem: the slowest {share} of workers explain {attr.M_W:.0%} of the "
                f"slowdown (M_W = {attr.M_W:.2f} > {WORKER_M_W})."
            )
            for d, s in diag.suspect_workers:
                node = analysis.nodes.get(int(rank[d, s]))
                where = f" on node {node}" if node else ""
                lines.append(
                    f"      suspect rank {int(rank[d, s])} (dp_rank {d}, stage {s}){where}: "
                    f"S_w = {attr.by_worker[d, s]:.3f}"
                )
        elif cause is Cause.LAST_STAGE:
            lines.append(
                f"  * stage imbalance: the last stage ({pp - 1}) explains {attr.M_S:.0%} of the slowdown "
                f"(M_S = {attr.M_S:.2f} ≥ {LAST_STAGE_M_S}); its S = {attr.by_stage[pp - 1]:.3f}."
            )
        else:
            lines.append(
                f"  * sequence-length imbalance: forward and backward times of a microbatch correlate "
                f"{diag.fb_correlation:.2f} (≥ {SEQUENCE_CORRELATION})."
            )
        lines.append(f"      action: {_ACTIONS[cause]}")
    if diag.straggling and not diag.causes:
        lines.append("No single pattern dominates: look at the attribution below.")
    lines += [
        "",
        f"M_W = {attr.M_W:.3f} (slowest {WORKER_PERCENT}% by min(S_dp, S_stage), as the paper), "
        f"M_W_what_if = {attr.M_W_what_if:.3f} (slowest by their own S_w), M_S = {attr.M_S:.3f}, "
        f"forward/backward correlation {diag.fb_correlation:.3f}",
        "Slowdown if only this group were left as recorded:",
        "  by op type: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(attr.by_optype.items(), key=lambda kv: -kv[1])[:6]),
        "  by stage:   " + ", ".join(f"{s}: {v:.3f}" for s, v in enumerate(attr.by_stage)),
    ]
    worst_dp = np.argsort(-attr.by_dp_rank, kind="stable")[:5]
    lines.append("  by DP rank (slowest): " + ", ".join(f"{d}: {attr.by_dp_rank[d]:.3f}" for d in worst_dp))
    flat = np.argsort(-attr.by_worker, axis=None, kind="stable")[:5]
    lines.append(
        "  by worker (slowest):  "
        + ", ".join(
            f"rank {int(rank[d, s])} (dp {d}, stage {s}) {attr.by_worker[d, s]:.3f}"
            for d, s in (np.unravel_index(i, (dp, pp)) for i in flat)
        )
    )
    worst_step = int(np.argmax(rep.step_slowdown))
    lines.append(
        f"Per step: S from {rep.step_slowdown.min():.3f} to {rep.step_slowdown.max():.3f} "
        f"(median {np.median(rep.step_slowdown):.3f}; worst step {int(rep.steps[worst_step])})."
    )
    return "\n".join(lines) + "\n"
