"""The code blocks of README.md and docs/*.md as tests of the suite, collected by Sybil.

The repository's `conftest.py` hands README.md and every page under `docs/` to `DOCS`. Each
```python block runs in a namespace of its own that holds only what the block imports or defines,
and the fixtures it names (the plugin's, or a conftest fixture such as `data_dir`); nothing is
imported for it, so a block that lost an import fails. The three kinds of block:

- `# some/package/module.py` on the first line (not a `test_*.py` or `conftest.py`): the block is
  that module, defined at collection so that the blocks after it on the same page can import it;
- a block that defines `test_*` functions is a test module: one test per function, whose parameters
  are its fixtures (one the block defines, or any conftest fixture) and whose marks apply;
- any other block is the body of one test; the names it reads and never binds are its fixtures.

`<!-- not-run -->` right above a block leaves it out: a fragment for reading only (kept rare), or a
script that starts its own backend, run in a process of its own by tests/integration/test_docs_scripts.py.

A ```text block is what a program prints, and the line above it says which (an unmarked one, or a
fence without a language, fails):
- `<!-- output: COMMAND -->`: its lines (`...` skips any number of them; a line ending in ` ...`
  matches the start of one) are checked, in order, against a real run of COMMAND from the repository
  root. Options, after ` | `: `cwd: DIR` runs it from DIR (one of the projects in tests/docs_outputs/,
  say), `status: N` is its exit status (default 0), `varies: REGEX` leaves out of the comparison what
  REGEX matches, in the page and in the output: a figure that honestly differs from run to run.
  Each distinct command runs once per process.
- `<!-- measured: benchmarks/NAME.py ARGS -->`: a benchmark's figures; the script must exist and
  declare the options given.
- `<!-- stored: PATH -->`: what a run stored in PATH (a snapshot the suite's own tests compare with
  a real run); its lines are found in order in the file.
The snapshot examples' baselines are syrupy's, in `docs/__snapshots__/` (`pytest docs/snapshots.md
--snapshot-update` after changing them).
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from _pytest.assertion.rewrite import rewrite_asserts
from _pytest.fixtures import getfixturemarker
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).parents[1]
NOT_RUN = "<!-- not-run -->"
_MODULE_FILE = re.compile(r"#\s*(?P<path>[\w/]+)\.py\s*$")
_FENCES = FencedCodeBlockLexer(language=r"\w+", mapping={"language": "language", "source": "source"})


@dataclass
class BlockTest:
    """One test of a block that defines tests: the block's module and the test's name."""

    module: types.ModuleType
    name: str

    @property
    def function(self) -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(self.module, self.name)
        return function

    def marks(self) -> list[pytest.Mark]:
        return list(getattr(self.function, "pytestmark", []))


@dataclass
class BlockBody:
    """A block that is the body of one test."""

    code: ast.Module
    name: str


def parse_python_blocks(document: Document) -> Iterator[Region]:
    for region in _FENCES(document):
        if region.lexemes["language"] != "python":
            continue
        source = region.lexemes["source"]
        line = document.text.count("\n", 0, region.start) + 2  # the block's first line of code
        if _is_skipped(document, region):
            continue
        module_file = _MODULE_FILE.fullmatch(source.partition("\n")[0])
        if module_file and not _is_test_file(Path(module_file["path"]).name):
            _define_module(module_file["path"].replace("/", "."), source, document.path, line)
            continue
        tree = _parse(source, document.path, line)
        tests = [node for node in tree.body if _is_test(node)]
        if not tests:
            yield Region(
                region.start, region.end, BlockBody(tree, _module_name(document.path, line)), run_body
            )
            continue
        module = _new_module(_module_name(document.path, line), document.path)
        _compile_and_run(tree, module, document.path)
        _refuse_redefined_tests(document, tests, line)
        for node in tests:
            start, end = _node_span(document, region, source, node)
            yield Region(start, end, BlockTest(module, node.name), run_test)


def not_run_blocks(path: Path) -> list[str]:
    """The code of the page's ```python blocks marked `<!-- not-run -->`."""
    document = Document(path.read_text(), str(path))
    return [
        region.lexemes["source"]
        for region in _FENCES(document)
        if region.lexemes["language"] == "python" and _is_skipped(document, region)
    ]


def _refuse_redefined_tests(document: Document, tests: list[ast.stmt], line: int) -> None:
    """A page's tests are named after their functions (syrupy keys the snapshots by that name)."""
    seen: set[str] = document.namespace.setdefault("test names", set())
    for node in tests:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if node.name in seen:
            raise ValueError(
                f"{document.path}:{node.lineno}: {node.name} is defined twice on this page; give each "
                "example test its own name."
            )
        seen.add(node.name)


