"""Invariants of the operator image that hold without a Docker engine (none runs in CI here).

The image must run as a numeric non-root user on a read-only root filesystem (as deploy/ runs it),
from a base pinned by digest, with exactly the operator's runtime dependencies installed by hash:
none of the offline tools' extras and no test tools.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK = REPO / "deploy" / "requirements.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DIGEST = re.compile(r"^[\w./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


def logical_lines() -> list[str]:
    """Instructions as Docker reads them: backslash continuations joined, comment lines dropped."""
    lines, current = [], ""
    for line in DOCKERFILE.splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            lines.append(" ".join(current.split()))
            current = ""
    return lines


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in logical_lines() if line.upper().startswith(keyword + " ")]


def base_images() -> list[str]:
    """The image of every FROM, with ARG defaults filled in."""
    args = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a)
    images = []
    for source in instructions("FROM"):
        image = source.split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image))
    return images


def pinned(image: str) -> bool:
    """Pinned by digest: a tag alone can be pushed again with other content."""
    return bool(DIGEST.match(image))


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


def lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_requirements", REPO / ".ci" / "lock_requirements.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def operator_container() -> dict[str, Any]:
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "operator.yaml").read_text().split("\n---\n")[0])
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return {"pod": pod, "container": container}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("python:3.11.9-slim-bookworm", False),
        ("python:latest", False),
        ("python", False),
        ("python:3.11.9-slim-bookworm@sha256:" + "a" * 64, True),
        ("docker.io/library/python@sha256:" + "0" * 64, True),
        ("python@sha256:abc", False),
    ],
)
def test_the_pin_check_tells_a_digest_from_a_tag(image: str, expected: bool) -> None:
    assert pinned(image) is expected


def test_base_images_are_pinned_by_digest() -> None:
    images = base_images()
    assert len(images) == 2  # build and runtime stages
    for image in images:
        assert pinned(image), f"{image}: pin the base image by digest (name:tag@sha256:...)"


def test_runs_as_a_numeric_non_root_user_as_the_deployment_does() -> None:
    users = instructions("USER")
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets runAsNonRoot verify it without /etc/passwd"
    assert int(uid) != 0
    pod = operator_container()["pod"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid)


def test_read_only_root_works_bytecode_is_built_in_and_nothing_is_written_there() -> None:
    container = operator_container()["container"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "compileall" in " ".join(instructions("RUN")), "compile bytecode at build: the root is read-only"


def test_deployment_runs_the_image_of_this_version() -> None:
    image = operator_container()["container"]["image"]
    assert image == f"ghcr.io/heteroscale/heteroscale:{PYPROJECT['project']['version']}"


def test_installs_the_lock_by_hash() -> None:
    assert LOCK.exists()
    runs = " ".join(instructions("RUN"))
    assert "--require-hashes" in runs
    assert "-r requirements.lock" in runs
    assert "COPY deploy/requirements.lock" in DOCKERFILE
    assert all(hashes for _, hashes in locked().values()), "--require-hashes needs a hash on every line"


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version), f"{name}=={version} does not satisfy {requirement.specifier}"


def test_the_lock_holds_exactly_the_runtime_closure() -> None:
    closure = set(lock_script().runtime_closure())
    assert set(locked()) == closure, "regenerate: python .ci/lock_requirements.py"


def test_no_extras_and_no_test_tools_in_the_image() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in ("sim", "stragglers", "test"):
        names = {canonicalize_name(Requirement(spec).name) for spec in extras[extra]}
        assert not names & set(locked()), f"the [{extra}] extra does not belong in the operator image"
