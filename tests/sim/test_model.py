"""Simulator model tier: measured kernels, deployment per role, lanes, oracle pieces, bursts."""

from __future__ import annotations

import numpy as np
import pytest

from heteroscale.api.enums import Role
from heteroscale.metrics.histogram import VLLM_ITL_BUCKETS, VLLM_TTFT_BUCKETS, cumulative_counts, histogram_quantile
from heteroscale.policy import PoolObservation
from heteroscale.simulate import kernels, oracle
from heteroscale.simulate import workload as wl
from heteroscale.simulate.engine import (
    Combined,
    Controlled,
    EngineConfig,
    Scheduled,
    controlled_results,
    serve,
)
from heteroscale.simulate.heteroscale_adapter import HeteroScale
from heteroscale.simulate.latency import prefilled_at
from heteroscale.simulate.perfmodel import InstanceModel, Layout, ModelSpec, Startup, load_gpu_perf
from heteroscale.simulate.policies import SimObservation, StaticPeak
from heteroscale.simulate.readings import RequestStream
from heteroscale.simulate.recorder import LaneFleets, Trajectories
from heteroscale.simulate.service import Slo, spec_document
from heteroscale.simulate.stresstest import derive
from heteroscale.simulate.study import build_policy

PERF = load_gpu_perf()
MODEL = ModelSpec()


def test_the_measured_pcie_all_reduce_slows_with_more_gpus_and_nvlink_does_not() -> None:
    """The aiconfigurator tables as committed: on L40S (PCIe, no NVLink) a large all-reduce over 8
    GPUs takes over ten times as long as over 2; on H100 (NVLink) well under twice."""
    message = 64 * 2**20
    l40s = [kernels.allreduce_seconds("l40s", g, message) for g in (2, 8)]
    h100 = [kernels.allreduce_seconds("h100_sxm", g, message) for g in (2, 8)]
    assert l40s[1] > 10 * l40s[0]
    assert h100[1] < 2 * h100[0]
    # A slower link (H800's 200 GB/s on the H100 table) only lengthens the transfer part.
    assert kernels.allreduce_seconds("h100_sxm", 8, message, 200 / 450) > h100[1]
    assert kernels.allreduce_seconds("h100_sxm", 8, 1024, 200 / 450) == pytest.approx(
        kernels.allreduce_seconds("h100_sxm", 8, 1024), rel=0.05
    )


def test_gemm_efficiencies_come_from_the_tables_and_stay_below_peak() -> None:
    for system in ("l40s", "h100_sxm", "a100_sxm"):
        for tp in (1, 2, 4, 8):
            assert 0.3 < kernels.gemm_efficiency(system, tp) < 1.0
            assert 0.3 < kernels.weight_read_efficiency(system, tp) < 1.0


def _conv_hour() -> wl.Workload:
    return wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=4)


def test_each_role_is_deployed_in_the_layout_that_serves_it_best() -> None:
    svc = derive(
        _conv_hour(), PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8
    )
    prefill, decode = svc.deployments[Role.PREFILL]["L20"], svc.deployments[Role.DECODE]["H20"]
    # L20 prefill: the measured PCIe all-reduce makes every tensor-parallel split slower than a pipeline.
    assert prefill.instance.layout == Layout(1, 8)
    assert prefill.throughput[Layout(1, 8)] > 5 * prefill.throughput[Layout(8, 1)]
    assert decode.instance.layout == Layout(8, 1)  # decode: tensor parallel only
    assert set(decode.throughput) == {Layout(8, 1)}


def test_a_pipeline_prefills_one_chunk_through_every_stage_but_streams_long_prompts() -> None:
    l20 = InstanceModel(PERF["L20"], MODEL, Layout(1, 8))
    short, long_ = np.array([1000.0]), np.array([20 * 2048.0])
    zero = np.zeros(1)
    assert l20.prefill_latency(short, zero)[0] == pytest.approx(8 * l20.prefill_seconds(short, zero)[0])
    assert l20.prefill_latency(long_, zero)[0] < 1.4 * l20.prefill_seconds(long_, zero)[0]


def test_fast_loader_starts_instances_sooner() -> None:
    slow, fast = (InstanceModel(PERF["H20"], MODEL, Layout(8, 1), Startup(fast_loader=f)) for f in (False, True))
    assert fast.startup_seconds < slow.startup_seconds / 2


def test_the_decode_target_is_what_a_pair_at_the_ratio_can_reach() -> None:
    """A decode target above what the ratio's prefill feeds a decode instance could never be read:
    the decode-TPS reading would stay under it while prefill queued."""
    for trace in ("azure-conv", "azure-code"):
        w = wl.scale(wl.load(trace), hours=1, fleet_scale=20)
        svc = derive(w, PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8)
        t = w.trace
        missed_per_output = float((t.input_tokens - t.cached_tokens).sum() / t.output_tokens.sum())
        fed = svc.deployments[Role.PREFILL]["L20"].capacity * svc.ratio[0] / svc.ratio[1] / missed_per_output
        assert svc.decode_target_tps["H20"] <= 0.8 * fed + 1e-6


