"""The nightly deployment: its schedule fires at 02:00 Berlin time, and prefect.yaml says the same."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect.schedules import Cron

from example_flows.deployments import nightly_etl
from example_flows.etl import etl_pipeline
from pytest_prefect_flows import next_runs

BERLIN = ZoneInfo("Europe/Berlin")


def test_runs_every_day_at_2am_berlin_time():
    runs = next_runs(nightly_etl(), 3, start=dt.datetime(2026, 1, 10, 12, 0, tzinfo=BERLIN))

    assert runs == [dt.datetime(2026, 1, day, 2, 0, tzinfo=BERLIN) for day in (11, 12, 13)]


def test_2am_berlin_is_01_utc_in_winter_and_00_utc_in_summer():
    winter = next_runs(nightly_etl(), 1, start=dt.datetime(2026, 1, 10, tzinfo=dt.timezone.utc))[0]
    summer = next_runs(nightly_etl(), 1, start=dt.datetime(2026, 7, 10, tzinfo=dt.timezone.utc))[0]

    assert winter.astimezone(dt.timezone.utc).hour == 1
    assert summer.astimezone(dt.timezone.utc).hour == 0


def test_default_parameters_satisfy_the_flow_signature():
    deployment = nightly_etl()

    validated = etl_pipeline.validate_parameters(deployment.parameters)  # raises on a missing/bad one
    assert validated == {
        "sources": ["shop", "marketplace", "partners"],
        "data_dir": Path("/srv/etl/incoming"),
        "db_path": Path("/srv/etl/warehouse.db"),
    }


def test_prefect_yaml_schedule_fires_when_the_python_one_does(yaml_deployment: dict):
    [schedule] = yaml_deployment["schedules"]
    from_yaml = Cron(schedule["cron"], timezone=schedule["timezone"])
    start = dt.datetime(2026, 3, 27, tzinfo=BERLIN)  # across the spring DST change

    assert next_runs(from_yaml, 5, start=start) == next_runs(nightly_etl(), 5, start=start)


def test_prefect_yaml_deploys_the_same_flow_and_parameters(yaml_deployment: dict):
    deployment = nightly_etl()
    path, _, name = yaml_deployment["entrypoint"].partition(":")
    module = importlib.import_module("example_flows." + Path(path).stem)

    assert getattr(module, name).name == deployment.flow_name
    assert yaml_deployment["parameters"] == deployment.parameters
    assert sorted(yaml_deployment["tags"]) == sorted(deployment.tags)
