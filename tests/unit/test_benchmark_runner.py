"""``python -m tests.benchmarks``: one command that lists and runs every benchmark."""

from __future__ import annotations

import pytest

from tests.benchmarks.__main__ import main

#: The benchmarks docs/development.md documents, by the name ``--only`` takes.
DOCUMENTED = {"curate", "gap", "holdout", "operator", "placement", "plan_cli", "simulate", "stragglers"}


def test_list_names_each_benchmark_with_what_it_measures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split()[0] for line in lines} == DOCUMENTED
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines), "each with its docstring's first line"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--only", "nosuch"], "--only nosuch: no such benchmark; choose from curate, gap, holdout, operator"),
        (["--", "20"], "arguments after -- go to one benchmark: name it with a single --only"),
        (["--only", "operator", "--only", "placement", "--", "20"], "name it with a single --only"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert words in error
