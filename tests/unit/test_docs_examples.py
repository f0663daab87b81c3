"""How the docs' Python blocks become tests (tests/docs_examples.py); the pages themselves run as
`docs/*.md` and `README.md` items of the suite."""

from __future__ import annotations

from pathlib import Path

from tests.docs_examples import NOT_RUN, python_blocks

ROOT = Path(__file__).parents[2]

PAGE = """# A page

```python
run = run_flow(etl)
```

<!-- not-run -->
```python
fragment(
```

1. A step:

    ```python
    def test_indented(run_flow):
        pass
    ```
"""


def test_blocks_keep_their_markdown_line_and_the_not_run_marker() -> None:
    blocks = python_blocks(PAGE)

    assert [(block.line, block.run) for block in blocks] == [(4, True), (9, False), (15, True)]
    assert blocks[0].code == "run = run_flow(etl)\n"
    assert blocks[2].code == "def test_indented(run_flow):\n    pass\n"


def test_fragments_that_do_not_run_stay_rare() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = [block for page in pages for block in python_blocks(page.read_text())]
    fragments = [block for block in blocks if not block.run]

    assert len(blocks) > 40
    assert len(fragments) <= 3, f"more than 3 blocks marked {NOT_RUN}: make them run instead"
