"""`run-commit` records its retry policy, so `status` judges its item by the same policy."""

from __future__ import annotations

from datetime import timedelta

from executor.runs.attempts import RetryPolicy, run_commit_with_retries
from executor.core.errors import ErrorClass, ErrorSignature
from executor.core.journal import Attempt, Journal, RunStatus, utcnow, write_json_atomic
from executor.runs.pipeline import CommitOutcome
from executor.records.state import JOURNAL_NAME
from executor.views.status import build_report


def test_status_after_a_run_commit_that_used_all_its_attempts(tmp_path):
    item_dir = tmp_path / "state" / "runs" / "demo" / "trae" / "gpt-5" / "r1" / "demo-0000"
    item_dir.mkdir(parents=True)
    limit = RetryPolicy(max_attempts=3, backoff_base_s=0)  # run-commit's default cap is 3
    rate_limit = ErrorSignature(name="rate_limit", error_class=ErrorClass.RETRYABLE,
                                evidence="429", source="t")
    start = utcnow()
    journal = Journal(task_id="demo", item_id="demo-0000", run_id="r1", agent="trae",
                      model="gpt-5", commits={"base": "a" * 40, "human": "b" * 40})

    def one_attempt(job, agent, options, log):  # what the pipeline journals per attempt
        n = len(journal.attempts) + 1
        journal.attempts.append(Attempt(
            attempt=n, status=RunStatus.AGENT_ERROR, signature=rate_limit,
            started_at=start + timedelta(minutes=n), finished_at=start + timedelta(minutes=n,
                                                                                  seconds=30)))
        write_json_atomic(item_dir / JOURNAL_NAME, journal)
        return CommitOutcome(status=RunStatus.AGENT_ERROR, exit_code=16, item_dir=item_dir,
                             attempt=n, signature=rate_limit)

    run_commit_with_retries(None, None, None, limit, log=lambda _: None,
                            sleep=lambda _: None, run=one_attempt)
    assert len(journal.attempts) == 3
    (run,) = build_report(tmp_path / "state").runs
    (item,) = run.items
    assert item.state == "failed" and "3 of 3" in item.reason, item.reason
    assert run.remaining == 0
