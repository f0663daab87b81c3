"""Shared helpers for the plugin's own tests (pytester is enabled in pyproject's addopts)."""
