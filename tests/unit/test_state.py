"""State layout, item locks (real processes, SIGKILL) and append-only journals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from executor.core.journal import Attempt, RunStatus, load_journal
from executor.records.state import (ItemJournal, ItemLock, JournalConflict, LockHeld, LockHolder,
                            RunKey, StateLayout, lock_state, merge_run_plan, path_component,
                            plan_commits)
from executor.core.task import Plan, PlanItem

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = RunKey(task="demo", agent="trae", model="openai/gpt-5", run_id="r1")
ITEM = PlanItem(item_id="demo-0000", human="abc1234")

HOLD_LOCK = """
import sys
from pathlib import Path
from executor.records.state import ItemLock, LockHolder
ItemLock(Path(sys.argv[1])).acquire(LockHolder.me(purpose="child"))
print("locked", flush=True)
sys.stdin.read()  # hold until killed
"""


def test_layout_paths_are_sanitised_and_documented(tmp_path):
    layout = StateLayout(root=tmp_path)
    expected = tmp_path / "runs/demo/trae/openai_gpt-5/r1/demo-0000"
    assert layout.item_dir(KEY, "demo-0000") == expected
    assert layout.attempt_dir(KEY, "demo-0000", 2).name == "attempt-2"
    assert layout.journal_path(KEY, "x").name == "journal.json"
    assert path_component("..") == "__" and path_component("") == "_"
    assert path_component("a/b c") == "a_b_c"


def test_plan_commits_name_the_parent_when_pre_is_empty():
    assert plan_commits(ITEM) == {"base": "abc1234^1", "human": "abc1234"}
    assert plan_commits(PlanItem(item_id="x", human="a" * 40, pre="b" * 40))["base"] == "b" * 40


def test_run_plan_merges_items_and_never_drops(tmp_path):
    path = tmp_path / "plan.json"
    merge_run_plan(path, Plan(repo="r", task_id="t", items=[ITEM]))
    other = PlanItem(item_id="demo-0001", human="def5678")
    merged = merge_run_plan(path, Plan(repo="r", task_id="t", items=[other]))
    assert [i.item_id for i in merged.items] == ["demo-0000", "demo-0001"]


def test_two_lock_objects_in_one_process_conflict(tmp_path):
    first = ItemLock(tmp_path)
    first.acquire(LockHolder.me(purpose="first"))
    with pytest.raises(LockHeld) as held:
        ItemLock(tmp_path).acquire()
    assert held.value.holder.purpose == "first"
    first.release()
    with ItemLock(tmp_path):
        pass
    assert lock_state(tmp_path).held is False and lock_state(tmp_path).holder is None


def test_second_process_cannot_take_held_lock_and_sigkill_frees_it(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"  # blocks until the child holds it
        with pytest.raises(LockHeld) as held:
            ItemLock(tmp_path).acquire()
        assert held.value.holder.pid == child.pid
        state = lock_state(tmp_path)
        assert state.held is True and state.holder.pid == child.pid and not state.stale
    finally:
        child.kill()  # SIGKILL: no cleanup code runs in the child
        child.wait()
    state = lock_state(tmp_path)
    assert state.held is False and state.stale and state.holder.pid == child.pid
    lock = ItemLock(tmp_path)
    lock.acquire()  # the kernel dropped the dead holder's lock
    assert lock_state(tmp_path).holder.pid != child.pid
    lock.release()


def journal_file(tmp_path) -> ItemJournal:
    return ItemJournal.for_item(StateLayout(root=tmp_path), KEY, ITEM)


def test_journal_appends_and_never_rewrites_finished_attempts(tmp_path):
    jf = journal_file(tmp_path)
    journal = jf.load()
    jf.begin(journal, 1)
    on_disk = load_journal(jf.path)
    assert on_disk.model == "openai/gpt-5" and on_disk.attempts[0].status == RunStatus.RUNNING
    done = Attempt(attempt=1, status=RunStatus.SUCCESS, finished_at=on_disk.attempts[0].started_at)
    jf.finish(done)
    # A second finish of the same attempt keeps the first record (the pipeline may have
    # journaled it already; the disk copy wins).
    _, recorded = jf.finish(done.model_copy(update={"status": RunStatus.NO_PATCH}))
    assert recorded.status == RunStatus.SUCCESS
    assert load_journal(jf.path).attempts[0].status == RunStatus.SUCCESS
    with pytest.raises(JournalConflict):
        jf.begin(load_journal(jf.path), 3)  # numbers are consecutive
    with pytest.raises(JournalConflict):
        jf.finish(Attempt(attempt=1))  # a running attempt is not a finished one


def test_close_abandoned_marks_running_attempts_interrupted(tmp_path):
    jf = journal_file(tmp_path)
    journal = jf.load()
    jf.begin(journal, 1)
    me = LockHolder.me()
    closed = jf.close_abandoned(load_journal(jf.path), me)
    assert [a.attempt for a in closed] == [1]
    attempt = load_journal(jf.path).attempts[0]
    assert attempt.status == RunStatus.INTERRUPTED and attempt.finished_at is not None
    assert attempt.signature.name == "controller_lost"
    assert f"{me.host}:{me.pid}" in attempt.signature.evidence


def test_the_readme_shows_the_state_layout_as_documented_in_state_py():
    from pathlib import Path

    import executor.records.state

    doc = executor.records.state.__doc__.split("Layout (the README copies this block)::\n\n", 1)[1]
    block = "\n".join(line[4:] for line in doc.split("\n\n", 1)[0].splitlines())
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert block in readme
