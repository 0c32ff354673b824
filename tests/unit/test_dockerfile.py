"""Invariants of the operator image that hold without a Docker engine (none runs in CI here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK = REPO / "deploy" / "requirements.lock"


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.upper().startswith(keyword + " ")]


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock (backslash-continued pip requirement lines)."""
    text = LOCK.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        pins[canonicalize_name(name)] = (version, [o for o in options if o.startswith("--hash=sha256:")])
    return pins


def test_runs_as_a_numeric_non_root_user() -> None:
    users = instructions("USER")
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets runAsNonRoot verify it without /etc/passwd"
    assert int(uid) != 0


def test_base_images_are_pinned() -> None:
    images = [f.split()[0] for f in instructions("FROM")]
    assert images
    for image in images:
        assert ":" in image or "@sha256:" in image, f"{image} has no tag"
        tag = image.split("@")[0].split(":", 1)[1]
        assert tag != "latest"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin a full version, not a moving tag"


def test_installs_the_lock_by_hash() -> None:
    assert LOCK.exists()
    runs = " ".join(instructions("RUN"))
    assert "--require-hashes" in runs
    assert "-r requirements.lock" in runs
    assert "COPY deploy/requirements.lock" in DOCKERFILE


def test_every_runtime_dependency_is_pinned_with_a_hash() -> None:
    pins = locked()
    for spec in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version), f"{name}=={version} does not satisfy {requirement.specifier}"
    assert all(hashes for _, hashes in pins.values()), "--require-hashes needs a hash on every line"


def test_no_test_tools_in_the_lock() -> None:
    test_tools = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {canonicalize_name(Requirement(spec).name) for spec in test_tools}
    assert not names & set(locked()), "test tools do not belong in the runtime image"
