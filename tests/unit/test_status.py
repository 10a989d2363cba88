"""`isobench status` on synthetic state: isobench's layout and ISO-Bench's."""

from __future__ import annotations

import json

from click.testing import CliRunner

from executor.cli import cli
from executor.core.errors import ErrorClass
from executor.core.journal import Attempt, Journal, write_json_atomic
from executor.parts.agents.trae_trajectory import MAX_STEPS_RESULT
from executor.records.state import ItemLock, LockHolder, RunKey, StateLayout, merge_run_plan
from executor.views.status import build_report, remaining_plan
from executor.core.task import Plan, PlanItem
from tests.unit.batch_items import scripted_attempt
from tests.unit.trae_fixtures import (genuine_success, isobench_journal, must_patch_death,
                                      step, trajectory, write_isobench_item)

KEY = RunKey(task="demo", agent="trae", model="gpt-5", run_id="r1")
PLAN = Plan(repo="/srv/demo", task_id="demo",
            items=[PlanItem(item_id=f"demo-{n:04d}", human=f"{n:07x}") for n in range(7)])


def write_ours(tmp_path, holder_lock: ItemLock | None = None):
    """Seven planned items: each state the report must tell apart."""
    layout = StateLayout(root=tmp_path)
    merge_run_plan(layout.plan_path(KEY), PLAN)
    scripts = {
        "demo-0000": ["success"],
        "demo-0001": ["rate_limit", "rate_limit", "success"],
        "demo-0002": ["auth"],  # final for the policy, but the user can fix the key
        "demo-0003": ["rate_limit", "rate_limit", "rate_limit", "rate_limit"],  # exhausted
        "demo-0004": ["rate_limit", "running"],  # its controller died
        "demo-0005": ["running"],  # a live controller holds it
    }  # demo-0006: planned, never attempted
    for item_id, outcomes in scripts.items():
        attempts = []
        for n, outcome in enumerate(outcomes, 1):
            attempts.append(Attempt(attempt=n) if outcome == "running"
                            else scripted_attempt(n, outcome, duration_s=60.0 * n))
        journal = Journal(task_id="demo", item_id=item_id, run_id="r1", agent="trae",
                          model="gpt-5", commits={"base": f"{item_id}^1", "human": "x"},
                          attempts=attempts)
        write_json_atomic(layout.journal_path(KEY, item_id), journal)
    # demo-0004: its dead controller left its name in the lock file but holds nothing.
    dead = ItemLock(layout.item_dir(KEY, "demo-0004"))
    dead.path.write_text(LockHolder(host="gone", pid=999999).model_dump_json())
    if holder_lock is not None:
        holder_lock.acquire(LockHolder.me(purpose="r1"))
    return layout


def test_our_layout_counts_every_state(tmp_path):
    live = ItemLock(StateLayout(root=tmp_path).item_dir(KEY, "demo-0005"))
    write_ours(tmp_path, live)
    try:
        report = build_report(tmp_path)
    finally:
        live.release()
    (run,) = report.runs
    assert (run.source, run.task, run.run_id, run.repo) == ("isobench", "demo", "r1", "/srv/demo")
    assert (run.planned, run.attempted, run.succeeded, run.failed, run.running,
            run.remaining, run.fixable) == (7, 6, 2, 2, 1, 3, 1)
    states = {i.item_id: i.state for i in run.items}
    assert states == {"demo-0000": "succeeded", "demo-0001": "succeeded", "demo-0002": "failed",
                      "demo-0003": "failed", "demo-0004": "remaining", "demo-0005": "running",
                      "demo-0006": "remaining"}
    assert "controller is gone" in next(i for i in run.items if i.item_id == "demo-0004").reason
    running = next(i for i in run.items if i.item_id == "demo-0005")
    assert running.holder.endswith(f":{LockHolder.me().pid}")

    assert run.attempts == 12 and run.failed_attempts == 8
    assert run.error_rate == round(8 / 10, 4)  # two attempts are still running
    top = run.most_retried[0]
    assert (top.item_id, top.sequence) == ("demo-0003", ["rate_limit"] * 4)
    assert run.most_retried[1].sequence == ["rate_limit", "rate_limit", "success"]

    names = [(s.name, s.error_class, s.attempts, s.items) for s in run.signatures]
    assert names == [("rate_limit", ErrorClass.RETRYABLE, 7, 3),
                     ("auth", ErrorClass.PERMANENT, 1, 1)]
    assert "429" in run.signatures[0].example

    assert run.usage.input_tokens == 10 * 1000 and run.usage.llm_calls == 20
    assert run.usage.cost_usd == 0.1
    assert run.durations.attempts == 10 and run.durations.max_s == 240.0
    assert run.durations.phases_s == {"agent": 60.0 * (1 + 1 + 2 + 3 + 1 + 1 + 2 + 3 + 4 + 1)}

    assert next(i for i in run.items if i.item_id == "demo-0002").fix.startswith(
        "after the key is fixed")
    assert next(i for i in run.items if i.item_id == "demo-0003").fix is None  # retries used
    left = remaining_plan(run)
    assert [i.item_id for i in left.items] == ["demo-0002", "demo-0004", "demo-0005",
                                               "demo-0006"]
    assert left.repo == "/srv/demo" and left.items[0].pre == ""


