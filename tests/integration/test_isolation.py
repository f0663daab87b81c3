"""Tests never reach the user's API, and what one test leaves in the backend the next does not see."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

FLOW_MODULE = """
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS

@task
def work(x):
    get_run_logger().info("working on %s", x)
    return x + 1

@flow
def pipeline(x: int = 1):
    get_run_logger().warning("pipeline for %s", x)
    return work(x)

@task(cache_policy=INPUTS, persist_result=True)
def expensive(x):
    return x * 10

@flow
def cached_pipeline(x: int = 1):
    return expensive(x)
"""


class Decoy:
    """A stand-in for the user's production API on loopback; counts every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.auth_headers: list[str] = []
        decoy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                decoy.requests.append(f"{self.command} {self.path}")
                decoy.auth_headers.append(self.headers.get("Authorization", ""))
                self.send_response(500)
                self.end_headers()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((_decoy_host(), 0), Handler)
        host, port = self.server.server_address[:2]
        self.api_url = f"http://{host}:{port}/api"


def _decoy_host() -> str:
    """127.0.0.2 where the OS routes all of 127/8 to loopback (Linux), else 127.0.0.1."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return "127.0.0.1"
    return "127.0.0.2"


@pytest.fixture
def decoy() -> Iterator[Decoy]:
    decoy = Decoy()
    thread = threading.Thread(target=decoy.server.serve_forever, daemon=True)
    thread.start()
    yield decoy
    decoy.server.shutdown()
    decoy.server.server_close()


FULL_SESSION = """
import os
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings
from prefect.variables import Variable
from flows import pipeline

def test_environment_holds_no_key_or_production_url():
    settings = get_current_settings()
    assert "PREFECT_API_KEY" not in os.environ
    assert settings.api.key is None
    assert settings.api.url.startswith("http://127.0.0.1:")
    assert "{decoy}" not in settings.api.url
    with get_client(sync_client=True) as client:
        assert "authorization" not in {{name.lower() for name in client._client.headers}}

def test_flows_tasks_and_logs(run_flow, prefect_logs):
    record = run_flow(pipeline, 2)
    assert record.result() == 3
    assert "working on 2" in prefect_logs.messages

def test_blocks_and_variables():
    Secret(value="s3cr3t").save("database-password")
    assert Secret.load("database-password").get() == "s3cr3t"
    Variable.set("database-config", {{"host": "db"}})
    assert Variable.get("database-config") == {{"host": "db"}}
"""


def test_session_never_touches_the_api_and_key_from_the_environment(
    pytester: pytest.Pytester, decoy: Decoy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", decoy.api_url)
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_production_key")
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(FULL_SESSION.format(decoy=decoy.api_url))
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)
    assert decoy.requests == []
    assert decoy.auth_headers == []


def test_user_profile_with_an_api_url_is_ignored(
    pytester: pytest.Pytester, decoy: Decoy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        f'active = "production"\n\n[profiles.production]\nPREFECT_API_URL = "{decoy.api_url}"\n'
        'PREFECT_API_KEY = "pnu_profile_key"\n'
    )
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(FULL_SESSION.format(decoy=decoy.api_url))
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)
    assert decoy.requests == []


STATEFUL_TESTS = """
import pytest
from prefect.blocks.system import Secret
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.variables import Variable
from flows import cached_pipeline, pipeline

@pytest.fixture(autouse=True)
def backend_is_clean(prefect_harness, run_flow):
    with prefect_harness.sync_client() as client:
        assert [block.name for block in client.read_block_documents()] == []
        assert [variable.name for variable in client.read_variables()] == []
        assert client.read_global_concurrency_limits() == []
        assert client.read_concurrency_limits(limit=10, offset=0) == []
    assert not run_flow(cached_pipeline, 7).task("expensive").cached
    assert run_flow(pipeline, 1).task("work").state_name == "Completed"

def test_saves_a_block_and_a_variable():
    Secret(value="s3cr3t").save("database-password")
    Variable.set("database-config", {"host": "db"})

def test_creates_concurrency_limits(prefect_harness):
    with prefect_harness.sync_client() as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="database", limit=1))
        client.create_concurrency_limit(tag="database", concurrency_limit=1)

def test_caches_a_task_result(run_flow):
    assert run_flow(cached_pipeline, 7).task("expensive").cached

def test_injects_a_fault(run_flow, fail_task):
    fail_task("work", times=None, exc=ConnectionError("down"))
    assert run_flow(pipeline, 1).task("work").state_name == "Failed"
"""

REVERSIBLE_ORDER = """
import os

def pytest_collection_modifyitems(items):
    if os.environ.get("REVERSE_TESTS"):
        items.reverse()
