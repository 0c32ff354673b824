"""The documentation points at things that exist: files, folders, headings; and the README keeps
its front page (the two commands on top, CI running the README's test command, at most ~200 lines).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [
    REPO / "README.md",
    REPO / "CHANGELOG.md",
    REPO / "CONTRIBUTING.md",
    *sorted((REPO / "docs").rglob("*.md")),
]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_PATH = re.compile(r"`((?:heteroscale|deploy|tests|crds|docs|\.ci)/[\w./-]*)`")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def code_blocks(page: Path) -> list[str]:
    return re.findall(r"```\w*\n(.*?)```", page.read_text(), flags=re.DOTALL)


def prose(page: Path) -> str:
    """The page without code blocks and inline code, where brackets are not links."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return re.sub(r"`[^`]*`", "", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_reach_a_file_and_a_heading(page: Path) -> None:
    for target in _LINK.findall(prose(page)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name} links {target}: no such file"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name} links {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_paths_named_in_the_docs_exist(page: Path) -> None:
    for path in _PATH.findall(page.read_text()):
        assert (REPO / path.rstrip(".")).exists(), f"{page.name} names {path}, which does not exist"


def test_readme_is_a_front_page_with_the_two_commands_on_top() -> None:
    readme = REPO / "README.md"
    assert len(readme.read_text().splitlines()) <= 200
    main_job, tests = code_blocks(readme)[:2]
    assert "pip install -q '.[sim]'" in main_job
    assert "heteroscale simulate" in main_job
    assert tests.strip() == "bash tests/run.sh"
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == tests.strip(), ".ci/run must run exactly the README's test command"


def test_every_page_of_docs_is_reachable_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for page in (REPO / "docs").rglob("*.md"):
        assert str(page.relative_to(REPO)) in readme, f"README does not link {page.relative_to(REPO)}"
