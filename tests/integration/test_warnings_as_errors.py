"""docs/api.md: the plugin's default warnings stay warnings in a suite that turns every warning into
an error, and become errors where a filter names them."""

from __future__ import annotations

import pytest

SUITE = """
from prefect import flow

def log_success(flow, state):  # Prefect 3 calls hook(flow, flow_run, state): this hook raises
    pass

@flow(on_completion=[log_success])
def broken_hook():
    return 1

def test_runs(run_flow):
    assert run_flow(broken_hook).state_name == "Completed"
"""


@pytest.mark.parametrize(
    ("filters", "args", "outcome"),
    [
        (["error", "ignore::DeprecationWarning"], [], {"passed": 1}),
        ([], ["-W", "error", "-W", "ignore::DeprecationWarning"], {"passed": 1}),
        (
            ["error", "ignore::DeprecationWarning", "error::pytest_prefect_flows.HookErrorWarning"],
            [],
            {"failed": 1},
        ),
        (
            ["ignore::DeprecationWarning"],
            ["-W", "error::pytest_prefect_flows.PrefectFlowsWarning"],
            {"failed": 1},
        ),
    ],
    ids=["ini-error-stays-green", "cmdline-error-stays-green", "named-in-ini", "named-on-cmdline"],
)
def test_own_warnings_become_errors_only_where_a_filter_names_them(
    pytester: pytest.Pytester, filters: list[str], args: list[str], outcome: dict[str, int]
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    if filters:
        pytester.makeini("[pytest]\nfilterwarnings =\n" + "".join(f"    {line}\n" for line in filters))

    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)

    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines(["*HookErrorWarning: 1 state hook(s) raised*"])
