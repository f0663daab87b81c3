"""How the isolated backend starts: Prefect's server imported during collection once a collected
module uses Prefect, never in a session that cannot run a flow, and a failed early preparation
reported only where a test needs the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_harness import FLOW_MODULE

REPORT_CONFTEST = """
from pytest_prefect_flows.plugin import backend_key

def pytest_collection_finish(session):
    print("AHEAD AFTER COLLECTION", session.config.stash[backend_key].prepared_ahead)
"""


@pytest.fixture
def server_imported() -> None:
    """Prefect's server imported by this process, not by an inline session: pytester unloads the
    modules a session imported, and SQLAlchemy's compiled parts do not survive a second import."""
    import prefect.server.api.server  # noqa: F401


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(REPORT_CONFTEST)
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(test_plain="def test_arithmetic():\n    assert 1 + 1 == 2\n")
    pytester.makepyfile(
        test_flows="""
        import flows

        def test_the_server_waits_for_its_first_client(prefect_harness):
            assert prefect_harness.prepared_ahead
            assert not prefect_harness.alive  # prepared, not started: no client has needed it yet
            assert prefect_harness.first_wait_seconds is None

        def test_first_flow(run_flow):
            assert run_flow(flows.small, 4).result() == 8
        """
    )
    return pytester


def test_a_module_holding_a_flow_starts_the_backend_during_collection(suite: pytest.Pytester) -> None:
    """In a new process each (two servers in one process cannot both run flows, see pytester)."""
    ahead = suite.runpytest_subprocess("-s", "-v", "-p", "no:randomly")
    ahead.assert_outcomes(passed=3)
    ahead.stdout.fnmatch_lines(
        [
            "*backend ephemeral (isolated, prepared during collection, started on first flow run)*",
            "AHEAD AFTER COLLECTION True",
            "prefect-flows: the first flow waited * s for the isolated backend (prepared during collection)",
        ]
    )
    lazy = suite.runpytest_subprocess("-s", "-v", "-o", "prefect_start=lazy", "-k", "test_first_flow")
    lazy.assert_outcomes(passed=1, deselected=2)
    lazy.stdout.fnmatch_lines(
        [
            "*backend ephemeral (isolated, started on first flow run)*",
            "AHEAD AFTER COLLECTION False",
            "prefect-flows: the first flow waited * s for the isolated backend (started on first connection)",
        ]
    )


def test_no_start_ahead_in_a_session_that_runs_no_flow(suite: pytest.Pytester, server_imported: None) -> None:
    collected = suite.runpytest_inprocess("-s", "--collect-only", "-q")
    collected.stdout.fnmatch_lines(["AHEAD AFTER COLLECTION False"])
    plain_only = suite.runpytest_inprocess("-s", "-q", "test_plain.py")
    plain_only.assert_outcomes(passed=1)
    plain_only.stdout.fnmatch_lines(["AHEAD AFTER COLLECTION False"])


def test_a_failed_start_ahead_fails_only_the_tests_that_need_the_backend_as_before(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_imported: None
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("PYTEST_PREFECT_FLOWS_CACHE", str(not_a_dir / "cache"))
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import small

        def test_no_flow(prefect_harness):
            pass  # the preparation during collection has failed by now

        def test_flow():
            small()

        def test_after(prefect_harness):
            pass
        """
    )
    outputs = {}
    for mode in ("ahead", "lazy"):
        result = pytester.runpytest_inprocess("-p", "no:randomly", "-o", f"prefect_start={mode}")
        result.assert_outcomes(passed=1, failed=1, errors=1)
        text = result.stdout.str()
        assert "Exception in thread" not in text
        assert "ThreadException" not in text
        outputs[mode] = [line for line in result.outlines if "BackendError: " in line]
    assert outputs["ahead"] == outputs["lazy"]
    assert any(
        "cannot be written (NotADirectoryError: Not a directory)" in line for line in outputs["ahead"]
    ), outputs
