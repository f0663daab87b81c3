"""docs/api.md: the plugin's default warnings fail a suite that turns warnings into errors, and the
`filterwarnings` line the page gives keeps such a suite as it was."""

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
    ("filters", "outcome"),
    [
        (["error", "ignore::DeprecationWarning"], {"failed": 1}),
        (
            ["error", "ignore::DeprecationWarning", "ignore::pytest_prefect_flows.PrefectFlowsWarning"],
            {"passed": 1},
        ),
    ],
    ids=["warnings-as-errors", "with-the-documented-ignore"],
)
def test_filterwarnings_error_and_the_documented_ignore(
    pytester: pytest.Pytester, filters: list[str], outcome: dict[str, int]
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\nfilterwarnings =\n" + "".join(f"    {line}\n" for line in filters))

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(**outcome)
    if "failed" in outcome:
        result.stdout.fnmatch_lines(["*HookErrorWarning: 1 state hook(s) raised*"])
