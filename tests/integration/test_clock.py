"""`prefect_clock` and `next_runs` as users meet them, through the real plugin in a subprocess."""

from __future__ import annotations

import json

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

        class Job:
            def __init__(self, ready_after_polls):
                self.polls = 0
                self.ready_after_polls = ready_after_polls

            def ready(self):
                self.polls += 1
                return self.polls >= self.ready_after_polls

        @task(log_prints=True)
        def wait_until_ready(job, every=30, give_up_after=600):
            import time
            seen = []
            deadline = time.monotonic() + give_up_after
            while time.monotonic() < deadline:
                seen.append(dt.datetime.now(dt.timezone.utc))
                if job.ready():
                    return seen
                time.sleep(every)
            raise TimeoutError(f"not ready after {give_up_after} s ({len(seen)} polls)")

        @flow
        def poll(job):
            return wait_until_ready(job)
        """
    )
    pytester.makepyfile(
        """
        import datetime as dt
        import pytest
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

        @pytest.mark.prefect(skip_sleeps=True)
        def test_4_poll_every_30s_for_10_minutes(run_flow, prefect_clock):
            from freshness import Job, poll

            ready = run_flow(poll, Job(ready_after_polls=5))
            never = run_flow(poll, Job(ready_after_polls=10**6))

            start = ready.result()[0]
            assert ready.result() == [start + dt.timedelta(seconds=30 * k) for k in range(5)]
            never_seen = never.task("wait_until_ready").exception
            assert isinstance(never_seen, TimeoutError)
            assert str(never_seen) == "not ready after 600 s (20 polls)"
            assert prefect_clock.skipped == [30] * (4 + 20)  # every sleep advanced the clock, none waited

        def test_5_engine_time_stays_real_while_frozen(run_flow, prefect_clock):
            import time
            from freezegun.api import real_datetime

            prefect_clock.freeze("2001-01-01T00:00:00Z")
            before = time.perf_counter()
            run = run_flow(check_freshness, LOADED)
            assert time.perf_counter() > before
            real_now = real_datetime.now(dt.timezone.utc)
            assert abs(run.history[-1].timestamp - real_now) < dt.timedelta(minutes=1)
            assert run.duration > 0
            assert abs(run.logs[0].created - real_now.timestamp()) < 60
            assert dt.datetime.now(dt.timezone.utc).year == 2001

        def test_3_time_is_real_again():
            from freezegun.api import real_datetime

            assert dt.datetime is real_datetime
            drift = dt.datetime.now(dt.timezone.utc) - real_datetime.now(dt.timezone.utc)
            assert abs(drift) < dt.timedelta(seconds=5)
        """
    )
    result = pytester.runpytest_subprocess(
        "-q", "-s", "-p", "no:randomly", "--prefect-report=json:report.json"
    )
    result.assert_outcomes(passed=5)
    report = json.loads((pytester.path / "report.json").read_text())
    [frozen_test] = [
        test
        for test in report["tests"]
        if test["nodeid"].endswith("test_5_engine_time_stays_real_while_frozen")
    ]
    [attempt] = frozen_test["flow_runs"][0]["attempts"]
    assert attempt["end"] > attempt["start"], "report durations are real under a frozen clock"
