"""Option values as users write them: a wrong ini, command-line or marker value stops the session
with a usage error (exit code 4) naming the option, the value and what it takes, before any test
runs; booleans given as words mean what they say."""

from __future__ import annotations

import pytest

RAN = """
from pathlib import Path

def test_records_that_it_ran():
    Path("ran").write_text("yes")
"""


@pytest.mark.parametrize(
    ("ini", "error"),
    [
        (
            "prefect_report = xml:out.xml",
            "ERROR: ini option prefect_report: 'xml:out.xml' is not a report; "
            "use term, term-full, json:<path> or html:<path>.",
        ),
        (
            "prefect_fast_retries = perhaps",
            "ERROR: ini option prefect_fast_retries: 'perhaps' is not a boolean; "
            "use true/false, 1/0, yes/no or on/off (any case).",
        ),
        (
            "prefect_gates = some",
            "ERROR: ini option prefect_gates: 'some' is not one of whole-suite, always.",
        ),
        (
            "prefect_timeout = nan",
            "ERROR: ini option prefect_timeout: 'nan' is not a number of seconds >= 0 (0 = no guard); "
            "nan and infinities are refused.",
        ),
    ],
)
def test_a_wrong_ini_value_stops_the_session_before_any_test(
    pytester: pytest.Pytester, ini: str, error: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(RAN)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])
    assert not (pytester.path / "ran").exists()


def test_a_wrong_command_line_value_names_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RAN)
    for args, error in [
        (
            ["--prefect-start=soon"],
            "*argument --prefect-start: invalid choice: 'soon' (choose from *ahead*lazy*)",
        ),
        (["--prefect-timeout=inf"], "*argument --prefect-timeout: 'inf' is not a number of seconds >= 0*"),
        (["--prefect-report=xml"], "*argument --prefect-report: 'xml' is not a report; use term, *"),
    ]:
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines([error])
    assert not (pytester.path / "ran").exists()


def test_help_shows_every_choice_and_default(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(
        [
            "*--prefect-start={ahead,lazy}*",
            "*--prefect-report=term|term-full|json:PATH|html:PATH*",
            "*--prefect-gates={whole-suite,always}*",
            "*--prefect-timeout=SECONDS*",
            "*--prefect-hook-errors={warn,fail,ignore}*",
        ]
    )
    text = "".join(result.stdout.str().split())  # argparse wraps lines, even at a hyphen
    for default in ("(default:ahead)", "(default:whole-suite)", "(default:warn)", "(default:term)"):
        assert default in text


MARKER_MISTAKES = """
import pytest
from pathlib import Path

@pytest.mark.prefect(block_netwrok=True)
def test_misspelt():
    pass

@pytest.mark.prefect(timeout=float("nan"))
class TestNotANumber:
    def test_in_class(self):
        pass

@pytest.mark.prefect(fast_retries="perhaps")
def test_not_a_boolean():
    pass

def test_fine():
    Path("ran").write_text("yes")
"""


def test_marker_mistakes_stop_the_session_at_collection_naming_test_and_keyword(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_marks=MARKER_MISTAKES)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_marks.py::test_misspelt: @pytest.mark.prefect(block_netwrok=...) has no keyword "
            "'block_netwrok'; did you mean 'block_network'? it takes fast_retries, log_level, *",
            "test_marks.py::TestNotANumber::test_in_class: @pytest.mark.prefect(timeout=nan): nan is not "
            "a number of seconds >= 0 (0 = no guard); nan and infinities are refused.",
            "test_marks.py::test_not_a_boolean: @pytest.mark.prefect(fast_retries='perhaps'): 'perhaps' "
            "is not a boolean; use true/false, 1/0, yes/no or on/off (any case).",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "ran").exists()


WORDS = """
import socket
import pytest
from prefect import flow

@flow
def connect_out() -> str:
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=0.01).close()
    except BaseException as exc:
        return type(exc).__name__
    return "connected"

@pytest.mark.prefect(block_network="false")
def test_false_as_a_word_does_not_block(run_flow):
    assert run_flow(connect_out).result() != "NetworkBlockedError"

@pytest.mark.prefect(block_network="Yes")
def test_yes_as_a_word_blocks(run_flow):
    assert run_flow(connect_out).result() == "NetworkBlockedError"
"""


def test_booleans_given_as_words_in_a_marker_mean_what_they_say(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_words=WORDS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "ignore::UserWarning")
    result.assert_outcomes(passed=2)