"""


@pytest.mark.parametrize("order", ["as written", "reversed"])
def test_state_saved_by_one_test_is_gone_in_the_next(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    if order == "reversed":
        monkeypatch.setenv("REVERSE_TESTS", "1")
    pytester.makeconftest(REVERSIBLE_ORDER)
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(STATEFUL_TESTS)
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    names = [line.split("::")[1].split()[0] for line in result.outlines if " PASSED" in line]
    expected = ["test_saves_a_block_and_a_variable", "test_creates_concurrency_limits"]
    expected += ["test_caches_a_task_result", "test_injects_a_fault"]
    assert names == (expected if order == "as written" else expected[::-1])


FAKES_AND_FLOW_WRITES = """
import pytest
from prefect import flow
from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable
from pytest_prefect_flows import UnknownBlockError

@flow
def writes():
    Variable.set("written-by-flow", 1)
    Secret(value="from-flow").save("saved-by-flow")

def test_register(fake_blocks, run_flow, prefect_harness):
    fake_blocks.secret("database-password", "one")
    fake_blocks.variable("database-config", {"a": 1})
    run_flow(writes).result()
    assert Variable.get("written-by-flow") == 1
    with prefect_harness.sync_client() as backend:  # the backend itself, past the fakes
        for variable in ("written-by-flow", "database-config"):
            assert backend.read_variable_by_name(variable) is None
        for block in ("database-password", "saved-by-flow"):
            with pytest.raises(ObjectNotFound):
                backend.read_block_document_by_name(block, block_type_slug="secret")

def test_a_later_test_sees_none_of_the_earlier_writes():
    assert Variable.get("written-by-flow") is None
    assert Variable.get("database-config") is None
    with pytest.raises(ValueError, match="Unable to find block document"):
        Secret.load("saved-by-flow")

def test_fresh_fakes_are_empty(fake_blocks):
    with pytest.raises(UnknownBlockError, match=r"Registered: \\(none\\)"):
        Secret.load("database-password")
"""


def test_state_is_isolated_between_tests_on_each_xdist_worker(pytester: pytest.Pytester) -> None:
    """Each file runs on one worker (`--dist loadfile`), its tests in order: what a test saved, and
    what `fake_blocks` registered, is gone in the next. One xdist session for all three files: each
    worker is a new interpreter that imports Prefect."""
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(test_stateful=STATEFUL_TESTS, test_first=FAKES_AND_FLOW_WRITES)
    pytester.makepyfile(test_second=FAKES_AND_FLOW_WRITES)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--dist", "loadfile", "-q")
    result.assert_outcomes(passed=10)


# The first test fills the API with one of everything; the next ones, isolated per test, find none of it.
EMPTY_PER_TEST = """
import pytest
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.variables import Variable
from flows import pipeline

@flow
def reporting():
    create_markdown_artifact("# report", key="report")

def test_fills_the_api(run_flow, prefect_harness):
    run_flow(pipeline, 1)
    run_flow(reporting)
    Secret(value="s3cr3t").save("database-password")
    Variable.set("database-config", {"host": "db"})
    with prefect_harness.sync_client() as client:
        flow_id = client.create_flow_from_name("deployed")
        client.create_deployment(flow_id=flow_id, name="nightly")
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="database", limit=1))
        client.create_concurrency_limit(tag="database", concurrency_limit=1)
        client.create_work_pool(WorkPoolCreate(name="pool", type="process"))

def contents(client):
    return {
        "flows": client.read_flows(),
        "flow runs": client.read_flow_runs(),
        "task runs": client.read_task_runs(),
        "deployments": client.read_deployments(),
        "blocks": client.read_block_documents(),
        "variables": client.read_variables(),
        "artifacts": client.read_artifacts(),
        "global concurrency limits": client.read_global_concurrency_limits(),
        "tag concurrency limits": client.read_concurrency_limits(limit=10, offset=0),
        "work pools": client.read_work_pools(),
    }

@pytest.mark.prefect(isolation="test")
def test_finds_an_empty_api(prefect_harness, run_flow):
    with prefect_harness.sync_client() as client:
        assert {name: found for name, found in contents(client).items() if found} == {}
    assert prefect_harness.restarts == 0 and prefect_harness.alive, "the same server"
    Secret(value="again").save("database-password")  # block types and schemas are still there
    assert run_flow(pipeline, 2).result() == 3

@pytest.mark.prefect(isolation="session")
def test_session_isolation_keeps_runs(prefect_harness):
    with prefect_harness.sync_client() as client:
        assert [run.parameters for run in client.read_flow_runs()] == [{"x": 2}]
"""


def test_isolation_test_empties_the_api_before_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(flows=FLOW_MODULE, test_empty=EMPTY_PER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_isolation_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprefect_isolation = test\n")
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import pipeline

        def test_one(run_flow, prefect_harness):
            run_flow(pipeline, 1)

        def test_two(run_flow, prefect_harness):
            with prefect_harness.sync_client() as client:
                assert client.read_flow_runs() == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    bad = pytester.runpytest_subprocess("--prefect-isolation=module")
    bad.stderr.fnmatch_lines(["*--prefect-isolation*invalid choice*'module'*session*test*"])
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
