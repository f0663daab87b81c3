"""The reference suite's sample data, for the tests that run the reference flows."""

from example_flows.tests.conftest import data_dir, db_path  # noqa: F401
