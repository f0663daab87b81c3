"""The session backend as users meet it: isolation, laziness, xdist, `server:` backends."""

from __future__ import annotations

import gzip
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

FLOW_MODULE = """
from prefect import flow, task

@task
def double(x):
    return 2 * x

@flow
def small(x: int = 3):
    return double(x)
"""


class DecoyHandler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def _record(self) -> None:
        DecoyHandler.hits.append(f"{self.command} {self.path}")
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def decoy_api() -> Iterator[str]:
    """A stand-in for the user's production API on loopback; every request is counted."""
    DecoyHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DecoyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def test_flow_run_without_fixture_goes_to_isolated_backend(
    pytester: pytest.Pytester, decoy_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", decoy_api)
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        f"""
        from prefect.client.orchestration import get_client
        from prefect.settings import get_current_settings
        from flows import small

        def test_plain_call():
            state = small(4, return_state=True)
            assert state.result() == 8
            api_url = get_current_settings().api.url
            assert api_url != {decoy_api!r}
            assert api_url.startswith("http://127.0.0.1:")
            with get_client(sync_client=True) as client:
                stored = client.read_flow_run(state.state_details.flow_run_id)
            assert stored.state.is_completed()

        def test_the_api_keeps_prefect_rules_and_formats():
            import httpx
            from prefect.states import Pending, Running

            run_id = small(4, return_state=True).state_details.flow_run_id
            with get_client(sync_client=True) as client:
                history = [state.name for state in client.read_flow_run_states(run_id)]
                client.set_flow_run_state(run_id, Running())
                running_to_pending = client.set_flow_run_state(run_id, Pending())
            assert history == ["Pending", "Running", "Completed"]
            assert running_to_pending.status.value == "ABORT"  # the server's orchestration rules ran
            api_url = get_current_settings().api.url
            # a JSON body without a Content-Type is read as JSON, as Prefect's own server does
            response = httpx.post(api_url + "/flows/", content=b'{{"name": "raw-json"}}')
            assert response.status_code in (200, 201), response.text
            assert response.json()["name"] == "raw-json"
            # a response big enough for gzip comes uncompressed on the loopback API
            response = httpx.get(f"{{api_url}}/flow_runs/{{run_id}}", headers={{"accept-encoding": "gzip"}})
            assert len(response.content) > 500 and "content-encoding" not in response.headers
            assert response.json()["state"]["name"] == "Running"  # the refused Pending left no trace
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)
    assert DecoyHandler.hits == []


@pytest.mark.fresh_interpreter
def test_session_without_prefect_tests_imports_no_prefect(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            print("prefect imported:", "prefect" in sys.modules)
        """
    )
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*prefect imported: False*"])


CHILDREN_REPORT = """
import os, threading
import pytest

@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    me = str(os.getpid())
    children = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                children.append(stat)
    threads = sorted(t.name for t in threading.enumerate() if "prefect-flows" in t.name)
    print("CHILDREN", children, "THREADS", threads)
"""


def test_session_leaves_no_process_or_server_thread(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CHILDREN_REPORT)
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import small

        def test_flow_runs():
            assert small() == 6
        """
    )
    result = pytester.runpytest_subprocess("-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["CHILDREN [] THREADS []"])


@pytest.fixture
def inner_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR of the inner session, so its temp dirs can be inspected."""
    inner = tmp_path / "inner-tmp"
    inner.mkdir()
    monkeypatch.setenv("TMPDIR", str(inner))
    return inner


def test_session_removes_its_temp_dirs_also_after_a_failure(
    pytester: pytest.Pytester, inner_tmpdir: Path
) -> None:
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import os
        from flows import small

        def test_flow_runs():
            assert small() == 6
            assert os.environ["PREFECT_HOME"].startswith(os.environ["TMPDIR"])

        def test_failing_flow_test():
            assert small() == 7
        """
    )
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", f"--basetemp={inner_tmpdir / 'base'}"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert [p.name for p in inner_tmpdir.glob("pytest-prefect-flows-*")] == []


def test_server_backend_runs_against_existing_server_with_session_tag(
    pytester: pytest.Pytester, prefect_harness: object
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    prefect_harness.ensure_started()  # type: ignore[attr-defined]
    api_url = prefect_harness.api_url  # type: ignore[attr-defined]
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        from flows import small

        def test_tagged(run_flow):
            record = run_flow(small, 5)
            assert record.result() == 10
            print("FLOW RUN", record.id)
        """
    )
    result = pytester.runpytest_subprocess("-s", "-q", f"--prefect-backend=server:{api_url}")
    result.assert_outcomes(passed=1)
    flow_run_id = next(line for line in result.outlines if line.startswith("FLOW RUN")).split()[-1]
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(flow_run_id)
        tagged = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=list(stored.tags)))
        )
    session_tags = [tag for tag in stored.tags if tag.startswith("pytest-prefect-flows:")]
    assert len(session_tags) == 1, stored.tags
    assert [run.id for run in tagged] == [stored.id]


