"""`prefect_clock` and `next_runs` as users meet them, through the real plugin in a subprocess."""

from __future__ import annotations

import pytest


def test_freshness_branch_follows_the_frozen_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        freshness="""
        import datetime as dt
        from prefect import flow, task

        @task
        def refresh():
            return "refreshed"

        @flow
        def check_freshness(last_loaded: dt.datetime, max_age_hours: float = 6):
            age = dt.datetime.now(dt.timezone.utc) - last_loaded
            if age > dt.timedelta(hours=max_age_hours):
                return refresh()
            return "fresh"

        @flow
        def nightly_load():
            pass
        """
    )
    pytester.makepyfile(
        """
        import datetime as dt
        from freshness import check_freshness, nightly_load
        from pytest_prefect_flows import next_runs

        LOADED = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone.utc)

        def test_1_fresh_then_stale(run_flow, prefect_clock):
            prefect_clock.freeze("2026-01-01T02:00:00Z")
            fresh = run_flow(check_freshness, LOADED)
            assert fresh.result() == "fresh"
            assert fresh.task_runs == []

            prefect_clock.tick(5 * 3600)
            stale = run_flow(check_freshness, LOADED)
            assert stale.result() == "refreshed"
            assert stale.task("refresh").state_name == "Completed"

        def test_2_daily_2am_schedule(prefect_clock):
            prefect_clock.freeze("2026-01-01T00:30:00Z")
            expected = [dt.datetime(2026, 1, day, 2, 0, tzinfo=dt.timezone.utc) for day in (1, 2, 3)]
            assert next_runs("0 2 * * *", 3) == expected
            assert next_runs(nightly_load.to_deployment("nightly", cron="0 2 * * *"), 3) == expected

        def test_3_time_is_real_again():
            from freezegun.api import real_datetime

            assert dt.datetime is real_datetime
            drift = dt.datetime.now(dt.timezone.utc) - real_datetime.now(dt.timezone.utc)
            assert abs(drift) < dt.timedelta(seconds=5)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
