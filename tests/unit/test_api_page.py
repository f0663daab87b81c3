"""docs/api.md names every public name, ini option, marker keyword and fixture: a new one without a
line on that page fails here, with the list of what is missing."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from _pytest.fixtures import getfixturemarker

import pytest_prefect_flows
from pytest_prefect_flows import plugin
from pytest_prefect_flows._options import OPTIONS, MarkerOptions

API_PAGE = Path(__file__).parents[2] / "docs" / "api.md"


def _public_fixtures() -> list[str]:
    names = []
    for attribute, value in vars(plugin).items():
        marker = getfixturemarker(value)
        if marker is not None:
            names.append(marker.name or attribute)
    return [name for name in names if not name.startswith("_")]


def _missing(page: str) -> dict[str, list[str]]:
    quoted = set(re.findall(r"`([^`]+)`", page))
    named = {word for text in quoted for word in re.findall(r"\w+", text)}
    keywords = set(re.findall(r"(\w+)=", page))
    return {
        "names of pytest_prefect_flows.__all__": [n for n in pytest_prefect_flows.__all__ if n not in named],
        "ini options (_options.OPTIONS)": [name for name in OPTIONS if name not in named],
        "keywords of @pytest.mark.prefect (MarkerOptions), as `keyword=...`": [
            field.name for field in dataclasses.fields(MarkerOptions) if field.name not in keywords
        ],
        "fixtures (plugin.py)": [name for name in _public_fixtures() if name not in named],
    }


def test_the_api_page_names_every_public_name_option_marker_keyword_and_fixture() -> None:
    missing = {kind: names for kind, names in _missing(API_PAGE.read_text()).items() if names}

    assert not missing, (
        "docs/api.md does not mention:\n"
        + "\n".join(f"- {kind}: {', '.join(names)}" for kind, names in missing.items())
        + "\nAdd each to its table or list on that page (a name missing there counts as unstable)."
    )


def test_the_check_names_what_is_missing() -> None:
    page = re.sub(r"`prefect_events\b[^`]*`", "", API_PAGE.read_text()).replace("hook_errors=...", "")

    missing = _missing(page)

    assert missing["fixtures (plugin.py)"] == ["prefect_events"]
    assert missing["keywords of @pytest.mark.prefect (MarkerOptions), as `keyword=...`"] == ["hook_errors"]
