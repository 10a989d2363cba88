"""The report puts several agents' runs of one plan side by side: a column per run, a row per
item, and the runs' totals (tokens, calls, verdicts) in the same columns."""

from __future__ import annotations

from executor.core.errors import ErrorClass, ErrorSignature
from executor.core.journal import Attempt, Journal, RunStatus, Usage, write_json_atomic
from executor.core.task import Plan, PlanItem
from executor.records.state import RunKey, StateLayout, merge_run_plan
from executor.views.report.build import build_report
from executor.views.report.render import render_html, render_markdown
from executor.views.report.side_by_side import side_by_side

ITEMS = ("demo-0000", "demo-0001", "demo-0002")


def write_run(root, agent: str, model: str, statuses: dict[str, RunStatus], calls: int):
    """One run of the three-item plan by `agent`; items absent from `statuses` never ran."""
    key = RunKey(task="demo", agent=agent, model=model, run_id=f"sbs-{agent}")
    layout = StateLayout(root=root)
    merge_run_plan(layout.plan_path(key), Plan(
        repo=str(root / "nowhere"), task_id="demo",
        items=[PlanItem(item_id=i, human="a" * 40) for i in ITEMS]))
    for item_id, status in statuses.items():
        attempt = Attempt(attempt=1, status=status, usage=Usage(
            input_tokens=1000 * calls, output_tokens=10 * calls, llm_calls=calls))
        if status != RunStatus.SUCCESS:
            attempt.signature = ErrorSignature(name="quota_exhausted",
                                               error_class=ErrorClass.PERMANENT,
                                               evidence="429 insufficient_quota", source="gateway")
        attempt.finished_at = attempt.started_at
        write_json_atomic(layout.journal_path(key, item_id), Journal(
            task_id="demo", item_id=item_id, run_id=key.run_id, agent=agent, model=model,
            commits={"base": "b" * 40, "human": "a" * 40}, attempts=[attempt]))
    return key


def test_five_agents_on_one_plan_are_columns_of_one_table(tmp_path):
    ok = {i: RunStatus.SUCCESS for i in ITEMS}
    for n, agent in enumerate(("trae", "mini-swe-agent", "claude-code", "codex")):
        write_run(tmp_path, agent, "claude-sonnet-4-5" if agent == "claude-code" else "m", ok,
                  calls=2 + n)
    write_run(tmp_path, "openhands", "m",
              {"demo-0000": RunStatus.SUCCESS, "demo-0001": RunStatus.AGENT_ERROR}, calls=1)
    report = build_report(tmp_path, human_diffs=False)
    sbs = side_by_side(report)
    assert sbs is not None
    agents = [c.agent for c in sbs.runs]
    assert sorted(agents) == ["claude-code", "codex", "mini-swe-agent", "openhands", "trae"]
    oh = agents.index("openhands")
    assert (sbs.runs[oh].done, sbs.runs[oh].failed, sbs.runs[oh].planned) == (1, 1, 3)
    codex = sbs.runs[agents.index("codex")]
    assert (codex.llm_calls, codex.input_tokens) == (3 * 5, 3 * 5000)
    assert [row.item_id for row in sbs.items] == list(ITEMS)
    assert sbs.items[1].cells[oh] == "failed (quota_exhausted)"
    assert sbs.items[2].cells[oh] == "remaining"
    assert sbs.items[0].cells[agents.index("trae")] == "succeeded"
    md = render_markdown(report)
    table = md.split("## Runs side by side", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    # One header, one rule, nine summary rows, three items: every row as wide as the header.
    assert len(rows) == 2 + 9 + 3
    assert {row.count(" | ") for row in rows if not row.startswith("|---")} == {5}
    assert "| model calls | " in table and "failed (quota_exhausted)" in table
    html = render_html(report)
    assert 'id="side-by-side"' in html and html.count("<th>openhands</th>") == 1


def test_one_run_or_runs_of_other_plans_get_no_side_by_side(tmp_path):
    write_run(tmp_path, "trae", "m", {"demo-0000": RunStatus.SUCCESS}, calls=2)
    report = build_report(tmp_path, human_diffs=False)
    assert side_by_side(report) is None
    assert "Runs side by side" not in render_markdown(report)
    assert 'id="side-by-side"' not in render_html(report)