def test_server_default_result_storage_is_asked_once_and_follows_changes(pytester: pytest.Pytester) -> None:
    """The engine asks `GET /admin/storage` twice per flow run; the plugin keeps the answer until a
    test changes it through the API, and the next flow run then writes where the server says. The
    test's block is removed after it, and with it the server's default.

    A Prefect without that lookup (`_compat.server_default_storage_lookups()` is None: 3.4 to 3.6)
    never asks and has no server default to change or leave behind: the test checks exactly that."""
    pytester.makepyfile(
        """
        import httpx
        from prefect import flow, get_client
        from prefect.filesystems import LocalFileSystem

        from pytest_prefect_flows._compat import server_default_storage_lookups

        HAS_SERVER_DEFAULT = server_default_storage_lookups() is not None

        @flow(persist_result=True)
        def keep(x: int) -> int:
            return x * 10

        def test_default_storage_follows_the_server(tmp_path, monkeypatch):
            elsewhere = tmp_path / "elsewhere"
            block_id = LocalFileSystem(basepath=str(elsewhere)).save("elsewhere")
            lookups = []
            send = httpx.Client.send

            def counting(self, request, *args, **kwargs):
                if request.url.path.endswith("/admin/storage"):
                    lookups.append(request.method)
                return send(self, request, *args, **kwargs)

            monkeypatch.setattr(httpx.Client, "send", counting)
            for x in range(3):
                assert keep(x) == x * 10
            if not HAS_SERVER_DEFAULT:
                assert lookups == []
                with get_client(sync_client=True) as client:
                    assert not hasattr(client, "update_server_default_result_storage")
                return
            assert lookups.count("GET") <= 1, lookups

            with get_client(sync_client=True) as client:
                client.update_server_default_result_storage(block_id)
            assert keep(7) == 70
            assert any(elsewhere.iterdir()), "the result went to the old default storage"

        def test_the_next_test_starts_with_no_server_default_storage():
            with get_client(sync_client=True) as client:
                if not HAS_SERVER_DEFAULT:
                    assert not hasattr(client, "read_server_default_result_storage")
                    return
                assert client.read_server_default_result_storage().default_result_storage_block_id is None
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_xdist_workers_get_backends_of_their_own_from_one_template_built_once(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold cache under `-n 2`: each worker runs flows on a backend of its own (server, home), both
    copied from one template for the installed Prefect, with no partial files left; the next session
    copies it instead of migrating again. One xdist session for both checks: each worker is a new
    interpreter that imports Prefect."""
    from pytest_prefect_flows._compat import prefect_version
    from pytest_prefect_flows.backend import shipped

    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTEST_PREFECT_FLOWS_CACHE", str(cache))
    report = tmp_path / "backends.txt"
    monkeypatch.setenv("BACKENDS_FILE", str(report))
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import os
        import pytest
        from prefect.settings import get_current_settings
        from flows import small

        @pytest.mark.parametrize("n", range(6))
        def test_runs(n, run_flow):
            record = run_flow(small, n)
            assert record.result() == 2 * n
            assert [t.state_name for t in record.task_runs] == ["Completed"]
            with open(os.environ["BACKENDS_FILE"], "a") as handle:
                url = get_current_settings().api.url
                handle.write(f"{os.getpid()} {url} {os.environ['PREFECT_HOME']}\\n")
        """
    )
    pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-q").assert_outcomes(passed=6)
    workers = {line.split()[0]: tuple(line.split()[1:]) for line in report.read_text().splitlines()}
    assert len(workers) == 2, workers  # both worker processes ran tests
    assert len({url for url, _ in workers.values()}) == 2, workers
    assert len({home for _, home in workers.values()}) == 2, workers
    files = sorted(path.name for path in cache.iterdir() if not path.name.startswith("."))
    assert files == [f"template-prefect-{prefect_version()}.db"]
    ready_made = shipped.shipped_template(prefect_version())
    if ready_made is not None:  # a release of the matrix: the shipped template, not a build
        assert (cache / files[0]).read_bytes() == gzip.decompress(ready_made.read_bytes())
    built = (cache / files[0]).stat().st_mtime_ns

    pytester.runpytest_subprocess("-q").assert_outcomes(passed=6)
    assert (cache / files[0]).stat().st_mtime_ns == built


def test_run_logs_shipped_while_flows_run_never_make_the_api_answer_503(pytester: pytest.Pytester) -> None:
    """Prefect's log worker writes run logs while the test's next flow run is created: on SQLite a
    read-then-write transaction that meets a commit in between fails at once ("database is
    locked"), the API answers 503 and Prefect's client sleeps about 2 s before retrying. A thread
    writing logs through the API as fast as it can makes that meeting certain within a few flows."""
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import threading
        import uuid

        import httpx
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import LogCreate
        from prefect.types import DateTime

        from flows import small

        def test_flows_while_logs_are_written(prefect_harness, monkeypatch):
            answers, stop = [], threading.Event()
            sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

            def send(self, request, **kwargs):
                response = sync_send(self, request, **kwargs)
                answers.append(response.status_code)
                return response

            async def send_async(self, request, **kwargs):
                response = await async_send(self, request, **kwargs)
                answers.append(response.status_code)
                return response

            monkeypatch.setattr(httpx.Client, "send", send)
            monkeypatch.setattr(httpx.AsyncClient, "send", send_async)

            def write_logs():
                with get_client(sync_client=True) as client:
                    flow_run_id = uuid.uuid4()
                    while not stop.is_set() and 503 not in answers:
                        client.create_logs([
                            LogCreate(
                                name="noise", level=20, message="x" * 200, timestamp=DateTime.now("UTC"),
                                flow_run_id=flow_run_id,
                            ).model_dump(mode="json")
                            for _ in range(20)
                        ])

            writer = threading.Thread(target=write_logs)
            writer.start()
            try:
                for _ in range(30):
                    assert small() == 6
                    if 503 in answers:
                        break
            finally:
                stop.set()
                writer.join()
            assert 503 not in answers, f"503 to {answers.count(503)} of {len(answers)} requests"
            assert len(answers) > 60
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


@pytest.mark.fresh_interpreter  # the fork server's children end with os._exit: no atexit
def test_prefects_objects_are_left_out_of_garbage_collections_once_its_server_is_imported(
    pytester: pytest.Pytester,
) -> None:
    """A full collection walked the million objects of Prefect's server each time (about 0.3 s, a
    few times a session and twice in pytest's last collections), and again at exit: frozen once
    imported, and everything at exit; a session that starts no server is as before."""
    # Python 3.12 starts with a few hundred objects frozen already (375 on 3.12.1, 0 on 3.11)
    at_start = subprocess.run(
        [sys.executable, "-c", "import gc; print(gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makeconftest(
        """
        import atexit, gc, pathlib

        # registered before the plugin's own exit hook, so it runs after it
        atexit.register(lambda: pathlib.Path("at_exit.txt").write_text(str(gc.get_freeze_count())))
        """
    )
    pytester.makepyfile(
        test_plain=f"import gc\n\ndef test_plain():\n    assert gc.get_freeze_count() == {at_start}\n",
        test_flow="import gc\nfrom flows import small\n\n"
        "def test_flow():\n    assert small() == 6\n    assert gc.get_freeze_count() > 100_000\n",
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py").assert_outcomes(passed=1)
    assert (pytester.path / "at_exit.txt").read_text() == at_start
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_flow.py").assert_outcomes(passed=1)
    assert int((pytester.path / "at_exit.txt").read_text()) > 100_000


def test_a_known_flow_is_not_created_again_and_a_changed_one_is_read_again(pytester: pytest.Pytester) -> None:
    """Prefect's engine asks the API to create the flow before every run; for a flow that exists the
    API returns the stored row unchanged, which the backend then answers without the database, until
    anything may have changed a flow (an update, a delete, `isolation="test"`)."""
    pytester.makepyfile(flows=FLOW_MODULE)
    pytester.makepyfile(
        """
        import pytest
        import prefect.server.models.flows as flow_models

        from flows import small

        @pytest.fixture
        def created(monkeypatch):
            calls = []
            create_flow = flow_models.create_flow

            async def counted(*args, **kwargs):
                calls.append(kwargs["flow"].name)
                return await create_flow(*args, **kwargs)

            monkeypatch.setattr(flow_models, "create_flow", counted)
            return calls

        def test_runs_of_one_flow(created, prefect_harness):
            for _ in range(3):
                assert small() == 6
            assert created == ["small"], "only the first run's request reached Prefect's route"
            with prefect_harness.sync_client() as client:
                flow_id = client.read_flow_by_name("small").id
                for _ in range(2):
                    answer = client._client.post("/flows/", json={"name": "small"})
                    assert answer.status_code == 200
                    assert answer.json() == client._client.get(f"/flows/{flow_id}").json()
                asked = len(created)
                client._client.patch(f"/flows/{flow_id}", json={"tags": ["changed"]}).raise_for_status()
                assert client._client.post("/flows/", json={"name": "small"}).json()["tags"] == ["changed"]
                assert len(created) == asked + 1
                client.delete_flow(flow_id)
            assert small() == 6, "a deleted flow is created again"
            assert len(created) == asked + 2
            with prefect_harness.sync_client() as client:
                assert client.read_flow_by_name("small").id != flow_id

        @pytest.mark.prefect(isolation="test")
        def test_an_emptied_api(created, prefect_harness):
            assert small() == 6
            assert created == ["small"]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