def _is_skipped(document: Document, region: Region) -> bool:
    """Not Sybil's `skip: next`: that one holds state between items, which xdist runs apart."""
    return document.text[: region.start].rstrip(" ").endswith(NOT_RUN + "\n")


def run_body(example: Example) -> None:
    body: BlockBody = example.parsed
    request: pytest.FixtureRequest = example.namespace["request"]
    module = _new_module(body.name, example.path)
    free = _free_names(body.code) - set(dir(builtins))
    for name in sorted(free):
        value = _fixture_value(request, name)
        if value is not _MISSING:
            setattr(module, name, value)
    _compile_and_run(body.code, module, example.path)


def run_test(example: Example) -> None:
    test: BlockTest = example.parsed
    request: pytest.FixtureRequest = example.namespace["request"]
    function = test.function
    arguments = _arguments(function, test.module, request)
    if inspect.iscoroutinefunction(function):
        anyio.run(functools.partial(function, **arguments))
    else:
        function(**arguments)


def _arguments(
    function: Callable[..., Any], module: types.ModuleType, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """A test's or a block fixture's parameters: the block's own fixtures first, then conftest's."""
    arguments = {}
    for name in inspect.signature(function).parameters:
        own = getattr(module, name, None)
        if own is not None and getfixturemarker(own) is not None:
            arguments[name] = _own_fixture(own, module, request)
        else:
            arguments[name] = request.getfixturevalue(name)
    return arguments


def _own_fixture(fixture: Any, module: types.ModuleType, request: pytest.FixtureRequest) -> Any:
    function = (
        fixture.__pytest_wrapped__.obj
        if hasattr(fixture, "__pytest_wrapped__")
        else fixture._get_wrapped_function()
    )
    value = function(**_arguments(function, module, request))
    if inspect.isgenerator(value):
        generator = value
        value = next(generator)
        request.addfinalizer(lambda: next(generator, None))
    return value


_MISSING = object()


def _fixture_value(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return _MISSING  # not a fixture: the block's own NameError says which import is missing


def _parse(source: str, path: str, line: int) -> ast.Module:
    tree = ast.parse(source, filename=path)
    ast.increment_lineno(tree, line - 1)
    return tree


def _module_name(path: str, line: int) -> str:
    return f"docs_{Path(path).stem.replace('-', '_')}_line_{line}"


def _new_module(name: str, path: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # Prefect resolves a flow's annotations through its module
    return module


def _compile_and_run(tree: ast.Module, module: types.ModuleType, path: str) -> None:
    """With pytest's assertion rewriting, so a failing `assert` in the docs shows its values."""
    rewrite_asserts(tree, ast.unparse(tree).encode(), path)
    exec(compile(tree, path, "exec", dont_inherit=True), module.__dict__)  # no postponed annotations


def _is_test_file(name: str) -> bool:
    return name.startswith("test_") or name == "conftest"


def _is_test(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")


def _define_module(name: str, source: str, path: str, line: int) -> None:
    """`# my_flows/orders.py` blocks: importable as `my_flows.orders` by the blocks after them."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        sys.modules.setdefault(package, types.ModuleType(package)).__path__ = []
    module = _new_module(name, path)
    _compile_and_run(_parse(source, path, line), module, path)
    if len(parts) > 1:
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)


def _node_span(document: Document, region: Region, source: str, node: ast.stmt) -> tuple[int, int]:
    """Where a test function of a block starts and ends in the page (Sybil wants disjoint regions)."""
    offsets = [0, *(match.end() for match in re.finditer("\n", source))]
    code_start = region.start + source.offset
    block_line = document.text.count("\n", 0, code_start) + 1
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    last = node.end_lineno or node.lineno
    return code_start + offsets[first - block_line], code_start + offsets[
        min(last - block_line + 1, len(offsets) - 1)
    ]


def _free_names(tree: ast.Module) -> set[str]:
    """Names the block reads but never binds (roughly: what must come from outside)."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
    return loaded - bound


# Shown outputs ----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent> *)```(?P<language>\S*)")
_MARKER = re.compile(r"^ *<!-- (?P<kind>output|measured|stored): (?P<spec>.+?) -->$")
_OPTION = re.compile(r" \| (?=(?:varies|cwd|status): )")


@dataclass
class ShownOutput:
    """A ```text block marked `<!-- output: COMMAND | varies: REGEX | cwd: DIR | status: N -->`."""

    command: str
    lines: list[str]
    varies: re.Pattern[str] | None = None
    cwd: str = "."
    status: int = 0

    def masked(self, lines: list[str]) -> list[str]:
        return [self.varies.sub("<varies>", line) if self.varies else line for line in lines]


@dataclass
class MeasuredOutput:
    """A ```text block marked `<!-- measured: benchmarks/NAME.py ARGS -->`: figures of a benchmark, too
    slow and too variable to run in the suite; the script and its options are checked instead."""

    command: str


@dataclass
class StoredOutput:
    """A ```text block marked `<!-- stored: PATH -->`: what a run wrote to PATH, a file the suite's own
    tests compare with a real run (syrupy's snapshots), its lines found in order there."""

    path: str
    lines: list[str]


@dataclass
class UnmarkedBlock:
    """A ```text block (or a fence that names no language) with neither marker above it."""

    language: str


def parse_shown_outputs(document: Document) -> Iterator[Region]:
    """Every ```text block is a shown output: compared with a real run (`output:`), named as a
    benchmark's figures (`measured:`), or a failure (unmarked)."""
    lines = document.text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    opening: tuple[int, str, str] | None = None  # line number, indent, language
    for number, line in enumerate(lines):
        fence = _FENCE.match(line)
        if fence is None:
            continue
        if opening is None:
            opening = (number, fence["indent"], fence["language"])
            continue
        if fence["language"]:
            continue
        first, indent, language = opening
        opening = None
        if language not in ("", "text"):
            continue
        marker = _MARKER.match(lines[first - 1].rstrip("\n")) if first else None
        body = [text.rstrip("\n").removeprefix(indent) for text in lines[first + 1 : number]]
        start, end = offsets[first - 1 if marker else first], offsets[number + 1]
        if marker is None or language != "text":
            yield Region(start, end, UnmarkedBlock(language), check_unmarked)
        elif marker["kind"] == "measured":
            yield Region(start, end, MeasuredOutput(marker["spec"]), check_measured)
        elif marker["kind"] == "stored":
            yield Region(start, end, StoredOutput(marker["spec"], body), check_stored)
        else:
            yield Region(start, end, _shown_output(marker["spec"], body), check_output)


def _shown_output(spec: str, lines: list[str]) -> ShownOutput:
    command, *options = _OPTION.split(spec)
    shown = ShownOutput(command, lines)
    for option in options:
        key, _, value = option.partition(": ")
        if key == "varies":
            shown.varies = re.compile(value)
        elif key == "cwd":
            shown.cwd = value
        else:
            shown.status = int(value)
    return shown


@functools.cache
def command_output(command: str, cwd: str = ".", shared: Path | None = None) -> tuple[int, str]:
    """Runs a docs command (`pytest ...`, `python ...`) from the repository's root, or from `cwd`
    under it, once per process: its exit status and output. With a `shared` folder (xdist workers
    pass their session's), the first process to need it runs it and the others read its result."""
    if shared is None:
        return _run_command(command, cwd)
    shared.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{cwd}\0{command}".encode()).hexdigest()[:16]
    result, claim = shared / f"{key}.json", shared / f"{key}.running"
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another worker runs it
        deadline = time.monotonic() + 600
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if result.exists():
            status, output = json.loads(result.read_text())
            return status, output
        return _run_command(command, cwd)  # that worker died before it finished
    status, output = _run_command(command, cwd)
    partial = result.with_suffix(".partial")
    partial.write_text(json.dumps([status, output]))
    partial.replace(result)
    return status, output


def _run_command(command: str, cwd: str) -> tuple[int, str]:
    argv = shlex.split(command)
    if argv[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    result = subprocess.run(
        argv, cwd=ROOT / cwd, env=_reader_environment(), capture_output=True, text=True, check=False
    )
    return result.returncode, result.stdout + result.stderr


# What changes the text pytest prints without being on the page's command line: CI services set
# CI (pytest stops shortening the summary lines), COLUMNS and colour variables change the layout,
# PYTEST_ADDOPTS adds options, and the xdist worker's own variables would leak into the child.
_NOT_THE_READERS = ("CI", "BUILD_NUMBER", "PYTEST_ADDOPTS", "PY_COLORS", "FORCE_COLOR", "NO_COLOR")


def _reader_environment() -> dict[str, str]:
    """The environment of a reader running the page's command in an 80-column terminal."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _NOT_THE_READERS and not name.startswith("PYTEST_XDIST_")
    }
    env["COLUMNS"] = "80"
    return env


def check_output(example: Example) -> str | None:
    if importlib.util.find_spec("prefect_dask") is None:  # the version matrix installs `.[dev]` only
        pytest.skip(
            "the docs show the reference suite's output with every extra: pip install -e '.[dev,dask]'"
        )
    shown: ShownOutput = example.parsed
    shared = None
    if "PYTEST_XDIST_WORKER" in os.environ:  # several pages show the same run: once per session
        request: pytest.FixtureRequest = example.namespace["request"]
        shared = request.getfixturevalue("tmp_path_factory").getbasetemp().parent / "docs-outputs"
    status, text = command_output(shown.command, shown.cwd, shared)
    output = text.splitlines()
    where = f"`{shown.command}`" + (f" in {shown.cwd}" if shown.cwd != "." else "")
    if status != shown.status:
        return f"{where} exited with status {status}, the page says {shown.status}; its output was:\n" + (
            "\n".join(output[-40:])
        )
    missing = unmatched_lines(shown.masked(shown.lines), shown.masked([line.rstrip() for line in output]))
    if not missing:
        return None
    return (
        f"{where} no longer prints what the page shows; first line not found in order:\n"
        f"  {missing}\nits output was:\n" + "\n".join(output[-40:])
    )


def unmatched_lines(shown: list[str], output: list[str]) -> str | None:
    """The first shown line not found in the output after the previous one (`...` skips lines; a line
    that ends in ` ...` matches an output line that starts with the text before it)."""
    position = 0
    for line in shown:
        if line.strip() == "...":
            continue
        for index in range(position, len(output)):
            if _matches(line.rstrip(), output[index]):
                position = index + 1
                break
        else:
            return line
    return None


def _matches(shown: str, output: str) -> bool:
    if shown.endswith(" ..."):
        return output.startswith(shown.removesuffix("..."))
    return output == shown


def check_stored(example: Example) -> str | None:
    stored: StoredOutput = example.parsed
    path = ROOT / stored.path
    if not path.is_file():
        return f"stored: {stored.path} is not a file of the repository; name the file the block shows."
    lines = path.read_text().splitlines()
    # the file may indent what it stores (syrupy's .ambr: two spaces): as much as its first shown line
    first = next((line for line in lines if line.strip() == stored.lines[0].strip()), "")
    indent = " " * (len(first) - len(first.lstrip()))
    missing = unmatched_lines(stored.lines, [line.removeprefix(indent).rstrip() for line in lines])
    if not missing:
        return None
    return f"{stored.path} no longer holds what the page shows; first line not found in order:\n  {missing}"


def check_measured(example: Example) -> str | None:
    measured: MeasuredOutput = example.parsed
    script, *arguments = shlex.split(measured.command)
    path = ROOT / script
    if not script.startswith("benchmarks/") or not path.is_file():
        return f"measured: {script} is not a script under benchmarks/; name the one that printed the figures."
    accepted = benchmark_options(path)
    unknown = [arg.partition("=")[0] for arg in arguments if arg.startswith("-")]
    unknown = [option for option in unknown if option not in accepted]
    if unknown:
        return (
            f"measured: {script} has no option {', '.join(unknown)} (it takes: "
            f"{', '.join(sorted(accepted)) or 'none'}); give the command that printed these figures."
        )
    return None


@functools.cache
def benchmark_options(path: Path) -> set[str]:
    """The options a benchmark script's argparse parser declares (read from its code: importing it
    would import Prefect, seconds per script)."""
    options = {"-h", "--help"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-")
            )
    return options


def check_unmarked(example: Example) -> str:
    block: UnmarkedBlock = example.parsed
    if block.language == "":
        return (
            "a code fence names its language: ```text for what a program prints, else its format (```toml)."
        )
    return (
        "a shown output must be marked output: or measured: (a ```text block is what a program prints): "
        "put `<!-- output: COMMAND -->` right above it, checked against a real run; or "
        "`<!-- measured: benchmarks/NAME.py ARGS -->` for a benchmark's figures; or "
        "`<!-- stored: PATH -->` for what a run stored in a file the suite checks. Text that is not a "
        "program's output takes the fence of its format (```toml, ```yaml, ...)."
    )


class DocsSybil(Sybil):
    def identify(self, example: Example) -> str:
        """A test is named after its function; a block that is a test's body, or a shown output, after
        its line."""
        if isinstance(example.parsed, BlockTest):
            return example.parsed.name
        if isinstance(example.parsed, (ShownOutput, MeasuredOutput, StoredOutput, UnmarkedBlock)):
            return f"test_output_line_{example.line}"
        return f"test_line_{example.line}"


DOCS = DocsSybil(
    parsers=[parse_python_blocks, parse_shown_outputs],
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    path=str(ROOT),
    fixtures=["request"],
)
