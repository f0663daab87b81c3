"""Hooks that a `conftest.py` can implement for the deployment checks."""

from __future__ import annotations

from collections.abc import Iterable

import pytest


def pytest_prefect_known_refs(config: pytest.Config) -> Iterable[str] | None:
    """Template references that exist where the deployments go, added to ini `prefect_known_refs`.

    Return names such as `variables.db_config` and `blocks.secret.db-password` (or None). Once the ini
    option or any implementation lists a reference, `--prefect-check-deployments` fails deployments
    whose `{{ prefect.variables.* }}` / `{{ prefect.blocks.* }}` templates name any other. A
    `conftest.py` applies to the `prefect.yaml` files in its directory and below.
    """
    return None
