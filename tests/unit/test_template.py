"""The template database: the fast build and the shipped template are the database Prefect's own
migrations give; a cold cache takes the shipped template, or builds one when none fits."""

from __future__ import annotations

import ast
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pytest_prefect_flows import _template
from pytest_prefect_flows._compat import prefect_version
from pytest_prefect_flows.backend import shipped, template
from pytest_prefect_flows.exceptions import BackendError

ROOT = Path(__file__).resolve().parents[2]


def _table_sql(sql: str) -> list[str]:
    # `batch_alter_table` recreates a table with its constraints in reflection order, which
    # follows Python's hash seed: the same constraints may come in another order.
    return sorted(line.strip().rstrip(",").strip() for line in sql.splitlines())


def _describe(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as connection:
        master = {
            (kind, name, table): _table_sql(sql or "")
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
            )
        }
        tables = [name for kind, name, _ in master if kind == "table"]
        columns = {table: connection.execute(f"PRAGMA table_info('{table}')").fetchall() for table in tables}
        rows = {
            table: connection.execute(f"SELECT count(*) FROM '{table}'").fetchone()[0] for table in tables
        }
        block_types = connection.execute(
            "SELECT slug, name, logo_url, documentation_url, description, code_example,"
            " is_protected FROM block_type ORDER BY slug"
        ).fetchall()
        # Prefect stores capabilities in set order (Python's hash seed): compared as sets.
        block_schemas = sorted(
            (slug, checksum, fields, sorted(json.loads(capabilities)), version)
            for slug, checksum, fields, capabilities, version in connection.execute(
                "SELECT t.slug, s.checksum, s.fields, s.capabilities, s.version"
                " FROM block_schema s JOIN block_type t ON t.id = s.block_type_id"
            )
        )
        references = connection.execute(
            "SELECT p.checksum, c.checksum, r.name FROM block_schema_reference r"
            " JOIN block_schema p ON p.id = r.parent_block_schema_id"
            " JOIN block_schema c ON c.id = r.reference_block_schema_id"
            " ORDER BY 1, 2, 3"
        ).fetchall()
        return {
            "sqlite_master": master,
            "columns": columns,
            "rows": rows,
            "alembic_version": connection.execute("SELECT * FROM alembic_version").fetchall(),
            "journal_mode": connection.execute("PRAGMA journal_mode").fetchone(),
            "block_types": block_types,
            "block_schemas": block_schemas,
            "block_schema_references": references,
        }


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fast build and Prefect's own migrations (`prefect server database upgrade`), side by side."""
    directory = tmp_path_factory.mktemp("templates")
    paths = {how: directory / f"{how}.db" for how in ("fast", "migrations")}
    with ThreadPoolExecutor(2) as pool:
        for build in [pool.submit(template._build_template, path, how) for how, path in paths.items()]:
            build.result()
    return paths


def _assert_same_database(observed_path: Path, expected_path: Path, what: str) -> None:
    expected, observed = _describe(expected_path), _describe(observed_path)
    assert expected["block_types"], "the migrated template has no registered block type"
    assert any(kind == "index" for kind, _, _ in expected["sqlite_master"])
    for aspect in expected:
        assert observed[aspect] == expected[aspect], f"{aspect}: {what} differs from Prefect's migrations"


def test_fast_build_equals_prefects_migrations(builds: dict[str, Path]) -> None:
    _assert_same_database(builds["fast"], builds["migrations"], "the fast build")


def test_shipped_template_equals_prefects_migrations(builds: dict[str, Path], tmp_path: Path) -> None:
    version = prefect_version()
    ready_made = shipped.shipped_template(version)
    if ready_made is None:
        pytest.skip(f"no template is shipped for prefect {version} (`nox -s templates` makes one)")
    shipped.materialise(ready_made, tmp_path / "shipped.db")
    _assert_same_database(
        tmp_path / "shipped.db", builds["migrations"], f"the template shipped for {version}"
    )


