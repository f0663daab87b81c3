"""Sample inputs shared by the reference tests, and named by the docs' examples: the ETL flow's sources
and database, its deployment in prefect.yaml, CSV exports, the freshness state file, the configuration's
secret and variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

PREFECT_YAML = Path(__file__).parents[1] / "prefect.yaml"
PASSWORD = "pa55-w0rd-never-logged"
CONFIG = {"host": "db.internal.test", "database": "warehouse", "user": "etl", "port": 6432}


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


@pytest.fixture
def configured(fake_blocks):
    fake_blocks.secret("database-password", PASSWORD)
    fake_blocks.variable("database-config", CONFIG)
    return fake_blocks


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "exports"
    directory.mkdir()
    (directory / "2026-01-01.csv").write_text("order,amount\n1,10.5\n2,4.5\n")
    (directory / "2026-01-02.csv").write_text("order,amount\n3,100\n")
    (directory / "2026-01-03.csv").write_text("order,amount\n")
    (directory / "notes.txt").write_text("not a csv")
    return directory


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "orders.freshness.json"


@pytest.fixture(scope="module")
def yaml_deployment() -> dict:
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return next(deployment for deployment in deployments if deployment["name"] == "nightly-etl")
