"""The Python blocks of README.md and docs/*.md, collected and run as tests of the normal suite.

The repository's `conftest.py` hands every Markdown file pytest is asked to collect (`testpaths`
lists `docs` and `README.md`) to `collect_markdown`. A page becomes one test module, built from its
```python blocks in order, after `from tests.docs_prelude import *` (the names the docs take from
the reference suite in `example_flows/`):

- a block whose first line is `# some/package/module.py` (not a `test_*.py` or `conftest.py`) becomes
  that module,
  importable by the blocks after it;
- a block that defines tests or fixtures, or holds only imports and definitions, runs at module
  level, as it would in a test file;
- any other block is the body of a test named after its line (`test_line_42`), so that nothing
  runs at collection; the names it uses that nothing defines are its fixtures (`run_flow`,
  `fail_task`, `data_dir`, ...).

A block right after a `<!-- not-run -->` line is a fragment for reading only (kept rare), or a
script that starts its own backend, run in a process of its own by tests/integration/test_docs_scripts.py.
Tracebacks point at the Markdown lines. The snapshot examples' baselines are syrupy's, in
`docs/__snapshots__/` (`pytest docs/snapshots.md --snapshot-update` after changing them).
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.assertion.rewrite import rewrite_asserts
from _pytest.fixtures import getfixturemarker  # a fixture imported from the prelude is a fixture

NOT_RUN = "<!-- not-run -->"
_FENCE = re.compile(
    r"^(?P<marker> *<!-- not-run -->\n)?(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```$", re.S | re.M
)
_MODULE_FILE = re.compile(r"#\s*(?P<path>[\w/]+)\.py\s*$")


@dataclass
class Block:
    line: int  # first line of the code in the Markdown file
    code: str
    run: bool


def python_blocks(text: str) -> list[Block]:
    """Every ```python block of a Markdown text, with the line its code starts on."""
    return [
        Block(
            text.count("\n", 0, match.start("code")) + 1,
            textwrap.dedent(match.group("code")),
            not match.group("marker"),
        )
        for match in _FENCE.finditer(text)
    ]


def collect_markdown(file_path: Path, parent: pytest.Collector) -> MarkdownPage | None:
    if file_path.suffix != ".md" or not any(block.run for block in python_blocks(file_path.read_text())):
        return None
    page: MarkdownPage = MarkdownPage.from_parent(parent, path=file_path)
    return page


class MarkdownPage(pytest.Module):
    """A docs page's Python blocks as one test module."""

    def _getobj(self) -> types.ModuleType:
        module = types.ModuleType(f"docs_page_{self.path.stem.replace('-', '_')}")
        module.__file__ = str(self.path)
        sys.modules[module.__name__] = module  # Prefect resolves a flow's annotations through it
        exec("from tests.docs_prelude import *", module.__dict__)
        for block in python_blocks(self.path.read_text()):
            if block.run:
                _run_block(block, module, self.path)
        return module


def _run_block(block: Block, module: types.ModuleType, path: Path) -> None:
    tree = ast.parse(block.code)
    first_line = block.code.partition("\n")[0]
    module_file = _MODULE_FILE.fullmatch(first_line)
    if module_file and not _is_test_file(Path(module_file["path"]).name):
        _define_module(module_file["path"].replace("/", "."), tree, path, block.line)
        return
    defined = {name for name, value in vars(module).items() if getfixturemarker(value) is None}
    fixtures = sorted(_free_names(tree) - defined - set(dir(builtins)))
    if not _defines_tests(tree) and not _only_definitions(tree):
        body = textwrap.indent(block.code, "    ") or "    pass\n"
        tree = ast.parse(f"def test_line_{block.line}({', '.join(fixtures)}):\n{body}")
        ast.increment_lineno(tree, block.line - 2)
    else:
        _refuse_redefined_tests(tree, module, path, block.line)
        ast.increment_lineno(tree, block.line - 1)
    _compile_and_run(tree, module, path)


def _compile_and_run(tree: ast.Module, module: types.ModuleType, path: Path) -> None:
    """With pytest's assertion rewriting, so a failing `assert` in the docs shows its values."""
    rewrite_asserts(tree, ast.unparse(tree).encode(), str(path))
    exec(compile(tree, str(path), "exec", dont_inherit=True), module.__dict__)  # no postponed annotations


def _is_test_file(name: str) -> bool:
    return name.startswith("test_") or name == "conftest"


def _define_module(name: str, tree: ast.Module, path: Path, line: int) -> None:
    """`# my_flows/orders.py` blocks: importable as `my_flows.orders` by the blocks after them."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        sys.modules.setdefault(package, types.ModuleType(package)).__path__ = []
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    ast.increment_lineno(tree, line - 1)
    _compile_and_run(tree, module, path)
    if len(parts) > 1:
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)


def _defines_tests(tree: ast.Module) -> bool:
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.name.startswith("test_") or any(_is_fixture(d) for d in node.decorator_list))
        for node in tree.body
    )


def _refuse_redefined_tests(tree: ast.Module, module: types.ModuleType, path: Path, line: int) -> None:
    for node in tree.body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
            and node.name in vars(module)
        ):
            raise pytest.UsageError(
                f"{path}:{line + node.lineno - 1}: {node.name} is defined twice on this page, so only "
                "the last would run; give each example test its own name."
            )


def _only_definitions(tree: ast.Module) -> bool:
    definitions = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return all(isinstance(node, definitions) for node in tree.body)


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "fixture"


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
