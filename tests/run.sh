#!/usr/bin/env bash
# Set up and run every check: lint, format, types, layer rules and the whole pytest suite.
# Usage: bash tests/run.sh [pytest args]. Needs Python >= 3.11 as python3.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real-Prometheus tier needs Debian's prometheus (it brings promtool too).
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
  else
    echo "note: prometheus is not installed; real-Prometheus tests will be skipped (apt-get install prometheus)" >&2
  fi
fi

python3 -m venv .venv
# --no-compile: pip byte-compiles every file it installs (PyTorch's thousands), while the tests
# import a small part of them; Python compiles those on first import. Measured on this 2-core
# machine from pip's cache: 78 s with compiling, 40 s without.
.venv/bin/python -m pip install -q --no-compile --upgrade pip
# The offline tools' extras too: their tests run here; the operator image leaves them out.
.venv/bin/python -m pip install -q --no-compile -e '.[test,sim,stragglers]'
# CPU PyTorch for the straggler end-to-end test (a real profiled training run).
.venv/bin/python -m pip install -q --no-compile 'torch==2.13.0'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy heteroscale
.venv/bin/lint-imports --no-cache
# Two workers (pytest-xdist), one per core of the CI machine: measured on it, the suite took 580 s
# in one process and 269 s in two. Pass -n 0 to run in one process (e.g. to debug with -s or pdb).
.venv/bin/python -m pytest -n 2 "$@"
