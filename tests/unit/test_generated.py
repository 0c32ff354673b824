"""Every generated file is what the code generates now (the one drift test), and
``heteroscale generate`` writes and checks them.

If this fails: run ``heteroscale generate`` and commit the result. That is also how to resolve a
merge conflict in any generated file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from heteroscale.api.enums import Reason
from heteroscale.cli import main
from heteroscale.generated import generated_files
from heteroscale.reference import reasons

REPO = Path(__file__).resolve().parents[2]
FILES = generated_files()


@pytest.mark.parametrize("path", FILES)
def test_checked_in_file_is_generated_from_the_code(path: str) -> None:
    checked_in = (REPO / path).read_text(encoding="utf-8")
    assert checked_in == FILES[path], f"{path} is stale: run `heteroscale generate` and commit the result"


def test_every_generated_page_is_linked_from_the_docs() -> None:
    docs = "\n".join(p.read_text() for p in (REPO / "docs").glob("*.md")) + (REPO / "README.md").read_text()
    for path in FILES:
        if path.startswith("docs/reference/"):
            assert f"reference/{Path(path).name}" in docs, f"no page links {path}"


def test_generate_writes_what_is_missing_or_stale_and_check_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    (root / "heteroscale").mkdir(parents=True)
    shutil.copy(REPO / "heteroscale" / "generated.py", root / "heteroscale" / "generated.py")
    stale = root / "docs" / "reference" / "cli.md"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    assert main(["generate", "--root", str(root), "--check"]) == 1
    assert "differs: docs/reference/cli.md" in capsys.readouterr().out
    assert stale.read_text() == "old\n"  # --check writes nothing
    assert main(["generate", "--root", str(root)]) == 0
    assert {p: (root / p).read_text() for p in FILES} == FILES
    assert main(["generate", "--root", str(root), "--check"]) == 0


def test_generate_refuses_a_folder_that_is_not_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--root", str(tmp_path)]) == 2
    assert "is not the heteroscale repository root" in capsys.readouterr().err


def test_a_reason_code_without_a_meaning_stops_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(reasons.MEANINGS, Reason.STEP_LIMITED)
    with pytest.raises(ValueError, match=r"reason codes without a meaning in .*: StepLimited"):
        reasons.page()
