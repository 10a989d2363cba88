"""`isobench plan` and `isobench run` as a user runs them (in process, real files)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from executor.cli import cli
from executor.core.journal import RunStatus, load_journal
from executor.records.state import RunKey, StateLayout
from executor.core.task import Plan, load_plan
from tests.unit.batch_items import executions

SHARED_PLAN = Path("/work/shared/data/vllm_core_plan.json")
ISO_LIST = """# 39 Benchmarkable vLLM Commits
# Format: commit_hash | date | subject

015069b0 | 2024-09-01 | first
0d243f2a | 2024-09-02 | second
"""
HUMANS = ["015069b01741e9ecb9e604c7fe87fbdfc306ebe5", "0d243f2a54fbd1c56da8a571f0899c30b6aba5d9",
          "0ec82edda59aaf5cf3b07aadf4ecce1aa1131add"]
ISO_PLAN = {"repo": "https://github.com/vllm-project/vllm.git", "task_id": "vllm_core",
            "items": [{"item_id": f"vllm_core-{n:04d}", "human": sha, "pre": "",
                       "pre_parent_index": 1} for n, sha in enumerate(HUMANS)]}


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_plan_from_shas_and_commit_list(tmp_path):
    commits = tmp_path / "commits.txt"
    commits.write_text(ISO_LIST)
    out = tmp_path / "plan.json"
    result = invoke("plan", "--task-id", "demo", "--repo", "/srv/demo", "--commits", commits,
                    "ABCDEF0", "015069b0", "-o", out)
    assert result.exit_code == 0, result.output
    plan = load_plan(out)
    assert [(i.item_id, i.human, i.pre, i.pre_parent_index) for i in plan.items] == [
        ("demo-0000", "abcdef0", "", 1), ("demo-0001", "015069b0", "", 1),
        ("demo-0002", "0d243f2a", "", 1)]  # duplicates dropped, order kept
    assert json.loads(out.read_text()).keys() == {"repo", "task_id", "items"}


def test_plan_selects_from_an_isobench_plan_by_short_sha(tmp_path):
    source, commits = tmp_path / "iso.json", tmp_path / "39.txt"
    source.write_text(json.dumps(ISO_PLAN))
    commits.write_text(ISO_LIST)
    result = invoke("plan", "--from-plan", source, "--commits", commits)
    plan = Plan.model_validate_json(result.output)
    assert [i.item_id for i in plan.items] == ["vllm_core-0000", "vllm_core-0001"]
    assert plan.repo == ISO_PLAN["repo"]


def test_plan_reads_the_real_isobench_plan_file():
    if not SHARED_PLAN.exists():
        pytest.skip("ISO-Bench's plan is shared data on the dev machines, not in the repo")
    plan = Plan.model_validate_json(invoke("plan", "--from-plan", SHARED_PLAN).output)
    assert len(plan.items) == 96 and plan.task_id == "vllm_core"


def test_plan_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("015069b0\nnot-a-sha\n")
    result = invoke("plan", "--task-id", "t", "--repo", "r", "--commits", bad)
    assert result.exit_code == 2 and f"{bad}:2" in result.output
    assert invoke("plan", "015069b0").exit_code == 2  # needs --task-id and --repo
    source = tmp_path / "iso.json"
    source.write_text(json.dumps(ISO_PLAN))
    missing = invoke("plan", "--from-plan", source, "deadbee")
    assert missing.exit_code == 2 and "not in plan vllm_core: deadbee" in missing.output
    assert invoke("plan", "--catalogue", "nope").exit_code == 2


def test_plan_from_the_catalogue():
    result = invoke("plan", "--catalogue", "vllm_core")
    if importlib.util.find_spec("executor.parts.catalog") is None:  # built in parallel (HOOK)
        assert result.exit_code == 2 and "--from-plan" in result.output
        return
    plan = Plan.model_validate_json(result.output)
    assert plan.task_id == "vllm_core" and len(plan.items) == 96
    assert plan.items[0].item_id == "vllm_core-0000" and len(plan.items[0].human) == 40


def test_run_six_items_429_retried_401_permanent_then_status_shows_it(tmp_path):
    plan = tmp_path / "plan.json"
    invoke("plan", "--task-id", "demo", "--repo", "/srv/demo", "-o", plan,
           *[f"{n:07x}" for n in range(1, 7)])
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"demo-0001": ["rate_limit", "success"],
                                  "demo-0003": ["auth", "success"]}))
    env = {"ISOBENCH_TEST_SCRIPT": str(script), "ISOBENCH_TEST_LOG": str(tmp_path / "log")}
    state = tmp_path / "state"
    args = ("run", plan, "--state-dir", state, "--run-id", "ci", "--agent", "script",
            "--workers", "2", "--gpus", "0,1", "--backoff", "0", "--no-progress",
            "--run-item", "tests.unit.batch_items:scripted")
    result = invoke(*args, env=env)
    assert result.exit_code == 1, result.output  # one item failed for good
    assert "5 succeeded, 1 failed, 0 remaining" in result.output

    ran = [(i, n) for i, n, _ in executions(tmp_path / "log")]
    assert ran.count(("demo-0001", 2)) == 1 and [n for i, n in ran if i == "demo-0003"] == [1]
    layout, key = StateLayout(root=state), RunKey(task="demo", agent="script", model="none",
                                                  run_id="ci")
    assert load_journal(layout.journal_path(key, "demo-0003")).status == RunStatus.AGENT_ERROR
    assert load_plan(layout.plan_path(key)).task_id == "demo"

    again = invoke(*args, env=env)
    assert again.exit_code == 2 and "--resume" in again.output  # no silent second run
    resumed = invoke(*args, "--resume", env=env)
    assert resumed.exit_code == 1 and len(executions(tmp_path / "log")) == 7  # nothing reran

    report = json.loads(invoke("status", state, "--json").output)["runs"][0]
    assert (report["succeeded"], report["failed"], report["remaining"]) == (5, 1, 0)
    sequences = {i["item_id"]: i["sequence"] for i in report["items"]}
    assert sequences["demo-0001"] == ["rate_limit", "success"]
    assert sequences["demo-0003"] == ["auth"]
    assert [s["name"] for s in report["signatures"]] == ["auth", "rate_limit"]


def test_run_defaults_to_the_pipeline_and_checks_its_options_before_writing(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(ISO_PLAN))
    state = tmp_path / "state"
    result = invoke("run", plan, "--state-dir", state, "--agent", "script",
                    "--agent-script", tmp_path / "missing.sh")
    assert result.exit_code == 2 and "cannot read agent script" in result.output
    result = invoke("run", plan, "--state-dir", state, "--model", "gpt-5")
    assert result.exit_code == 2 and "uses no model" in result.output
    result = invoke("run", plan, "--state-dir", state, "--agent", "mini-swe-agent")
    assert result.exit_code == 2 and "needs --model" in result.output
    result = invoke("run", plan, "--state-dir", state, "--backend", "ray", "--gpus", "0,1")
    assert result.exit_code == 2 and "Ray assigns" in result.output
    assert not state.exists()  # nothing journaled: nothing started
