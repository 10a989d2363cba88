"""The report opens with one table of every run, names the fix of each item left for a rerun,
and keeps report.html small when a state holds many commits (each commit's evidence on its own
page)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from executor.cli import cli
from executor.views.report import render
from executor.views.report.build import build_report
from tests.unit.isobench_state import write_isobench_state
from tests.unit.test_report import write_measured_run
from tests.unit.test_status import write_isobench


def test_the_overview_of_every_run_comes_before_the_run_sections(tmp_path):
    state = write_isobench_state(tmp_path)
    write_measured_run(state)
    report = build_report(state)
    html = render.render_html(report)
    overview = html.index('<section id="overview">')
    first_run = html.index('<section id="run-0"')
    assert overview < first_run
    table = html[overview:first_run]
    rows = re.findall(r'<tr><td><a href="#run-(\d+)">(.*?)</a>', table)
    assert [int(n) for n, _ in rows] == list(range(len(report.runs))) and len(rows) == 3
    assert {t for _, t in rows} == {r.title for r in report.runs}
    md = render.render_markdown(report)
    assert md.index("## Overview") < md.index(f"## {report.runs[0].title}")


def test_a_failure_the_user_can_fix_shows_its_fix(tmp_path):
    state = write_isobench(tmp_path)
    report = build_report(state, human_diffs=False)
    (run,) = report.runs
    assert (run.failed, run.remaining, run.fixable) == (5, 0, 3)
    fixes = {c.item_id: c.fix for c in run.commits if c.fix}
    assert fixes["vllm_core-0004"].startswith("a retry of a truncated response")
    html = render.render_html(report)
    assert "to rerun rerun without must-patch" in html
    assert '<td class="n">5 (3)</td>' in html  # failed (to fix) in the overview


def test_many_commits_get_pages_of_their_own(tmp_path, monkeypatch):
    write_measured_run(tmp_path)
    monkeypatch.setattr(render, "INLINE_COMMITS", 2)  # three commits: over the limit
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "Agent diff" not in html and 'data-plot="trials"' not in html
    links = re.findall(r'<a href="(commits/[^"]+\.html)">(demo-\d+)</a>', html)
    assert [item for _, item in links] == ["demo-0000", "demo-0001", "demo-0002"]
    for link, item in links:
        page = (out / link).read_text()
        assert f"<h1>{item}" in page and "Agent diff" in page and "slow = False" in page
        assert 'data-plot="trials"' in page and 'href="../style.css"' in page
        assert 'href="../../report.html#run-0"' in page
    assert (out / "commits" / "style.css").read_text().lstrip().startswith(":root")
    assert not re.search(r'(src|href)="(https?:)?//', html + page)
    # A smaller report in the same place inlines its evidence and leaves no stale pages.
    monkeypatch.setattr(render, "INLINE_COMMITS", 60)
    assert CliRunner().invoke(cli, ["report", str(tmp_path), "-o", str(out)]).exit_code == 0
    assert not (out / "commits").exists() and "Agent diff" in (out / "report.html").read_text()
