"""Template databases shipped in the package, one per Prefect release the version matrix tests.

A cold machine takes its template from here in milliseconds instead of building it (migrations and
block registration in a subprocess: seconds). Each one is the gzipped database Prefect's own
migrations and block registration gave, written by `python -m pytest_prefect_flows._template dump
DIR` in an environment of that Prefect release, beside a JSON sidecar saying what it was built
from. It is used only for that exact Prefect version, and only if the installed Prefect's migration
and block files (`_compat.template_inputs`) hash as they did at the build: anything else is built.
`tests/unit/test_template.py` proves the shipped template of the installed Prefect equal to a
database Prefect migrated.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

from pytest_prefect_flows import _compat
from pytest_prefect_flows.exceptions import BackendError

SHIPPED_DIR = Path(__file__).with_name("shipped_templates")


def shipped_files(version: str, directory: Path | None = None) -> tuple[Path, Path]:
    """The gzipped database and the sidecar of Prefect `version`'s template in `directory`
    (default: the package's `shipped_templates`)."""
    directory = directory or SHIPPED_DIR
    return directory / f"prefect-{version}.db.gz", directory / f"prefect-{version}.json"


def inputs_digest() -> str | None:
    """SHA-256 of the installed Prefect's files that decide its template; `None` if not found."""
    inputs = _compat.template_inputs()
    if not inputs:
        return None
    digest = hashlib.sha256()
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def shipped_template(version: str, directory: Path | None = None) -> Path | None:
    """The shipped template of Prefect `version`, if there is one built from the installed files."""
    database, sidecar = shipped_files(version, directory)
    if not database.is_file() or not sidecar.is_file():
        return None
    recorded = json.loads(sidecar.read_text(encoding="utf-8")).get("inputs_sha256")
    if recorded is None or recorded != inputs_digest():
        return None
    return database


def materialise(shipped: Path, target: Path) -> None:
    """Decompress `shipped` into `target`, which appears whole or not at all (renamed into place)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with gzip.open(shipped, "rb") as source, open(partial, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_shipped(database: Path, version: str, directory: Path) -> Path:
    """Write the template `database` of Prefect `version` (the installed one) into `directory`."""
    digest = inputs_digest()
    if digest is None:
        raise BackendError(
            f"Cannot ship a template for prefect {version}: its migration files or "
            "`collection_blocks_data.json` are not where `_compat.template_inputs` looks. "
            "Update that shim for this Prefect release first."
        )
    directory.mkdir(parents=True, exist_ok=True)
    target, sidecar = shipped_files(version, directory)
    with (
        open(database, "rb") as source,
        open(target, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out,  # no timestamp: reproducible
    ):
        shutil.copyfileobj(source, out, 1 << 20)
    sidecar.write_text(json.dumps(_sidecar(database, version, digest), indent=2) + "\n", encoding="utf-8")
    return target


def _sidecar(database: Path, version: str, digest: str) -> dict[str, Any]:
    import pydantic

    with sqlite3.connect(database) as connection:
        (alembic_version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return {
        "prefect": version,
        "alembic_version": alembic_version,
        "inputs_sha256": digest,
        "built_with": {
            "python": sys.version.split()[0],
            "pydantic": pydantic.VERSION,
            "sqlite": sqlite3.sqlite_version,
        },
    }
