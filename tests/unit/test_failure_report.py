"""The failure report's text helpers, without pytest sessions."""

from __future__ import annotations

from pytest_prefect_flows._failure_report import MIN_REPEATED, SAME_AS_ABOVE, cap_repeats

LONG = "HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded " + "x" * MIN_REPEATED


def test_a_long_error_is_written_out_once_then_referred_to() -> None:
    text = f'retry 1: Error("{LONG}")\nretry 2: Error("{LONG}")\nfinal: {LONG}'

    assert cap_repeats(text, [LONG]) == (
        f'retry 1: Error("{LONG}")\nretry 2: Error("{SAME_AS_ABOVE}")\nfinal: {SAME_AS_ABOVE}'
    )


def test_a_short_error_and_text_without_the_error_stay_as_they_are() -> None:
    text = "ValueError('bad row')\nValueError('bad row')"

    assert cap_repeats(text, ["bad row", LONG]) == text
