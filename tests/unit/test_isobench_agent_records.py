"""Each ISO-Bench agent read from its own records (the shapes found in ISO-Bench's state, written
here from scratch): a trajectory whose journal was never written, TRAE dying at start-up, Claude
Code's error result and its CLI refusing its arguments, OpenHands ending without a change, the
codex runs' `codex_cli` block."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from executor.cli import cli
from executor.core.errors import ErrorClass
from executor.core.task import load_plan
from executor.parts.agents.trae_trajectory import MAX_STEPS_RESULT
from executor.views.status import build_report, read_runs
from tests.unit.isobench_state import PLAN, _item, _journal, write_isobench_state
from tests.unit.trae_fixtures import step, trajectory

STAMP = "2025-11-07_09-00-00"
CONFIG_MISSING = ("Error: Config file not found. Please specify a valid config file in the "
                  "command line option --config-file\n")
CUT_TRACEBACK = (  # ISO-Bench kept only part of this stderr: no exception line at its end
    "Traceback (most recent call last):\n"
    '  File "/opt/trae-agent/trae_agent/cli.py", line 136, in run\n'
    "    config = Config.create(\n"
    "             ^^^^^^^^^^^^^^\n"
    '  File "/opt/trae-agent/trae_agent/utils/config.py", line 229, in create\n')


def _runs(state: Path) -> Path:
    return state / "runs"


def _dir(state: Path, agent: str, model: str, name: str, stamp: str = STAMP) -> Path:
    item_dir = _runs(state) / "vllm" / agent / model / stamp / name
    item_dir.mkdir(parents=True)
    return item_dir


def _run(state: Path, agent: str, plan: Path | None = None):
    return next(r for r in build_report(state, plan=load_plan(plan) if plan else None).runs
                if r.agent == agent)


def test_a_trajectory_without_a_journal_is_an_attempt_counted_and_named(tmp_path):
    state = write_isobench_state(tmp_path)
    # The harness died before writing journal.json: trajectory and prompt.json are there.
    lost = _dir(state, "trae", "gpt-5", "vllm_rerun_0005")
    (lost / "trajectory.json").write_text(json.dumps(trajectory(
        [step(1)], success=False, final_result=MAX_STEPS_RESULT)))
    (lost / "prompt.json").write_text(json.dumps(
        {"task": "vLLM core performance", "commits": {"pre": "", "human": PLAN.items[5].human}}))
    (lost / "model_patch.diff").write_text("")
    # And one where nothing ran: prompt.json and task.txt only.
    nothing = _dir(state, "trae", "gpt-5", "vllm_core-0003")
    (nothing / "prompt.json").write_text("{}")
    (nothing / "task.txt").write_text("make it faster")

    run = _run(state, "trae", tmp_path / "plan.json")
    items = {i.item_id: i for i in run.items}
    # Keyed by the commit prompt.json names: vllm_core-0005's first (and only) attempt.
    assert items["vllm_core-0005"].sequence == ["max_steps"]
    assert items["vllm_core-0005"].state == "failed"
    assert run.journal_less == [f"{STAMP}/vllm_rerun_0005: max_steps"]
    assert run.empty_dirs == [f"{STAMP}/vllm_core-0003"]
    assert items["vllm_core-0003"].sequence == ["success"]  # the empty directory is no attempt

    out = CliRunner().invoke(cli, ["status", str(state), "--plan", str(tmp_path / "plan.json")],
                             env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert ("vllm_core · trae · gpt-5: 1 trajectory(ies) without journal.json (1 hit the step "
            "limit), counted as attempts; 1 directory(ies) with neither journal nor trajectory"
            in " ".join(out.output.split()))


def test_trae_start_up_crashes_are_named_from_what_it_printed(tmp_path):
    state = write_isobench_state(tmp_path)
    runs = _runs(state)
    quick = {"trae": {"cli": "python", "returncode": 1, "duration_s": 0.5}}
    # click's error on stdout (no trajectory, no harness error)
    _item(runs, "trae", "gpt-5", STAMP, 1, _journal(1, "error", **quick), patch="",
          stdout=CONFIG_MISSING)
    # a traceback cut short, on TRAE's stderr under ISO-Bench's openhands_ name
    cut = _item(runs, "trae", "gpt-5", STAMP, 4, _journal(4, "error", **quick), patch="")
    (cut / "openhands_stderr.txt").write_text(CUT_TRACEBACK)
    # the harness could not launch TRAE at all (so it wrote no `trae` block)
    _item(runs, "trae", "gpt-5", STAMP, 5, _journal(
        5, "error", error="[Errno 2] No such file or directory: '/opt/trae/.venv/bin/python'",
        error_type="FileNotFoundError", trae=None), patch=None)

    # an hour without a trajectory did more than start up: its missing trajectory is all
    slow = {"trae": {"cli": "python", "returncode": 1, "duration_s": 3600.0}}
    _item(runs, "trae", "gpt-5", "2025-11-07_10-00-00", 3, _journal(3, "error", **slow),
          patch="", stdout=CONFIG_MISSING)

    items = {i.item_id: i for i in _run(state, "trae").items}
    assert items["vllm_core-0003"].sequence == ["no_trajectory", "success"]
    crashes = {k: i for k, i in items.items() if "agent_startup_crash" in i.sequence}
    assert set(crashes) == {"vllm_core-0001", "vllm_core-0004", "vllm_core-0005"}
    run = _run(state, "trae")
    sig = next(s for s in run.signatures if s.name == "agent_startup_crash")
    assert sig.attempts == 3 and sig.error_class == ErrorClass.PERMANENT
    evidence = {i.journal.item_id: a.signature.evidence for r in read_runs(state)
                for i in r.items for a in i.journal.attempts
                if a.signature and a.signature.name == "agent_startup_crash"}
    assert evidence["vllm_core-0001"] == CONFIG_MISSING.strip()
    assert evidence["vllm_core-0004"] == ("a Python traceback, cut short at: File "
                                          '"/opt/trae-agent/trae_agent/utils/config.py", line '
                                          "229, in create")
    assert evidence["vllm_core-0005"].startswith("FileNotFoundError: [Errno 2] No such file")
    # Failed, to rerun once the install is fixed.
    assert items["vllm_core-0004"].state == "failed"
    assert items["vllm_core-0004"].fix.startswith("after the agent's install or config is fixed")


def test_claude_code_error_result_and_cli_refusal(tmp_path):
    state = write_isobench_state(tmp_path)
    runs = _runs(state)
    claude = lambda n, code, took: {**_journal(n, "error"), "trae": None,
                                    "claude_code": {"cli": "claude", "returncode": code,
                                                    "duration_s": took}}
    full_disk = {"type": "result", "subtype": "error_during_execution", "is_error": True,
                 "duration_ms": 0, "num_turns": 0, "total_cost_usd": 0,
                 "usage": {"input_tokens": 0, "output_tokens": 0},
                 "errors": ["ENOSPC: no space left on device, write"]}
    _item(runs, "claude_code", "default", STAMP, 2, claude(2, 1, 255.6), patch="",
          stdout=json.dumps(full_disk) + "\n")
    refused = _item(runs, "claude_code", "default", STAMP, 3, claude(3, 1, 0.6), patch="",
                    stdout="")
    (refused / "claude_code_stderr.txt").write_text(
        "Error: Input must be provided either through stdin or as a prompt argument when "
        "using --print\n")
    run = _run(state, "claude_code")
    items = {i.item_id: i for i in run.items}
    assert items["vllm_core-0002"].sequence == ["disk_full"]
    assert items["vllm_core-0003"].sequence == ["agent_startup_crash"]
    assert "crashed at start-up (exit 1)" in items["vllm_core-0003"].reason or \
        items["vllm_core-0003"].fix
    sig = next(s for s in run.signatures if s.name == "agent_startup_crash")
    assert sig.example.startswith("Error: Input must be provided")


def test_openhands_exit_0_with_an_empty_patch_ended_without_a_change(tmp_path):
    state = write_isobench_state(tmp_path)
    journal = {**_journal(0, "error"), "trae": None,
               "openhands": {"cli": "python", "returncode": 0, "duration_s": 174.0}}
    item_dir = _item(_runs(state), "openhands", "gpt-5", STAMP, 0, journal, patch="", stdout="")
    (item_dir / "openhands_stderr.txt").write_text("")
    run = _run(state, "openhands")
    (item,) = [i for i in run.items if i.attempts]
    assert item.sequence == ["empty_patch"] and item.state == "failed"
    assert run.unknown == 0
    assert "openhands exited 0 after 174 s" in run.signatures[0].example


def test_a_codex_run_reads_its_time_from_the_codex_cli_block(tmp_path):
    state = write_isobench_state(tmp_path)
    journal = {**_journal(0, "success"), "trae": None,
               "codex_cli": {"cli": "codex", "returncode": 0, "duration_s": 123.4}}
    _item(_runs(state), "codex", "gpt-5", STAMP, 0, journal, stdout="Plan: benchmark it\n")
    run = _run(state, "codex")
    assert run.durations.phases_s == {"agent": 123.4}
    assert run.succeeded == 1
