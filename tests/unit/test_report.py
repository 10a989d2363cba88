"""`isobench report` and predictions on synthetic state (no Docker): counts, aggregates,
optional results.json sections, side by side, and the predictions round trip on disk."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

from click.testing import CliRunner

from executor.cli import cli
from executor.views.export_predictions import export_predictions
from executor.core.journal import Attempt, Journal, RunStatus, write_json_atomic
from executor.records.predictions import (Prediction, load_predictions, plan_patches, prediction_for,
                                  write_predictions)
from executor.views.report.build import build_report
from executor.views.report.render import render_html, render_markdown, write_report
from executor.records.state import RunKey, StateLayout, merge_run_plan
from executor.core.task import Plan, PlanItem, load_plan
from tests.unit.isobench_state import PATCH, PLAN, write_isobench_state


def _results(item_id: str, agent_speedup: float, human_speedup: float, *, aa: float | None,
             extra: dict | None = None) -> dict:
    """A results.json as the benchmark writes it, plus fields newer versions add."""
    def decision(s, verdict):
        return {"verdict": verdict, "comparison": {"speedup": s, "ci_low": s * 0.97,
                                                   "ci_high": s * 1.03}}
    comparisons = {"agent/base": decision(agent_speedup, "improved"),
                   "human/base": decision(human_speedup, "improved"),
                   "agent/human": decision(agent_speedup / human_speedup, "no_change")}
    if aa is not None:
        comparisons["base2/base"] = decision(aa, "no_change")
    trials = [{"index": i, "block": i // 3, "variant": v, "warmup": False, "ok": True,
               "value": {"base": 10.0, "human": 10.0 / human_speedup,
                         "agent": 10.0 / agent_speedup}[v] * (1 + 0.01 * i),
               "gpu": {"name": "H100", "sm_clock_mhz": 1980, "temperature_c": 41}}
              for i, v in enumerate(["base", "human", "agent"] * 3)]
    return {"schema_version": 1, "item_id": item_id,
            "commits": {"base": "b" * 40, "human": "h" * 40},
            "metric": {"name": "latency", "unit": "s", "lower_is_better": True},
            "seed": 0, "trials_per_variant": 3, "warmup_blocks": 0, "variants": {},
            "trials": trials, "analysis": {"comparisons": comparisons},
            "verdict": "matches_human" if agent_speedup >= 0.95 * human_speedup else "improved",
            "verdict_reason": "agent/base speedup ...", **(extra or {})}


def write_measured_run(root, run_id="r1", speedups=(1.30, 1.10, 0.98)):
    key = RunKey(task="demo", agent="trae", model="gpt-5", run_id=run_id)
    layout = StateLayout(root=root)
    plan = Plan(repo=str(root / "nowhere"), task_id="demo",
                items=[PlanItem(item_id=f"demo-{n:04d}", human=f"{n}" * 40)
                       for n in range(len(speedups))])
    merge_run_plan(layout.plan_path(key), plan)
    for n, s in enumerate(speedups):
        item_id = f"demo-{n:04d}"
        attempt = Attempt(attempt=1, status=RunStatus.SUCCESS)
        attempt.finished_at = attempt.started_at
        write_json_atomic(layout.journal_path(key, item_id), Journal(
            task_id="demo", item_id=item_id, run_id=run_id, agent="trae", model="gpt-5",
            commits={"base": "b" * 40, "human": f"{n}" * 40}, attempts=[attempt]))
        item_dir = layout.item_dir(key, item_id)
        extra = {"integrity": {"findings": ["touched benchmarks/"], "suspect": False}} \
            if n == 0 else None
        write_json_atomic(item_dir / "results.json",
                          _results(item_id, s, 1.25, aa=1.004 if n < 2 else None, extra=extra))
        (item_dir / "model_patch.diff").write_text(PATCH if n != 1 else PATCH + "\n")
    return key


def test_report_counts_the_isobench_layout_right(tmp_path):
    state = write_isobench_state(tmp_path)
    report = build_report(state, plan=load_plan(tmp_path / "plan.json"), human_diffs=True)
    runs = {r.agent: r for r in report.runs}
    trae = runs["trae"]
    assert (trae.planned, trae.done, trae.patch_kept, trae.failed, trae.unknown,
            trae.remaining) == (6, 3, 1, 0, 0, 3)
    assert (runs["claude_code"].done, runs["claude_code"].unknown) == (1, 1)
    assert report.unreadable and "vllm_core-0004" in report.unreadable[0]
    commits = {c.item_id: c for c in trae.commits}
    # The kept patch is shown; the human diff says why it is absent (a URL, not a checkout).
    assert commits["vllm_core-0002"].agent_diff.text == PATCH
    assert "not a local checkout" in commits["vllm_core-0002"].human_diff.note
    steps = commits["vllm_core-0002"].steps
    assert [s.number for s in steps] == [1, 2, 3] and "No tool output" in steps[2].error
    assert commits["vllm_core-0001"].signature == "rate_limit"
    assert runs["claude_code"].commits[1].trajectory_note == "this agent wrote no trajectory"
    html = render_html(report)
    assert "1 journal(s) could not be read" in html
    md = render_markdown(report)
    assert "| 6 | 3 | 1 | 0 | 0 | 3 |" in md


def test_aggregates_noise_floor_and_optional_sections(tmp_path):
    write_measured_run(tmp_path)
    (run,) = build_report(tmp_path).runs
    ag = run.aggregate
    assert ag.measured == 3 and ag.share_improved.estimate == 1.0
    # GSO's rule: 1.30 and 1.10... only 1.30 >= 0.95 * 1.25.
    assert abs(ag.share_matching_human.estimate - 1 / 3) < 1e-9
    geo = (1.30 * 1.10 * 0.98) ** (1 / 3)
    assert abs(ag.geomean_agent_vs_base.estimate - geo) < 1e-9
    assert ag.geomean_agent_vs_base.low <= geo <= ag.geomean_agent_vs_base.high
    assert run.noise_floor.controls == 2 and run.noise_floor.max_abs_pct == 0.4
    first = run.commits[0]
    assert first.extras["integrity"]["findings"] == ["touched benchmarks/"]
    assert "integrity" not in run.commits[1].extras  # absent stays absent
    assert first.trials[0].gpu["name"] == "H100"
    html = render_html(build_report(tmp_path))
    assert html.count('data-plot="trials"') == 3 and html.count('data-plot="forest"') == 1
    assert "touched benchmarks/" in html and "sm_clock_mhz" in html
    # Self-contained: nothing is fetched when it opens.
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_compare_two_runs_and_the_three_files(tmp_path):
    write_measured_run(tmp_path, "r1")
    write_measured_run(tmp_path, "r2", speedups=(1.30, 0.90, 0.98))
    out = CliRunner().invoke(cli, ["report", str(tmp_path), "--run-id", "r1", "--compare", "r2",
                                   "-o", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    cmp = data["comparison"]
    assert [r["same_patch"] for r in cmp["rows"]] == [True, True, True]
    assert [r["right_speedup"] for r in cmp["rows"]] == [1.30, 0.90, 0.98]
    assert "Side by side" in (tmp_path / "out" / "report.md").read_text()
    bad = CliRunner().invoke(cli, ["report", str(tmp_path), "--run-id", "r1", "--compare",
                                   "nope", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no run matches 'nope'" in bad.output


def test_human_diff_from_a_local_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (repo / "f.py").write_text("slow = True\n")
    git("add", "."), git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    (repo / "f.py").write_text("slow = False\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "human")
    human = git("rev-parse", "HEAD")
    from executor.views.report.evidence import human_diff
    diff = human_diff(str(repo), f"{human}^1", human)
    assert "+slow = False" in diff.text and diff.sha256


def test_predictions_export_read_and_match(tmp_path):
    state = write_isobench_state(tmp_path)
    plan = load_plan(tmp_path / "plan.json")
    found, notes = export_predictions(state, run_ids=("vllm_core/trae/gpt-5",), plan=plan)
    assert [p.instance_id for p in found] == ["vllm_core-0000", "vllm_core-0002",
                                              "vllm_core-0003"]
    assert all(p.sha256 == hashlib.sha256(PATCH.encode()).hexdigest() for p in found)
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, found)
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"instance_id", "model_name_or_path", "model_patch", "human_commit"}
    back = load_predictions(path)
    assert back == found
    # A plan with other item ids finds them by human commit; ISO-Bench's own instance ids
    # ('vllm-project__vllm-<sha7>') match too.
    other = [PlanItem(item_id=f"x-{n}", human=PLAN.items[n].human) for n in (0, 1)]
    chosen, missing = plan_patches(back, other)
    assert list(chosen) == ["x-0"] and missing == ["x-1"]
    iso = Prediction(instance_id=f"vllm-project__vllm-{PLAN.items[1].human[:7]}",
                     model_name_or_path="gpt-5", model_patch=PATCH)
    assert prediction_for([iso], "anything", PLAN.items[1].human) is iso
    # A run directory works as predictions too: every non-empty patch in it (0004's too:
    # its journal is unreadable, its patch is not).
    from_dir = load_predictions(state / "runs" / "vllm" / "trae" / "gpt-5")
    assert {p.instance_id for p in from_dir} == {f"vllm_core-{n:04d}" for n in range(5)}
    cli_out = CliRunner().invoke(cli, ["export-predictions", str(state), "--plan",
                                       str(tmp_path / "plan.json"), "-o", str(path)])
    assert cli_out.exit_code == 0 and "4 prediction(s)" in cli_out.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instance_id": "a"}\n')
    out = CliRunner().invoke(cli, ["export-predictions", str(tmp_path / "empty")])
    assert out.exit_code == 2
    from executor.core.errors import UserInputError
    try:
        load_predictions(bad)
    except UserInputError as exc:
        assert "bad.jsonl:1" in str(exc) and "model_name_or_path" in str(exc)
    else:
        raise AssertionError("a line without a patch was accepted")


def test_write_report_files(tmp_path):
    write_measured_run(tmp_path)
    written = write_report(build_report(tmp_path), tmp_path / "out")
    assert sorted(written) == ["report.html", "report.json", "report.md"]
    assert json.loads(written["report.json"].read_text())["runs"][0]["aggregate"]["measured"] == 3
