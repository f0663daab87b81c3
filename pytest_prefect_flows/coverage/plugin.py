"""pytest hooks of flow coverage (registered by `plugin.pytest_configure`)."""

from __future__ import annotations

import pytest


class FlowCoveragePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
