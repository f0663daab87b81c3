"""Self-contained HTML page of a flow-coverage report: inline CSS and SVG, no external resources.

The summary table (one row per flow/task) is followed, per test, by a timeline of its flow and task
runs: one bar per attempt, coloured by the state the attempt ended in, so retries and failures show
at a glance.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from pytest_prefect_flows.coverage.report import hook_errors

STATE_COLOURS = {
    "Completed": "#2f9e5b",
    "Cached": "#3b7dd8",
    "Failed": "#d64545",
    "Crashed": "#7a1f3d",
    "Cancelled": "#8a8a8a",
    "AwaitingRetry": "#f0a030",
    "Retrying": "#f0a030",
    "Retried": "#f0a030",
    "TimedOut": "#d64545",
}
OTHER_COLOUR = "#b8c0cc"
LEGEND = [
    ("Completed", "Completed"),
    ("Cached", "Cached"),
    ("AwaitingRetry", "Failed, then retried"),
    ("Failed", "Failed"),
    ("Crashed", "Crashed"),
    ("Cancelled", "Cancelled"),
]

CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px;
       color: #1f2933; background: #f7f8fa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #52606d; margin-bottom: 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #e1e5ea; border-radius: 8px; padding: 10px 16px;
        min-width: 130px; }
.card b { display: block; font-size: 20px; }
.pass { color: #2f9e5b; } .fail { color: #d64545; }
table { border-collapse: collapse; background: #fff; border: 1px solid #e1e5ea; width: 100%; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eef1f4; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.notrun td { color: #9aa5b1; }
.badge { display: inline-block; white-space: nowrap; border-radius: 9px; padding: 0 7px; margin: 1px 2px;
         color: #fff; font-size: 12px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px;
            vertical-align: -2px; }
details { background: #fff; border: 1px solid #e1e5ea; border-radius: 8px; margin: 8px 0; padding: 6px 12px; }
summary { cursor: pointer; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
svg text { font: 12px ui-monospace, Menlo, Consolas, monospace; fill: #1f2933; }
svg .axis { stroke: #d5dbe1; } svg .tick { fill: #7b8794; font-size: 11px; }
details.tests { border: 0; margin: 0; padding: 0; background: none; font-size: 12px; }
details.tests summary { font-family: inherit; }
td { white-space: nowrap; } td:nth-child(6) { white-space: normal; }
ul.problems li { font-family: ui-monospace, Menlo, Consolas, monospace; }
"""

LABEL_WIDTH = 300
CHART_WIDTH = 560
STATE_WIDTH = 210
ROW_HEIGHT = 22


