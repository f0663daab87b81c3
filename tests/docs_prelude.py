"""What the docs' code blocks take from the reference suite without importing it themselves.

Every page of the docs is written against `example_flows/` and its tests: the flows, the sample
data and the fixtures below. `tests/docs_examples.py` starts each page's module with
`from tests.docs_prelude import *`.
"""

# ruff: noqa: F401  (names re-exported to the docs pages)

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow, task
from prefect.schedules import Cron

from example_flows.cached import score_dataset
from example_flows.composition import company_report, probe_services, region_report
from example_flows.config import configured_connection
from example_flows.dask_flow import on_dask, sum_of_squares
from example_flows.deployments import nightly_etl
from example_flows.etl import etl_pipeline, load_records, read_orders
from example_flows.files import aggregate, list_files, process_files, summarize_file
from example_flows.freshness import refresh_if_stale
from example_flows.http_extract import http_extract, is_transient
from example_flows.inventory import LOW_STOCK_EVENT, check_stock, reorder_stock
from example_flows.monitored import daily_report
from example_flows.tests.conftest import SOURCES, data_dir, db_path
from example_flows.tests.test_config import PASSWORD, configured
from example_flows.tests.test_deployments import BERLIN, yaml_deployment
from example_flows.tests.test_etl import EXPECTED_ROWS
from example_flows.tests.test_files import csv_dir
from example_flows.tests.test_freshness import state_path
from example_flows.tests.test_http_extract import API, PAGE_1, PAGE_2
from example_flows.tests.test_inventory import PREFECT_YAML, REORDER_POINTS
from pytest_prefect_flows import *  # noqa: F403  (every helper the docs name)