def test_the_stress_test_keeps_the_ratio_with_the_most_goodput_per_gpu() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=20)
    svc = derive(w, PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8)
    best = max(svc.ratio_curve, key=lambda p: p.goodput_per_gpu)
    assert svc.ratio == best.ratio
    assert best.slo_attainment >= 0.99
    # The curve rises to the best ratio and falls after it: goodput is lost on either side.
    assert svc.ratio_curve[0].goodput_per_gpu < best.goodput_per_gpu > svc.ratio_curve[-1].goodput_per_gpu
    quantile = derive(
        w,
        PERF,
        prefill_gpus=["L20"],
        decode_gpus=["H20"],
        slo=Slo(),
        model=MODEL,
        gpus_per_instance=8,
        ratio_rule="quantile",
    )
    assert quantile.ratio_curve == ()
    assert quantile.ratio[0] / quantile.ratio[1] > svc.ratio[0] / svc.ratio[1]


def test_decode_occupancy_keeps_each_requests_decode_time() -> None:
    """Per-request decode time, not whole steps: a request's occupancy over the steps after its
    arrival adds up to its own duration."""
    start, duration = np.array([0.0, 0.3, 7.2, 1.0]), np.array([0.4, 2.5, 11.0, 30.0])
    occupancy = oracle.occupancy(start, duration, 5.0, 12)
    assert occupancy.sum(axis=0) * 5.0 == pytest.approx(duration)
    assert (occupancy >= 0).all()
    assert (occupancy <= 1 + 1e-12).all()


def test_lanes_of_one_pass_do_not_see_each_other() -> None:
    """A policy's run is the same alone and in a pass with other lanes."""
    w = _conv_hour()
    svc = derive(w, PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8)
    cfg = EngineConfig()
    alone = Controlled([build_policy("heteroscale", svc, cfg, (10, 3))], svc, cfg)
    alone_run = controlled_results(alone, serve(w, svc, alone, cfg), 0, w, svc, cfg)[0]
    shared = Controlled([build_policy("heteroscale", svc, cfg, (10, 3))], svc, cfg)
    steps = alone_run.steps
    others = Scheduled(svc, *(np.full((2, steps), float(n)) for n in (1, 1, 1, 1)))
    served = serve(w, svc, Combined([others, shared]), cfg)
    shared_run = controlled_results(shared, served, others.count, w, svc, cfg)[0]
    assert np.array_equal(shared_run.traj.decode_instances, alone_run.traj.decode_instances)
    assert np.array_equal(shared_run.ttft_s, alone_run.ttft_s)
    assert StaticPeak(svc, 15.0).initial() == svc.static_peak


class _Probe:
    """Fixed fleets that read the first lane's latency window at some steps, as a policy would."""

    def __init__(self, inner: Scheduled, at: tuple[int, ...], window: int) -> None:
        self.inner, self.at, self.window = inner, at, window
        self.read: dict[int, tuple[float | None, float | None, tuple[float, float]]] = {}
        self.stream: RequestStream | None = None

    @property
    def count(self) -> int:
        return self.inner.count

    def fleets(self, s: int, now: float, traj: Trajectories, stream: RequestStream) -> LaneFleets:
        self.stream = stream
        if s in self.at:
            latency = stream.window(traj.lane(0), s - self.window, s)
            self.read[s] = (latency.ttft(0.9), latency.tbt(0.9), latency.prefill_queue())
        return self.inner.fleets(s, now, traj, stream)