def test_every_prefect_release_of_the_matrix_has_a_shipped_template() -> None:
    noxfile = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    (matrix,) = [
        ast.literal_eval(node.value)
        for node in noxfile.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["PREFECT"]
    ]
    tested = sorted(version for version, _ in matrix.values())
    missing = [version for version in tested if not shipped.shipped_files(version)[0].is_file()]
    assert not missing, (
        f"the matrix tests {tested}; no template is shipped for {missing}: run `nox -s templates`"
    )
    for version in tested:
        sidecar = json.loads(shipped.shipped_files(version)[1].read_text(encoding="utf-8"))
        assert sidecar["prefect"] == version


def _tiny_template(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('abc123')")
    connection.close()
    return path.read_bytes()


@pytest.fixture
def fake_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A small database shipped as the installed Prefect's template; the real ones stay out."""
    content = _tiny_template(tmp_path / "tiny.db")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "shipped")
    shipped.write_shipped(tmp_path / "tiny.db", prefect_version(), tmp_path / "shipped")
    monkeypatch.delenv(template.TEMPLATE_SOURCE_VARIABLE, raising=False)
    return content


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Templates built (instead of shipped) are listed here; each build writes a stand-in file."""
    calls: list[Path] = []

    def build(path: Path, how: str = "auto") -> None:
        calls.append(path)
        path.write_bytes(b"built")

    monkeypatch.setattr(template, "_build_template", build)
    return calls


def test_a_cold_cache_takes_the_shipped_template_once_without_building(
    fake_shipped: bytes, built: list[Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(4) as pool:  # as xdist workers: one materialises, the others wait
        paths = set(pool.map(lambda _: template.template_database(cache), range(4)))

    assert built == []
    assert paths == {cache / f"template-prefect-{prefect_version()}.db"}
    assert paths.pop().read_bytes() == fake_shipped
    assert sorted(path.name for path in cache.iterdir()) == [
        ".template.lock",
        f"template-prefect-{prefect_version()}.db",
    ]


def test_a_prefect_release_without_a_shipped_template_builds_it(
    fake_shipped: bytes, built: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(template, "prefect_version", lambda: "3.99.0")
    assert template.template_database(tmp_path) == tmp_path / "template-prefect-3.99.0.db"
    assert built == [tmp_path / "template-prefect-3.99.0.db"]


def test_changed_prefect_files_build_instead_of_shipping(
    fake_shipped: bytes, built: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same version string, other migrations (a patched or development install of Prefect)."""
    monkeypatch.setattr(shipped, "inputs_digest", lambda: "0" * 64)
    assert template.template_database(tmp_path).read_bytes() == b"built"


def test_template_source_build_builds_even_when_one_is_shipped(
    fake_shipped: bytes, built: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(template.TEMPLATE_SOURCE_VARIABLE, "build")
    assert template.template_database(tmp_path).read_bytes() == b"built"


def test_an_unknown_template_source_names_it_and_the_choices(
    fake_shipped: bytes, built: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(template.TEMPLATE_SOURCE_VARIABLE, "prebuilt")
    with pytest.raises(BackendError, match=r"PYTEST_PREFECT_FLOWS_TEMPLATE='prebuilt'.*`build`"):
        template.template_database(tmp_path)
    assert built == []


def test_dump_writes_a_template_that_a_cold_cache_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = _tiny_template(tmp_path / "tiny.db")
    monkeypatch.setattr(template, "_build_template", lambda path, how: path.write_bytes(content))
    assert _template.main(["dump"]) == 2
    assert "dump DIR" in capsys.readouterr().err

    assert _template.main(["dump", str(tmp_path / "out")]) == 0

    sidecar = json.loads(shipped.shipped_files(prefect_version(), tmp_path / "out")[1].read_text())
    assert sidecar["prefect"] == prefect_version()
    assert sidecar["alembic_version"] == "abc123"
    assert sidecar["inputs_sha256"] == shipped.inputs_digest()
    ready_made = shipped.shipped_template(prefect_version(), tmp_path / "out")
    assert ready_made is not None
    shipped.materialise(ready_made, tmp_path / "materialised.db")
    assert (tmp_path / "materialised.db").read_bytes() == content
