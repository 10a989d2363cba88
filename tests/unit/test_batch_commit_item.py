"""The pipeline as a batch run_item: per-attempt options, GPU passthrough, inputs that travel,
items that cannot run, and the one-record-per-attempt contract with the pipeline."""

import pytest

from executor.parts.agents.replay import ReplayAgent
from executor.runs.batch.base import BatchContext, Cancel
from executor.runs.batch.commit_item import (CommitItemSpec, InlineFile, attempt_options,
                                        commit_run_item)
from executor.parts.demo import DEMO_BASE_SHA, DEMO_HUMAN_SHA, demo_task
from executor.core.journal import RunStatus
from executor.parts.bench.run import bench_record
from executor.runs.pipeline import AttemptSlot, RunOptions, run_commit
from executor.records.state import ItemJournal, JournalConflict, RunKey, StateLayout
from executor.core.task import CommitJob, PlanItem

KEY = RunKey(task="demo", agent="replay", model="none", run_id="r1")


def context(tmp_path, repo: str = "") -> BatchContext:
    return BatchContext(state=StateLayout(root=tmp_path / "state"), run=KEY, repo=repo)


def spec(tmp_path, passthrough) -> CommitItemSpec:
    return CommitItemSpec(agent="replay", gpu_passthrough=passthrough,
                          run=RunOptions(state_dir=tmp_path / "elsewhere", run_id="x"))


@pytest.mark.parametrize("passthrough,expected", [(True, ("ids", ["2", "3"])),
                                                  (False, ("none", []))])
def test_leased_gpus_reach_sandboxes_only_with_passthrough(tmp_path, passthrough, expected):
    options = attempt_options(spec(tmp_path, passthrough), context(tmp_path), ["2", "3"])
    gpus = options.resources.gpus
    assert (gpus.mode, gpus.ids) == expected
    # benchmark trials get the same devices: the one Resources is what benchmark() records
    assert bench_record(options.bench, options.resources)["gpus"] == gpus.model_dump()
    assert (options.state_dir, options.run_id) == (tmp_path / "state", "r1")


def test_cpu_slots_never_request_gpus(tmp_path):
    options = attempt_options(spec(tmp_path, True), context(tmp_path), [])
    assert options.resources.gpus.mode == "none"


def test_inline_file_is_used_in_place_or_copied_by_content(tmp_path):
    script = tmp_path / "agent.sh"
    script.write_text("echo hi\n")
    inline = InlineFile.read(script, "agent script")
    assert inline.local(tmp_path / "spool") == script  # same bytes here: the user's file
    script.write_text("changed since\n")  # another node, or edited meanwhile: the batch's copy
    copy = inline.local(tmp_path / "spool")
    assert copy != script and copy.read_text() == "echo hi\n" and copy.name == "agent.sh"
    assert InlineFile.model_validate_json(inline.model_dump_json()) == inline  # travels


def test_an_item_that_does_not_resolve_is_a_permanent_failure_of_that_item(tmp_path):
    ctx = context(tmp_path)
    item = PlanItem(item_id="demo-0000", human="deadbeef")
    journal = ItemJournal.for_item(ctx.state, KEY, item)
    journal.begin(journal.load(), 1)
    attempt = commit_run_item(spec(tmp_path, None), ctx)(item, 1, [], Cancel())
    assert attempt.status == RunStatus.INFRA_ERROR and attempt.finished_at is not None
    assert (attempt.signature.name, attempt.signature.error_class) == ("bad_input", "permanent")
    assert "deadbeef" in attempt.signature.evidence
    log = ctx.state.attempt_dir(KEY, "demo-0000", 1) / "controller.log"
    assert "not runnable" in log.read_text()


def test_the_pipeline_fills_the_batch_attempt_and_refuses_one_that_is_not_running(tmp_path):
    ctx = context(tmp_path)
    item = PlanItem(item_id="demo-0000", human=DEMO_HUMAN_SHA)
    journal_file = ItemJournal.for_item(ctx.state, KEY, item)
    journal = journal_file.load()
    journal_file.begin(journal, 1)
    finished = journal.attempts[0].model_copy(update={"status": RunStatus.NO_PATCH})
    journal_file.finish(finished)
    job = CommitJob(task=demo_task(), item_id="demo-0000", human_sha=DEMO_HUMAN_SHA,
                    base_sha=DEMO_BASE_SHA)
    slot = AttemptSlot(item_dir=ctx.state.item_dir(KEY, "demo-0000"), number=1)
    with pytest.raises(JournalConflict):
        run_commit(job, ReplayAgent(b"", "none"), RunOptions(state_dir=tmp_path, run_id="r1"),
                   log=lambda _: None, slot=slot)
    assert [a.status for a in journal_file.load().attempts] == [RunStatus.NO_PATCH]