def write_html(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")


def render_html(report: dict[str, Any]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Prefect flow coverage</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Prefect flow coverage</h1>",
        f'<div class="meta">{escape(_paths_text(report))} &middot; '
        f"generated {escape(report['generated_at'])}</div>",
        _cards(report),
        _unreadable(report),
        _gates(report),
        _problems(report),
        _hook_errors(report),
        "<h2>Flows and tasks</h2>",
        _table(report),
        "<h2>Runs per test</h2>",
        _legend(),
        *(_test_section(test) for test in report["tests"]),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _paths_text(report: dict[str, Any]) -> str:
    if report["flow_paths"]:
        return "flow paths: " + ", ".join(report["flow_paths"])
    return "no prefect_flow_paths configured: flows and tasks that ran"


def _cards(report: dict[str, Any]) -> str:
    summary = report["summary"]
    cards = []
    if report["flow_paths"] and summary["tasks_discovered"]:
        cards.append((f"{summary['tasks_run']}/{summary['tasks_discovered']}", "tasks run"))
        cards.append((f"{summary['task_coverage_percent']:g}%", "task coverage"))
    if report["flow_paths"] and summary["flows_discovered"]:
        cards.append((f"{summary['flows_run']}/{summary['flows_discovered']}", "flows run"))
    cards += [
        (str(summary["flow_runs"]), "flow runs"),
        (str(summary["task_runs"]), "task runs"),
        (str(summary["tests_with_runs"]), "tests with runs"),
    ]
    body = "".join(f'<div class="card"><b>{escape(value)}</b>{escape(label)}</div>' for value, label in cards)
    return f'<div class="cards">{body}</div>'


def _unreadable(report: dict[str, Any]) -> str:
    files = report.get("unreadable", [])
    if not files:
        return ""
    rows = "".join(
        f'<li><b class="fail">UNREADABLE</b> {escape(file["path"])}: {escape(file["error"])}</li>'
        for file in files
    )
    return f'<h2>Files that could not be read</h2><ul class="problems">{rows}</ul>'


def _gates(report: dict[str, Any]) -> str:
    if not report["gates"]:
        return ""
    rows = "".join(
        f'<li><b class="{_passed_css(gate["passed"])}">{_passed_text(gate["passed"])}</b> '
        f"<code>{escape(gate['option'])}</code>: {escape(gate['message'])}</li>"
        for gate in report["gates"]
    )
    return f"<h2>Gates</h2><ul>{rows}</ul>"


def _passed_css(passed: bool) -> str:
    return "pass" if passed else "fail"


def _passed_text(passed: bool) -> str:
    return "PASSED" if passed else "FAILED"


def _problems(report: dict[str, Any]) -> str:
    check = report["import_check"]
    if check is None:
        return ""
    if check["passed"]:
        return (
            f'<h2>Import check</h2><p class="pass">{check["modules"]} modules and {check["flows"]} flows: '
            "imported, schemas built, deployable.</p>"
        )
    items = "".join(
        f"<li>{escape(problem['path'])} {escape(problem['object'] or '')} "
        f"<b>{escape(problem['check'])}</b>: {escape(problem['message'])}</li>"
        for problem in check["problems"]
    )
    return f'<h2 class="fail">Import check failed</h2><ul class="problems">{items}</ul>'


def _hook_errors(report: dict[str, Any]) -> str:
    errors = hook_errors(report)
    if not errors:
        return ""
    items = "".join(
        f"<li>{escape(nodeid)}: hook <b>{escape(error['hook'])}</b> of {escape(error['kind'])} run "
        f"{escape(error['run'])} raised {escape(error['error'])}</li>"
        for nodeid, error in errors
    )
    return (
        f'<h2 class="fail">State hooks that raised ({len(errors)})</h2>'
        "<p>Prefect logged these and kept the runs' states.</p>"
        f'<ul class="problems">{items}</ul>'
    )


def _table(report: dict[str, Any]) -> str:
    columns = ("kind", "name", "defined at", "runs", "states reached", "tests", "lines")
    head = "<tr>" + "".join(f"<th>{column}</th>" for column in columns) + "</tr>"
    rows = [_table_row(item) for item in [*report["flows"], *report["tasks"]]]
    return f"<table>{head}{''.join(rows)}</table>"


def _table_row(item: dict[str, Any]) -> str:
    where = f"{item['path']}:{item['line']}" if item["path"] else item["module"]
    states = "".join(_badge(state, f"{state} {count}") for state, count in item["states"].items())
    coverage = item["line_coverage"]
    lines = "" if not coverage or coverage["percent"] is None else f"{coverage['percent']:g}%"
    tests = _tests_cell(item["tests"])
    css = "" if item["runs"] else ' class="notrun"'
    runs = str(item["runs"]) if item["runs"] else "not run"
    return (
        f"<tr{css}><td>{item['kind']}</td><td>{escape(item['name'])}</td><td>{escape(where)}</td>"
        f'<td class="num">{runs}</td><td>{states}</td><td>{tests}</td><td class="num">{lines}</td></tr>'
    )


def _tests_cell(nodeids: list[str]) -> str:
    if not nodeids:
        return ""
    listed = "<br>".join(escape(nodeid) for nodeid in nodeids)
    plural = "s" if len(nodeids) > 1 else ""
    return f'<details class="tests"><summary>{len(nodeids)} test{plural}</summary>{listed}</details>'


def _badge(state: str, text: str) -> str:
    colour = STATE_COLOURS.get(state, OTHER_COLOUR)
    return f'<span class="badge" style="background:{colour}">{escape(text)}</span>'


def _legend() -> str:
    entries = "".join(
        f'<span><i style="background:{STATE_COLOURS[state]}"></i>{escape(text)}</span>'
        for state, text in LEGEND
    )
    return f'<div class="legend">{entries}</div>'


def _test_section(test: dict[str, Any]) -> str:
    outcome = test["outcome"]
    css = "pass" if outcome == "passed" else "fail" if outcome == "failed" else ""
    return (
        f'<details open><summary><b class="{css}">{escape(outcome)}</b> {escape(test["nodeid"])}</summary>'
        f"{''.join(map(_sweep_table, test.get('sweeps', [])))}{timeline_svg(test['flow_runs'])}"
        f"{_artifacts(test['flow_runs'])}</details>"
    )


def _sweep_table(sweep: dict[str, Any]) -> str:
    """A fault sweep (`fault_sweep`): one row per point, failing ones in red."""
    head = "<tr><th>point</th><th>fault run</th><th>rerun</th><th>result</th></tr>"
    rows = "".join(
        f"<tr><td>{escape(point['point'])}</td><td>{escape(point['fault_run'] or '-')}</td>"
        f"<td>{escape(point['rerun'] or '-')}</td>"
        f'<td class="{_passed_css(point["problem"] is None)}">{escape(point["problem"] or "ok")}</td></tr>'
        for point in sweep["points"]
    )
    return f"<p>{escape(sweep['summary'])}</p><table>{head}{rows}</table>"


def _artifacts(flow_runs: list[dict[str, Any]]) -> str:
    """The artifacts the test's runs created: type, key, the run that created it, description."""
    items = []
    for artifact, flow_run in _each_artifact(flow_runs):
        creator = artifact["task_run"] or flow_run
        text = f"{escape(str(artifact['type']))} <b>{escape(str(artifact['key']))}</b> from {escape(creator)}"
        if artifact["description"]:
            text += f": {escape(artifact['description'])}"
        items.append(f"<li>{text}</li>")
    return f'<ul class="artifacts">{"".join(items)}</ul>' if items else ""


def _each_artifact(flow_runs: list[dict[str, Any]]) -> Any:
    for flow_run in flow_runs:
        for artifact in flow_run.get("artifacts", []):
            yield artifact, flow_run["name"]
        yield from _each_artifact(flow_run["subflows"])


def timeline_svg(flow_runs: list[dict[str, Any]]) -> str:
    """One row per flow/subflow/task run, one bar per attempt, on a shared time axis."""
    rows = list(_timeline_rows(flow_runs, depth=0))
    span = max((segment["end"] for run, _ in rows for segment in run["attempts"]), default=0.0) or 0.001
    height = ROW_HEIGHT * (len(rows) + 1) + 4
    width = LABEL_WIDTH + CHART_WIDTH + STATE_WIDTH
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    parts += _axis(span, height)
    for index, (run, depth) in enumerate(rows):
        parts += _timeline_row(run, depth, ROW_HEIGHT * (index + 1), span)
    parts.append("</svg>")
    return "".join(parts)


def _timeline_rows(flow_runs: list[dict[str, Any]], depth: int) -> Any:
    for flow_run in flow_runs:
        yield flow_run, depth
        children = [*flow_run["task_runs"], *flow_run["subflows"]]
        children.sort(key=lambda run: run["attempts"][0]["start"] if run["attempts"] else 0.0)
        for child in children:
            if child["kind"] == "flow":
                yield from _timeline_rows([child], depth + 1)
            else:
                yield child, depth + 1


def _axis(span: float, height: int) -> list[str]:
    parts = []
    for step in range(5):
        x = LABEL_WIDTH + CHART_WIDTH * step / 4
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height}"/>')
        parts.append(f'<text class="tick" x="{x + 2:.1f}" y="11">{_seconds(span * step / 4)}</text>')
    return parts


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _timeline_row(run: dict[str, Any], depth: int, y: int, span: float) -> list[str]:
    prefix = "▸ " if run["kind"] == "flow" else "  "
    label = "  " * depth + prefix + run["label"]
    parts = [f'<text x="4" y="{y + 15}" xml:space="preserve">{escape(_clip(label, 38))}</text>']
    for segment in run["attempts"]:
        x = LABEL_WIDTH + CHART_WIDTH * segment["start"] / span
        bar = max(CHART_WIDTH * (segment["end"] - segment["start"]) / span, 3.0)
        colour = STATE_COLOURS.get(segment["state"], OTHER_COLOUR)
        tip = (
            f"{run['name']} attempt {segment['attempt']}: {segment['state']} at +{segment['start']:.3f}s "
            f"for {segment['end'] - segment['start']:.3f}s"
            + (f" ({segment['message']})" if segment.get("message") else "")
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{bar:.1f}" height="{ROW_HEIGHT - 8}" rx="2" '
            f'fill="{colour}" stroke="#fff" stroke-width="1"><title>{escape(tip)}</title></rect>'
        )
    attempts = len(run["attempts"])
    final = f"{run['state']}" + (f" ({attempts} attempts)" if attempts > 1 else "")
    colour = STATE_COLOURS.get(run["state"] or "", "#52606d")
    parts.append(
        f'<text x="{LABEL_WIDTH + CHART_WIDTH + 10}" y="{y + 15}" style="fill:{colour}">'
        f"{escape(final)}</text>"
    )
    return parts


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
