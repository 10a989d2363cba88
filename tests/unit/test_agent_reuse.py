"""Which retries may benchmark an earlier attempt's patch instead of running the agent again."""

import pytest

from executor.runs.agent_reuse import earlier_agent_result
from executor.core.journal import Attempt, Journal, RunStatus
from executor.parts.repo import patch_stats
from executor.records.state import PATCH_NAME

PATCH = b"diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


def journal(*attempts: Attempt) -> Journal:
    return Journal(task_id="demo", item_id="demo-0000", run_id="r", commits={}, agent="replay",
                   model="none", attempts=list(attempts))


def after_agent(number: int, status: RunStatus, patch: bytes = PATCH, outcome="finished",
                **extra) -> Attempt:
    return Attempt(attempt=number, status=status, agent_outcome=outcome,
                   patch=patch_stats(patch), **extra)


@pytest.fixture
def item_dir(tmp_path):
    (tmp_path / PATCH_NAME).write_bytes(PATCH)
    return tmp_path


@pytest.mark.parametrize("status", [RunStatus.INFRA_ERROR, RunStatus.BENCH_FAILED,
                                    RunStatus.INTERRUPTED])
def test_a_patch_that_failed_only_in_the_benchmark_is_reused(item_dir, status):
    found = earlier_agent_result(journal(after_agent(1, status), Attempt(attempt=2)), 2, item_dir)
    assert (found.origin, found.agent_outcome, found.patch) == (1, "finished", PATCH)


def test_a_chain_of_benchmark_failures_points_at_the_attempt_whose_agent_ran(item_dir):
    record = journal(after_agent(1, RunStatus.INFRA_ERROR),
                     after_agent(2, RunStatus.BENCH_FAILED, agent_reused_from=1),
                     Attempt(attempt=3))
    assert earlier_agent_result(record, 3, item_dir).origin == 1


@pytest.mark.parametrize("last", [
    after_agent(1, RunStatus.SUCCESS),  # a rerun after a success is a new experiment
    after_agent(1, RunStatus.RUNNING),  # its controller died: nothing says where
    after_agent(1, RunStatus.AGENT_ERROR, outcome="error"),
    after_agent(1, RunStatus.MAX_STEPS, outcome="max_steps"),
    after_agent(1, RunStatus.INFRA_ERROR, outcome="infra"),  # OOM under the agent
    after_agent(1, RunStatus.NO_PATCH, patch=b""),
    Attempt(attempt=1, status=RunStatus.INTERRUPTED),  # stopped before it had a patch
    Attempt(attempt=1, status=RunStatus.INFRA_ERROR),  # image build failed
], ids=lambda a: f"{a.status.value}-{a.agent_outcome}")
def test_the_agent_runs_again_after_anything_else(item_dir, last):
    assert earlier_agent_result(journal(last, Attempt(attempt=2)), 2, item_dir) is None


def test_only_the_latest_attempt_counts(item_dir):
    record = journal(after_agent(1, RunStatus.INFRA_ERROR),
                     Attempt(attempt=2, status=RunStatus.AGENT_ERROR), Attempt(attempt=3))
    assert earlier_agent_result(record, 3, item_dir) is None


def test_a_patch_file_that_changed_or_vanished_is_never_benchmarked_as_the_agents(item_dir):
    record = journal(after_agent(1, RunStatus.INFRA_ERROR), Attempt(attempt=2))
    (item_dir / PATCH_NAME).write_bytes(PATCH.replace(b"a = 2", b"a = 3"))
    assert earlier_agent_result(record, 2, item_dir) is None
    (item_dir / PATCH_NAME).unlink()
    assert earlier_agent_result(record, 2, item_dir) is None


def test_the_first_attempt_has_nothing_to_reuse(item_dir):
    assert earlier_agent_result(journal(Attempt(attempt=1)), 1, item_dir) is None