def test_the_guards_latency_window_is_the_runs_own_latencies_of_that_window() -> None:
    """What a policy reads at step s is the histogram of the requests whose prefill ended in the
    window, as the whole run's latency model has them (the reading sees no later step), and of the
    tokens generated in it, and the requests still on the prefill engines at s; also while a
    backlog built by too few prefill instances drains."""
    w = _conv_hour()
    svc = derive(w, PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8)
    cfg = EngineConfig()
    steps, (peak_p, peak_d) = 800, svc.static_peak
    # A quarter of the prefill peak for the first half hour, then twice it: a queue, then its drain.
    prefill = np.where(np.arange(steps) < 360, max(peak_p // 4, 1), 2 * peak_p)[None, :].astype(float)
    decode = np.full((1, steps), 2.0 * peak_d)
    window, at = 12, (100, 350, 365, 372, 400, 600, 700)
    probe = _Probe(Scheduled(svc, prefill, prefill, decode, decode), at, window)
    served = serve(w, svc, probe, cfg)
    stream, lane, dt = probe.stream, served.traj.lane(0), cfg.dt
    assert stream is not None
    done = prefilled_at(stream.arrival_s, stream.prefill_s, lane, dt, stream.work_mean, stream.work_scv)
    backlog, queues = [], []
    for s in at:
        lo = s - window
        inside = (done >= lo * dt) & (done < s * dt)
        ttft = (done - stream.arrival_s)[inside]
        counts = cumulative_counts(VLLM_TTFT_BUCKETS, ttft, stream.weight[inside])
        tokens = cumulative_counts(VLLM_ITL_BUCKETS, lane.tbt[lo:s], lane.decode_tps[lo:s] * dt)
        # The queue reading comes from the fluid FIFO; the sampled requests (each standing for
        # many) on the prefill engines and ending in the window count the same while a backlog
        # stands, within their sampling noise (about a tenth of a minute's samples here).
        on_prefill = (stream.arrival_s < s * dt) & (done >= s * dt)
        sampled = (float(stream.weight[on_prefill].sum()), float(stream.weight[inside].sum()) / (window * dt))
        queued, rps = probe.read[s][2]
        expected = (
            histogram_quantile(0.9, VLLM_TTFT_BUCKETS, counts),
            histogram_quantile(0.9, VLLM_ITL_BUCKETS, tokens),
        )
        assert probe.read[s][:2] == expected, s
        if sampled[0] > 1000:
            assert queued == pytest.approx(sampled[0], rel=0.2), s
            assert rps == pytest.approx(sampled[1], rel=0.3), s
        queues.append(queued / rps if rps else None)
        backlog.append(float(ttft.max()))
    # The starved half hour left requests waiting many minutes, drained within the window after
    # it; an hour's end on twice the peak has none.
    assert max(backlog) > 600
    assert backlog[-1] < 10
    # While the backlog builds, the queue's wait (Little's law) is ahead of the longest wait of the
    # requests whose prefill ended in the window: it leads. Drained, nothing waits.
    assert queues[0] is not None
    assert queues[0] > backlog[0]
    assert queues[-2] == 0


class _Latency:
    """A latency window that records which readings a policy asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float]] = []

    def tbt(self, quantile: float) -> float | None:
        self.asked.append(("tbt", quantile))
        return 0.04

    def ttft(self, quantile: float) -> float | None:
        self.asked.append(("ttft", quantile))
        return 1.0

    def prefill_queue(self) -> tuple[float, float]:
        self.asked.append(("queue", 0.0))
        return 2.0, 2.0


@pytest.mark.parametrize(
    ("guard", "asked"),
    [
        ("as simulated", [("tbt", 0.9), ("ttft", 0.9), ("queue", 0.0)]),
        ("without ttftSeconds, at 0.95", [("tbt", 0.95)]),
        ("none", []),
    ],
)
def test_heteroscale_reads_the_latency_its_guard_watches_at_its_quantile(guard: str, asked: list[object]) -> None:
    """As the operator's reader queries: TBT with a guard, TTFT and the prefill queue when it has
    ttftSeconds, at the guard's quantile; nothing without a guard."""
    w = _conv_hour()
    svc = derive(w, PERF, prefill_gpus=["L20"], decode_gpus=["H20"], slo=Slo(), model=MODEL, gpus_per_instance=8)
    document = spec_document(svc, 15.0)
    behavior = document["behavior"]
    if guard == "none":
        del behavior["latencyGuard"]
    elif guard != "as simulated":
        del behavior["latencyGuard"]["ttftSeconds"]
        behavior["latencyGuard"]["quantile"] = 0.95
    policy = HeteroScale(svc, 15.0, svc.static_peak, document=document)
    latency = _Latency()
    pool = PoolObservation(replicas=4, ready=4)
    obs = SimObservation(
        now=600.0,
        metric_age_s=5.0,
        decode_tps=1000.0,
        decode_series=True,
        gateway_rps=1.0,
        prefill_missed_tps=1000.0,
        prefill_utilization=0.5,
        decode_utilization=0.5,
        latency=latency,
        prefill=pool,
        decode=pool,
    )
    policy.decide(obs)
    assert latency.asked == asked


def test_a_burst_compresses_a_slice_of_the_trace_in_time() -> None:
    base = wl.load("azure-conv")
    burst = wl.Burst(start_s=3 * 3600.0, duration_s=1200.0, factor=3.0, ramp_s=300.0)
    calm = wl.scale(base, hours=6, fleet_scale=20, seed=2)
    surge = wl.scale(base, hours=6, fleet_scale=20, seed=2, burst=burst)
    ones = np.ones(base.size)
    per_5min = surge.offered(ones, 300.0) / calm.offered(ones, 300.0)
    held = slice(3 * 12 + 1, 3 * 12 + 5)  # the 20 minutes at full speed, after the 5-minute ramp
    assert per_5min[held] == pytest.approx(3.0, rel=0.1)
    assert per_5min[: 3 * 12] == pytest.approx(1.0)  # untouched before
    # The sample stands for everyone: its weights add up to the offered requests.
    assert surge.weight.sum() == pytest.approx(surge.offered(ones, 3600.0).sum(), rel=0.02)
    assert burst.wall_time(burst.trace_time(np.array([0.0, 10900.0, 11500.0, 20000.0]))) == pytest.approx(
        [0.0, 10900.0, 11500.0, 20000.0]
    )
