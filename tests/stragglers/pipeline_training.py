"""A small real pipeline- and data-parallel training on CPU, profiled with torch.profiler.

2 pipeline stages x 2 data-parallel ranks = 4 processes on the gloo backend, GPipe schedule,
Megatron rank order (rank = stage * dp + dp_rank). One rank can be slowed on purpose: its forward and
backward compute take extra time, as a throttled GPU would. Each rank writes its Chrome trace to
OUT/rank-<r>.json. Run: ``python -m tests.stragglers.pipeline_training OUT --slow-rank R``.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

PP, DP = 2, 2
MICROBATCHES = 4
WARMUP_STEPS, STEPS = 2, 6
HIDDEN, BATCH = 256, 16
SLOW_SECONDS = 0.01  # per compute op of the slowed rank


def _train(rank: int, port: int, out: Path, slow_rank: int) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=PP * DP)
    stage, dp_rank = divmod(rank, DP)
    dp_group = None
    for s in range(PP):  # every rank must create every group, in the same order
        group = dist.new_group([s * DP + d for d in range(DP)])
        if s == stage:
            dp_group = group
    torch.manual_seed(stage)
    model = nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    data = torch.randn(MICROBATCHES, BATCH, HIDDEN, generator=torch.Generator().manual_seed(dp_rank))
    prev, nxt = rank - DP, rank + DP
    extra = SLOW_SECONDS if rank == slow_rank else 0.0

    def step() -> None:
        inputs, outputs = [], []
        for mb in range(MICROBATCHES):
            x = data[mb].clone()
            if stage > 0:
                dist.recv(x, prev)
            x.requires_grad_(stage > 0)
            with record_function("forward-compute"):
                y = model(x)
                time.sleep(extra)
            if stage < PP - 1:
                dist.send(y.detach(), nxt)
            inputs.append(x)
            outputs.append(y)
        for mb in range(MICROBATCHES):
            grad = torch.empty(BATCH, HIDDEN)
            if stage < PP - 1:
                dist.recv(grad, nxt)
            with record_function("backward-compute"):
                if stage == PP - 1:
                    outputs[mb].pow(2).mean().backward()
                else:
                    outputs[mb].backward(grad)
                time.sleep(extra)
            if stage > 0:
                dist.send(inputs[mb].grad, prev)
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        dist.all_reduce(flat, group=dp_group)
        norm = flat.pow(2).sum().reshape(1)
        dist.all_reduce(norm)  # global gradient norm, as clipping needs
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(WARMUP_STEPS):
        step()
    dist.barrier()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(STEPS):
            step()
    prof.export_chrome_trace(str(out / f"rank-{rank}.json"))
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--slow-rank", type=int, default=-1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_train, args=(port, args.out, args.slow_rank), nprocs=PP * DP)


if __name__ == "__main__":
    main()
