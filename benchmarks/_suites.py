"""What the benchmarks that generate a test suite share: its flows module and the native harness."""

THREE_TASK_FLOWS = """
from prefect import flow, task


@task
def step(x):
    return x + 1


@flow
def three_tasks():
    return sum(step(i) for i in range(3))
"""

# A conftest's session fixture: with BENCH_NATIVE set, the suite runs under Prefect's own harness.
NATIVE_HARNESS_FIXTURE = """
@pytest.fixture(scope="session", autouse=True)
def native_harness():
    if not os.environ.get("BENCH_NATIVE"):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield
"""
