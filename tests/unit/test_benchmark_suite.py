"""`benchmarks/suite.py`: its commands and how it reads pytest's summary (no benchmark runs here)."""

from __future__ import annotations

import pytest

from benchmarks import suite


def test_dry_run_lists_the_same_suite_for_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    suite.main(["--dry-run"])

    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert list(lines) == [suite.NATIVE, suite.COLD, suite.WARM, suite.PARALLEL]
    for command in lines.values():
        assert "-m pytest example_flows/tests -p no:cacheprovider -q" in command
        assert "PREFECT_HOME=<new empty directory>" in command
    assert lines[suite.NATIVE].endswith("-p benchmarks._native_server")
    assert "PYTEST_PREFECT_FLOWS_CACHE=<new empty directory, must stay empty>" in lines[suite.NATIVE]
    assert "PYTEST_PREFECT_FLOWS_CACHE=<new empty directory>" in lines[suite.COLD]
    assert "PYTEST_PREFECT_FLOWS_CACHE=<built by the first cold case>" in lines[suite.WARM]
    assert lines[suite.PARALLEL].endswith("-q -n 2")


def test_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        suite.main(["--repeat", "0"])

    assert exited.value.code == 2
    assert "--repeat takes a number of runs, 1 or more; got 0" in capsys.readouterr().err


def test_reads_the_last_summary_line_only() -> None:
    output = (
        "example_flows: tasks run 19/19 (100.0%), flows run 14/14; 109 flow runs, 242 task runs in 62 tests\n"
        "7 snapshots passed.\n"
        "FAILED example_flows/tests/test_inventory.py::test_full_shelves_announce_nothing\n"
        "1 failed, 72 passed, 1 skipped, 2 warnings in 92.45s (0:01:32)\n"
    )

    assert suite.parse_summary(output) == ({"failed": 1, "passed": 72, "skipped": 1, "warning": 2}, 92.45)
    assert suite.failed_tests(output) == [
        "example_flows/tests/test_inventory.py::test_full_shelves_announce_nothing"
    ]
    with pytest.raises(ValueError, match="no pytest summary line"):
        suite.parse_summary("ERROR: usage: pytest [options]\n")
