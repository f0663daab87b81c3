"""Sample inputs shared by the reference tests: source files for the ETL flow and its database path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SOURCES = {
    "shop": [
        {"id": 1, "customer": "Ada", "amount": "19.90"},
        {"id": 2, "customer": "Grace", "amount": 5},
        {"id": 3, "customer": "", "amount": 12},  # bad: empty customer
    ],
    "marketplace": [
        {"id": 1, "customer": "Linus", "amount": 42.5},
        {"id": 2, "customer": "Barbara", "amount": "n/a"},  # bad: amount is not a number
    ],
    "partners": [
        {"id": 7, "customer": "Edsger", "amount": 3.333},
        {"customer": "Alan", "amount": 1},  # bad: no id
    ],
}


def write_sources(data_dir: Path, sources: dict[str, list[dict[str, object]]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, records in sources.items():
        (data_dir / f"{name}.json").write_text(json.dumps(records))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A directory with one JSON file per source of `SOURCES`."""
    write_sources(tmp_path / "incoming", SOURCES)
    return tmp_path / "incoming"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.db"
