"""A real controller process killed with SIGKILL mid-item, or stopped with Ctrl-C, then resumed.

Synchronisation is by pipes, never by sleeps: a gated item writes its id to an inherited pipe
when it is inside run_item and then blocks reading another pipe nobody writes to. When the
controller dies, the notify pipe reaches EOF, so a crash can never hang the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from executor.core.journal import RunStatus, load_journal
from executor.records.state import RunKey, StateLayout
from executor.views.status import build_report
from executor.core.task import Plan, PlanItem
from tests.unit.batch_items import executions

REPO_ROOT = Path(__file__).resolve().parents[2]
ITEMS = [f"demo-{n:04d}" for n in range(6)]
GATED = ["demo-0001", "demo-0003"]
KEY = RunKey(task="demo", agent="script", model="none", run_id="r1")


def write_plan(tmp_path: Path) -> Path:
    plan = Plan(repo="demo", task_id="demo",
                items=[PlanItem(item_id=i, human=f"{n:07x}") for n, i in enumerate(ITEMS)])
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


def controller(tmp_path: Path, factory: str, *args: str, env: dict | None = None,
               pass_fds: tuple = ()) -> subprocess.Popen:
    """`isobench run` in its own process (output to files: a killed child cannot fill a pipe)."""
    log = open(tmp_path / f"controller-{len(list(tmp_path.glob('controller-*')))}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "executor.cli", "run", str(tmp_path / "plan.json"),
         "--state-dir", str(tmp_path / "state"), "--run-id", "r1", "--agent", "script",
         "--model", "none", "--workers", "2", "--backoff", "0", "--no-progress",
         "--run-item", f"tests.unit.batch_items:{factory}", *args],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, pass_fds=pass_fds,
        env={**os.environ, "ISOBENCH_TEST_LOG": str(tmp_path / "executions.log"),
             "ISOBENCH_TEST_SCRIPT": str(tmp_path / "script.json"), **(env or {})})


def start_gated(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, int, int]:
    """Start a controller whose GATED items block; return once both are inside run_item."""
    notify_r, notify_w = os.pipe()
    gate_r, gate_w = os.pipe()
    proc = controller(tmp_path, "scripted", pass_fds=(notify_w, gate_r), env={
        "ISOBENCH_TEST_GATED": ",".join(GATED), "ISOBENCH_TEST_NOTIFY_FD": str(notify_w),
        "ISOBENCH_TEST_GATE_FD": str(gate_r), "ISOBENCH_TEST_GATE_MODE": mode})
    os.close(notify_w)
    os.close(gate_r)
    with os.fdopen(notify_r) as notify:
        blocked = sorted(notify.readline().strip() for _ in GATED)
    assert blocked == GATED, f"controller died early: {logs(tmp_path)}"
    return proc, gate_w, proc.pid


def exit_code(proc: subprocess.Popen) -> int:
    """The controller's exit status. The timeout only turns a regression (a hang) into a
    failure; nothing waits on time for synchronisation."""
    try:
        return proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("controller-*.log")))


def journals(tmp_path: Path) -> dict:
    layout = StateLayout(root=tmp_path / "state")
    found = {i: load_journal(layout.journal_path(KEY, i)) for i in ITEMS}
    return {i: j for i, j in found.items() if j is not None}


def test_kill_9_mid_batch_then_resume_runs_every_item_successfully_exactly_once(tmp_path):
    write_plan(tmp_path)
    (tmp_path / "script.json").write_text(json.dumps({"demo-0004": ["rate_limit", "success"]}))
    proc, gate_w, _ = start_gated(tmp_path, "pipe")
    os.kill(proc.pid, signal.SIGKILL)
    assert exit_code(proc) == -signal.SIGKILL
    os.close(gate_w)

    before = journals(tmp_path)
    finished_first = {i for i, j in before.items() if j.status == RunStatus.SUCCESS}
    for item in GATED:  # died mid-item: the journal says so, and nothing claims success
        assert [a.status for a in before[item].attempts] == [RunStatus.RUNNING]
    # status, reading the dead controller's state, does not count the gated items as done
    report = build_report(tmp_path / "state").runs[0]
    states = {i.item_id: i.state for i in report.items}
    assert {states[i] for i in GATED} == {"remaining"}
    assert report.succeeded == len(finished_first)
    ran_first = [i for i, *_ in executions(tmp_path / "executions.log")]

    resumed = controller(tmp_path, "scripted", "--resume")
    assert exit_code(resumed) == 0, logs(tmp_path)

    after = journals(tmp_path)
    assert set(after) == set(ITEMS)
    for item, journal in after.items():
        statuses = [a.status for a in journal.attempts]
        assert statuses.count(RunStatus.SUCCESS) == 1 and statuses[-1] == RunStatus.SUCCESS
    for item in GATED:
        first, second = after[item].attempts
        assert (first.status, first.signature.name) == (RunStatus.INTERRUPTED,
                                                        "controller_lost")
        assert second.status == RunStatus.SUCCESS
    assert [a.signature.name if a.signature else a.status for a in
            after["demo-0004"].attempts] == ["rate_limit", RunStatus.SUCCESS]
    # Finished items were never run again; finished means "journal said success".
    runs = [i for i, *_ in executions(tmp_path / "executions.log")]
    for item in finished_first:
        assert runs.count(item) == 1, item
    for item in GATED:
        assert runs.count(item) == 2  # the killed attempt and the resumed one
    assert len(ran_first) == len(finished_first) + len(GATED)
    pids = {pid for *_, pid in executions(tmp_path / "executions.log")}
    assert pids == {proc.pid, resumed.pid}


def test_ctrl_c_stops_taking_items_journals_interrupted_and_exits_130(tmp_path):
    write_plan(tmp_path)
    (tmp_path / "script.json").write_text("{}")
    proc, gate_w, _ = start_gated(tmp_path, "cancel")
    os.kill(proc.pid, signal.SIGINT)
    assert exit_code(proc) == 130, logs(tmp_path)
    os.close(gate_w)
    assert "stopping" in logs(tmp_path)

    state = journals(tmp_path)
    for item in GATED:
        assert [a.status for a in state[item].attempts] == [RunStatus.INTERRUPTED]
    assert all(j.status != RunStatus.RUNNING for j in state.values())
    not_started = set(ITEMS) - set(state)
    assert not_started  # no new items were taken after Ctrl-C

    resumed = controller(tmp_path, "scripted", "--resume")
    assert exit_code(resumed) == 0, logs(tmp_path)
    after = journals(tmp_path)
    for item in GATED:
        assert [a.status for a in after[item].attempts] == [RunStatus.INTERRUPTED,
                                                            RunStatus.SUCCESS]
    assert all(j.status == RunStatus.SUCCESS for j in after.values())
