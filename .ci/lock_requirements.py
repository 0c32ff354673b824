"""Write ``deploy/requirements.lock``: the runtime dependencies of pyproject.toml, pinned, with hashes.

Run from an environment where HeteroScale's runtime dependencies are installed (the versions found
there are the ones pinned)::

    python .ci/lock_requirements.py            # downloads wheels from PyPI with pip, hashes them

The closure is walked from ``[project] dependencies`` through each installed distribution's
``Requires-Dist`` (markers evaluated for CPython 3.11 on Linux; extras and test tools are not
followed). Hashes cover the CPython 3.11 manylinux wheels for x86_64 and aarch64 (the Dockerfile's
base image on both architectures), so ``pip install --require-hashes`` works on either.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "deploy" / "requirements.lock"
PLATFORMS = {
    "x86_64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"],
    "aarch64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def marker_env(machine: str) -> dict[str, str]:
    return {
        "python_version": "3.11",
        "python_full_version": "3.11.9",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def runtime_closure() -> dict[str, str]:
    """Canonical name -> installed version of every runtime dependency, direct or transitive."""
    roots = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins: dict[str, str] = {}
    stack = [Requirement(r) for r in roots]
    while stack:
        req = stack.pop()
        if req.marker and not any(req.marker.evaluate(marker_env(m)) for m in PLATFORMS):
            continue
        key = canonical(req.name)
        if key in pins:
            continue
        dist = distribution(req.name)
        pins[key] = dist.version
        stack.extend(Requirement(r) for r in dist.requires or [])
    return pins


def hashes(name: str, version: str, workdir: Path) -> list[str]:
    """sha256 of every wheel pip picks for the pin on each platform."""
    found: set[str] = set()
    for machine, tags in PLATFORMS.items():
        target = workdir / f"{name}-{machine}"
        platform_args = [arg for tag in tags for arg in ("--platform", tag)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                *platform_args,
                "-d",
                str(target),
                f"{name}=={version}",
            ],
            check=True,
        )
        found.update(hashlib.sha256(path.read_bytes()).hexdigest() for path in target.iterdir())
    return sorted(found)


def main() -> None:
    pins = runtime_closure()
    lines = [
        "# Runtime dependencies of heteroscale, pinned with hashes (CPython 3.11, Linux x86_64/aarch64).",
        "# Regenerate: python .ci/lock_requirements.py (see its docstring). No test tools here.",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(pins):
            digests = " \\\n    ".join(f"--hash=sha256:{h}" for h in hashes(name, pins[name], Path(tmp)))
            lines.append(f"{name}=={pins[name]} \\\n    {digests}")
    LOCK.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
