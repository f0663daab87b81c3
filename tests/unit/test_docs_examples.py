"""How the docs' code blocks become tests (tests/docs_blocks.py); the pages themselves run as
`docs/*.md` and `README.md` items of the suite. Each example here is evaluated with this test's own
`request`, as the docs' items are with theirs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sybil.example import SybilFailure

from tests.docs_blocks import DOCS, NOT_RUN, command_output, not_run_blocks, unmatched_lines

ROOT = Path(__file__).parents[2]


def _evaluate(page: Path, request: pytest.FixtureRequest) -> list[str]:
    """Runs every example of the page; the names of those that passed, or the first error raised."""
    passed = []
    for example in DOCS.parse(page):
        example.namespace["request"] = request
        example.evaluate()
        passed.append(DOCS.identify(example))
    return passed


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text)
    return page


def test_a_block_sees_only_what_it_imports_not_the_blocks_before_it(tmp_path, request) -> None:
    page = _page(tmp_path, "```python\nimport json\n```\n\n```python\njson.dumps({})\n```\n")

    with pytest.raises(NameError, match="'json' is not defined"):
        _evaluate(page, request)


def test_a_name_a_block_reads_and_never_binds_is_a_fixture(tmp_path, request) -> None:
    page = _page(tmp_path, '```python\n(tmp_path / "seen").write_text("yes")\n```\n')

    assert _evaluate(page, request) == ["test_line_1"]
    assert (tmp_path / "seen").read_text() == "yes"


def test_each_test_of_a_block_is_an_example_with_its_fixtures_and_the_blocks_own(tmp_path, request) -> None:
    page = _page(
        tmp_path,
        """```python
import pytest


@pytest.fixture
def greeting(tmp_path):
    yield f"hello from {tmp_path.name}"


def test_one(greeting, tmp_path):
    assert greeting == f"hello from {tmp_path.name}"


@pytest.mark.prefect(fast_retries=False)
def test_two():
    pass
```
""",
    )

    assert _evaluate(page, request) == ["test_one", "test_two"]
    [_, second] = DOCS.parse(page)
    assert [mark.kwargs for mark in second.parsed.marks()] == [{"fast_retries": False}]


def test_a_module_block_is_importable_by_the_blocks_after_it(tmp_path, request) -> None:
    page = _page(
        tmp_path,
        "```python\n# docs_demo/answers.py\nANSWER = 42\n```\n\n"
        "```python\nfrom docs_demo.answers import ANSWER\n\nassert ANSWER == 42\n```\n",
    )

    assert _evaluate(page, request) == ["test_line_6"]


def test_a_not_run_block_is_neither_run_nor_collected(tmp_path, request) -> None:
    page = _page(tmp_path, f"{NOT_RUN}\n```python\nfragment(\n```\n\n```python\nassert True\n```\n")

    assert _evaluate(page, request) == ["test_line_6"]
    assert not_run_blocks(page) == ["fragment(\n"]


def test_the_readme_tour_fails_without_one_of_its_imports(tmp_path, request) -> None:
    readme = (ROOT / "README.md").read_text()
    tour_import = "from pytest_prefect_flows import assert_completed, "
    assert tour_import in readme
    page = _page(tmp_path, readme.replace(tour_import, "from pytest_prefect_flows import "))

    with pytest.raises(NameError, match="'assert_completed' is not defined"):
        _evaluate(page, request)


def test_a_shown_output_is_compared_with_a_real_run_of_its_command(tmp_path, request) -> None:
    command = "<!-- output: python -c \"print('one'); print('two')\" -->\n"
    true_page = _page(tmp_path, f"{command}```text\none\n...\ntwo\n```\n")

    assert _evaluate(true_page, request) == ["test_output_line_1"]

    (tmp_path / "page.md").write_text(f"{command}```text\none\nthree\n```\n")
    with pytest.raises(SybilFailure, match="first line not found in order:\n  three"):
        _evaluate(tmp_path / "page.md", request)


def test_a_figure_that_varies_between_runs_can_be_left_out(tmp_path, request) -> None:
    command = "<!-- output: python -c \"import os; print(os.getpid(), 'runs')\" | varies: \\d+ runs -->\n"
    page = _page(tmp_path, f"{command}```text\n12 runs\n```\n")

    assert _evaluate(page, request) == ["test_output_line_1"]


def test_shown_output_lines_are_found_in_order_with_ellipses() -> None:
    output = ["header", "a", "b", "noise", "c"]

    assert unmatched_lines(["a", "...", "c"], output) is None
    assert unmatched_lines(["b", "a"], output) == "a"
    assert unmatched_lines(["d"], output) == "d"


def test_fragments_that_do_not_run_stay_rare() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    fragments = [block for page in pages for block in not_run_blocks(page)]
    python_blocks = sum(len(re.findall(r"^ *```python$", page.read_text(), re.M)) for page in pages)

    assert python_blocks > 40
    assert len(fragments) <= 3, f"more than 3 blocks marked {NOT_RUN}: make them run instead"


def test_a_text_block_without_a_marker_fails(tmp_path, request) -> None:
    page = _page(tmp_path, "Run it:\n\n```text\n1 passed in 0.1s\n```\n")

    with pytest.raises(SybilFailure, match="a shown output must be marked output: or measured:"):
        _evaluate(page, request)


def test_a_fence_that_names_no_language_fails(tmp_path, request) -> None:
    page = _page(tmp_path, "```toml\n[tool.pytest.ini_options]\n```\n\n```\n1 passed\n```\n")

    with pytest.raises(SybilFailure, match="a code fence names its language"):
        _evaluate(page, request)


def test_a_measured_block_names_a_benchmark_and_options_it_takes(tmp_path, request) -> None:
    shown = "```text\nsoak: 1000 flow runs in 128.5 s\n```\n"
    page = _page(tmp_path, f"<!-- measured: benchmarks/soak.py --runs 1000 -->\n{shown}")

    assert _evaluate(page, request) == ["test_output_line_1"]

    page.write_text(f"<!-- measured: benchmarks/soak.py --rounds 3 -->\n{shown}")
    with pytest.raises(SybilFailure, match=r"benchmarks/soak.py has no option --rounds \(it takes: "):
        _evaluate(page, request)

    page.write_text(f"<!-- measured: benchmarks/no_such_script.py -->\n{shown}")
    with pytest.raises(SybilFailure, match=r"no_such_script\.py is not a script under benchmarks/"):
        _evaluate(page, request)


def test_a_stored_block_is_found_in_its_file_with_the_files_indentation(tmp_path, request) -> None:
    (tmp_path / "stored.ambr").write_text("# name: test_run\n  '''\n  flow etl\n    task load\n  '''\n")
    stored = f"<!-- stored: {tmp_path / 'stored.ambr'} -->\n"
    page = _page(tmp_path, f"{stored}```text\nflow etl\n  task load\n```\n")

    assert _evaluate(page, request) == ["test_output_line_1"]

    page.write_text(f"{stored}```text\nflow etl\n  task extract\n```\n")
    with pytest.raises(SybilFailure, match="no longer holds what the page shows.*\n  " + r"  task extract"):
        _evaluate(page, request)


def test_a_shown_output_runs_in_its_folder_and_checks_the_exit_status(tmp_path, request) -> None:
    command = f'<!-- output: python -c "import os, sys; print(os.getcwd()); sys.exit(3)" | cwd: {tmp_path}'
    page = _page(tmp_path, f"{command} | status: 3 -->\n```text\n{tmp_path}\n```\n")

    assert _evaluate(page, request) == ["test_output_line_1"]

    page.write_text(f"{command} -->\n```text\n{tmp_path}\n```\n")
    with pytest.raises(SybilFailure, match="exited with status 3, the page says 0"):
        _evaluate(page, request)


def test_a_shown_line_that_ends_in_an_ellipsis_matches_the_start_of_a_line() -> None:
    output = ["FAILED test_a.py::test_a - AssertionError: the flow run 'x' failed"]

    assert unmatched_lines(["FAILED test_a.py::test_a - AssertionError: ..."], output) is None
    assert unmatched_lines(["FAILED test_a.py::test_b - ..."], output) == "FAILED test_a.py::test_b - ..."


def test_xdist_workers_share_one_run_of_a_command(tmp_path) -> None:
    run_once = command_output.__wrapped__  # what each worker process would call: no cache of its own
    command = 'python -c "import uuid; print(uuid.uuid4())"'

    first, second = run_once(command, ".", tmp_path), run_once(command, ".", tmp_path)

    assert first == second
    assert first[0] == 0


def test_a_shown_output_is_run_as_a_reader_runs_it_not_as_the_ci_service_does(
    tmp_path, request, monkeypatch
) -> None:
    # pytest stops shortening its summary lines when CI is set, and COLUMNS changes every layout:
    # a page's output must hold on a reader's 80-column terminal whatever the machine checking it sets.
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-q")
    show = "import os; print(os.environ.get('CI'), os.environ['COLUMNS'], os.environ.get('PYTEST_ADDOPTS'))"
    page = _page(tmp_path, f'<!-- output: python -c "{show}" -->\n```text\nNone 80 None\n```\n')

    assert _evaluate(page, request) == ["test_output_line_1"]