def test_status_cli_table_json_markdown_and_remaining_plan(tmp_path):
    write_ours(tmp_path / "state")
    runner = CliRunner()
    table = runner.invoke(cli, ["status", str(tmp_path / "state")], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "rate_limit → rate_limit → success" in table.output
    assert "auth" in table.output and "permanent" in table.output

    as_json = runner.invoke(cli, ["status", str(tmp_path / "state"), "--json"])
    data = json.loads(as_json.output)
    assert data["runs"][0]["succeeded"] == 2 and data["runs"][0]["signatures"][0]["name"] == \
        "rate_limit"

    md = runner.invoke(cli, ["status", str(tmp_path / "state"), "--markdown"])
    assert "| rate_limit | retryable | 7 | 3 |" in md.output
    assert "## demo · trae · gpt-5 · r1 (isobench)" in md.output

    out = tmp_path / "left.json"
    left = runner.invoke(cli, ["status", str(tmp_path / "state"), "--remaining-plan", str(out)])
    assert left.exit_code == 0, left.output
    plan = Plan.model_validate_json(out.read_text())  # the fixes beside it do not hinder
    assert [i.item_id for i in plan.items] == ["demo-0002", "demo-0004", "demo-0005",
                                               "demo-0006"]
    fixes = {i["item_id"]: i.get("fix") for i in json.loads(out.read_text())["items"]}
    assert fixes["demo-0002"].startswith("after the key is fixed") and fixes["demo-0004"] is None
    assert "demo-0002 (auth): after the key is fixed" in left.output
    assert "1 failed, to rerun after a fix; 1 failed for good, not in it" in left.output

    nothing = runner.invoke(cli, ["status", str(tmp_path / "state"), "--task", "other",
                                  "--remaining-plan", str(out)])
    assert nothing.exit_code == 2 and "exactly one run" in nothing.output


def write_isobench(tmp_path):
    """ISO-Bench's layout: two invocations (timestamp dirs), journals that overclaim."""
    runs = tmp_path / "state" / "runs"
    day1, day2 = "2025-11-05_10-00-00", "2025-11-06_09-00-00"
    # 0000: journal says success; the trajectory shows the must-patch death.
    write_isobench_item(runs, day1, "vllm_core-0000",
                        isobench_journal("vllm_core-0000", "success", "015069b0"),
                        must_patch_death(), patch="")
    # 0001: a real success.
    write_isobench_item(runs, day1, "vllm_core-0001",
                        isobench_journal("vllm_core-0001", "success", "0d243f2a"),
                        genuine_success())
    # 0002: 429 on day 1, success on day 2 (their resume re-ran it in a new directory).
    write_isobench_item(runs, day1, "vllm_core-0002",
                        isobench_journal("vllm_core-0002", "error", "0ec82edd"),
                        trajectory([step(1, tool=None, error="Error code: 429 - rate limit "
                                                             "reached")], success=False))
    write_isobench_item(runs, day2, "vllm_core-0002",
                        isobench_journal("vllm_core-0002", "success", "0ec82edd"),
                        genuine_success())
    # 0003: max steps.
    write_isobench_item(runs, day1, "vllm_core-0003",
                        isobench_journal("vllm_core-0003", "max_steps_exceeded", "19d98e0c"),
                        trajectory([step(1)], success=False, final_result=MAX_STEPS_RESULT))
    # 0004: journal says success, exit 0, but tool-call JSON was cut by max_tokens.
    write_isobench_item(runs, day1, "vllm_core-0004",
                        isobench_journal("vllm_core-0004", "success", "22d33bac"),
                        trajectory([step(1), step(2, tool=None, error="JSONDecodeError: "
                                   "Unterminated string starting at: line 1 column 9")],
                                   success=False))
    # 0005: the 400 without the must-patch message: a plain tool_output_missing.
    write_isobench_item(runs, day1, "vllm_core-0005",
                        isobench_journal("vllm_core-0005", "success", "2a052011"),
                        trajectory([step(1), step(2, tool=None, error="Error code: 400 - No "
                                   "tool output found for function call call_1.")],
                                   success=False))
    # 0006: their harness raised before TRAE wrote a trajectory.
    write_isobench_item(runs, day1, "vllm_core-0006",
                        isobench_journal("vllm_core-0006", "error", "2deb029d",
                                         error="401 Unauthorized: Incorrect API key provided",
                                         error_type="AuthenticationError"), None, patch=None)
    return tmp_path / "state"


def test_isobench_layout_true_outcomes_from_trajectories(tmp_path):
    state = write_isobench(tmp_path)
    (run,) = build_report(state).runs
    assert (run.source, run.task, run.agent, run.model) == ("iso-bench", "vllm_core", "trae",
                                                           "gpt-5")
    assert run.runs == ["2025-11-05_10-00-00", "2025-11-06_09-00-00"]
    seq = {i.item_id: i.sequence for i in run.items}
    assert seq == {"vllm_core-0000": ["must_patch_tool_output_missing"],
                   "vllm_core-0001": ["success"],
                   "vllm_core-0002": ["rate_limit", "success"],
                   "vllm_core-0003": ["max_steps"],
                   "vllm_core-0004": ["truncated_tool_json"],
                   "vllm_core-0005": ["tool_output_missing"],
                   "vllm_core-0006": ["auth"]}
    # ISO-Bench called five of these runs success; three of them were not.
    assert run.overturned == ["vllm_core-0000", "vllm_core-0004", "vllm_core-0005"]
    states = {i.item_id: i.state for i in run.items}
    assert states["vllm_core-0002"] == "succeeded"
    # What the user can fix is named (and in the remaining plan); the agent's own outcomes are
    # final. Both failed: the policy would send the same inputs again.
    fixes = {i.item_id: i.fix for i in run.items if i.fix}
    assert set(fixes) == {"vllm_core-0000", "vllm_core-0004", "vllm_core-0006"}
    assert fixes["vllm_core-0000"].startswith("rerun without must-patch")
    assert fixes["vllm_core-0004"].startswith("a retry of a truncated response")
    assert fixes["vllm_core-0006"].startswith("after the key is fixed")
    assert {i.item_id for i in run.items if i.state == "failed" and not i.fix} == {
        "vllm_core-0003", "vllm_core-0005"}
    assert (run.succeeded, run.failed, run.remaining, run.fixable) == (2, 5, 0, 3)
    must = next(s for s in run.signatures if s.name == "must_patch_tool_output_missing")
    assert must.error_class == ErrorClass.PERMANENT and "No tool output found" in must.example
    assert "Not a parallel-tool-call problem" in must.cause
    # Usage is summed from the trajectories' interactions (3 per trajectory, 7 trajectories).
    assert run.usage.llm_calls == 21 and run.usage.input_tokens == 21_000
    assert run.usage.cached_input_tokens == 21 * 200
    # Priced from the default table (gpt-5: $1.25 / $0.125 cached / $10 out per million).
    assert run.usage.cost_usd == round(21 * (800 * 1.25 + 200 * 0.125 + 50 * 10) / 1e6, 4)
    assert run.durations.phases_s["agent"] == 8 * 1200.0  # 0006: trae.duration_s


def test_isobench_status_cli_shows_the_must_patch_signature(tmp_path):
    state = write_isobench(tmp_path)
    plan = tmp_path / "plan.json"
    ran = ["015069b0", "0d243f2a", "0ec82edd", "19d98e0c", "22d33bac", "2a052011", "2deb029d"]
    # The plan names the commits the journals ran (items are keyed by commit), and two more.
    write_json_atomic(plan, Plan(repo="https://github.com/vllm-project/vllm.git",
                                 task_id="vllm_core", items=[
                                     PlanItem(item_id=f"vllm_core-{n:04d}", human=human)
                                     for n, human in enumerate(ran + ["aaaa0007", "aaaa0008"])]))
    result = CliRunner().invoke(cli, ["status", str(state), "--plan", str(plan)],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "must_patch_tool_output_missing" in result.output
    assert "ISO-Bench said success, the trajectory says otherwise: 3 item(s)" in result.output
    data = json.loads(CliRunner().invoke(cli, ["status", str(state), "--plan", str(plan),
                                              "--json"]).output)
    assert data["runs"][0]["planned"] == 9 and data["runs"][0]["remaining"] == 2
    out = tmp_path / "left.json"
    CliRunner().invoke(cli, ["status", str(state), "--plan", str(plan),
                             "--remaining-plan", str(out)])
    left = json.loads(out.read_text())
    assert [(i["item_id"], i["left"], i.get("fix", "")[:13]) for i in left["items"]] == [
        ("vllm_core-0000", "must_patch_tool_output_missing", "rerun without"),
        ("vllm_core-0004", "truncated_tool_json", "a retry of a "),
        ("vllm_core-0006", "auth", "after the key"),
        ("vllm_core-0007", "remaining", ""), ("vllm_core-0008", "remaining", "")]


def test_status_of_a_path_below_runs_reads_only_that_part(tmp_path):
    write_ours(tmp_path)
    write_isobench(tmp_path / "iso")
    only_ours = build_report(StateLayout(root=tmp_path).run_dir(KEY))
    assert [r.source for r in only_ours.runs] == ["isobench"]
    both_layouts = build_report(tmp_path / "iso" / "state")
    assert [r.source for r in both_layouts.runs] == ["iso-bench"]


def test_unfinalized_trajectory_is_interrupted_not_success(tmp_path):
    runs = tmp_path / "state" / "runs"
    write_isobench_item(runs, "2025-11-05_10-00-00", "vllm_core-0000",
                        isobench_journal("vllm_core-0000", "success", "015069b0"),
                        trajectory([step(1)], success=False, finished=False))
    (run,) = build_report(tmp_path / "state").runs
    assert run.items[0].sequence == ["interrupted"] and run.items[0].state == "remaining"
