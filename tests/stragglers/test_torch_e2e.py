"""End to end on a real PyTorch training: 2 PP x 2 DP on CPU/gloo, one rank slowed on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heteroscale.stragglers.analysis import analyze
from heteroscale.stragglers.trace import JobMeta
from heteroscale.stragglers.trace_io import load_trace

if os.environ.get("CI") == "true":
    import torch  # noqa: F401  - CI must run this test: a missing torch is a failure there
else:
    pytest.importorskip("torch", reason="install CPU PyTorch: pip install torch==2.13.0")

SLOW_RANK = 1  # DP rank 1 of stage 0: not on the last stage, so only a worker problem explains it


@pytest.mark.torch
@pytest.mark.timeout(120)
def test_importer_and_analysis_name_the_slowed_rank(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.stragglers.pipeline_training",
            str(tmp_path),
            "--slow-rank",
            str(SLOW_RANK),
        ],
        check=True,
        capture_output=True,
        timeout=100,
        cwd=Path(__file__).resolve().parents[2],
    )
    meta = JobMeta(name="torch-e2e", dp=2, pp=2)
    analysis = analyze(load_trace(tmp_path, meta), meta)
    diagnosis = analysis.diagnosis
    assert diagnosis.straggling
    assert "worker" in diagnosis.causes
    assert diagnosis.suspect_ranks == (SLOW_RANK,)
    assert diagnosis.suspect_nodes  # the profiler records each rank's host
