"""The command line in processes of its own: the module entry point, ``heteroscale run`` without a
cluster, and the operator's log lines as a fresh interpreter configures them. In-process command
tests (every user mistake, ``--json -``, exit codes) are in ``tests/unit/test_cli.py``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_module_entry_point_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "heteroscale", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    for command in ("crd", "decide"):
        assert command in result.stdout


def test_run_without_credentials_exits_at_once_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env |= {"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "missing-kubeconfig")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "heteroscale", "run", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert result.stderr.startswith("heteroscale run: error: no cluster credentials:"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 20  # kopf would retry its login every 60 s for ever


def operator_log(log_format: str, *, verbose: bool) -> list[str]:
    """What the operator's logging prints for one INFO and one DEBUG line, in a fresh interpreter."""
    code = (
        "import logging; from heteroscale.operator.main import configure_logging; "
        f"configure_logging({log_format!r}, {verbose}); "
        "log = logging.getLogger('heteroscale.test'); log.info('scaled up'); log.debug('detail')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return (result.stdout + result.stderr).splitlines()


def test_run_logs_timestamped_lines_at_info() -> None:
    (line,) = operator_log("plain", verbose=False)  # the DEBUG line is not shown
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] heteroscale\.test +\[INFO +\] scaled up", line)


def test_run_logs_json_lines_and_debug_when_verbose() -> None:
    lines = [json.loads(line) for line in operator_log("json", verbose=True)]
    assert [(entry["message"], entry["severity"]) for entry in lines] == [("scaled up", "info"), ("detail", "debug")]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["timestamp"]) for entry in lines)
