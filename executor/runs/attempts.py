"""Attempts of one commit for `isobench run-commit`: call `run_commit` again when the policy
says a retry can help, and only then.

Each `run_commit` call is one attempt, appended to the item's journal.json by the pipeline, so
every try (failed, retried, final) is on record. Whether another attempt follows is decided by
the one retry policy (executor/core/policy.py, also used by batches and resume) from the failure's
class in the one taxonomy (errors.py): `retryable` (429, 5xx, provider timeouts) and `infra`
(Docker, OOM, a GPU detached) are tried again after a jittered exponential backoff, each class a
bounded number of times; `permanent` failures (400, 401, quota, max steps, no patch, unknown)
never are. tenacity drives the loop; waits are injectable for tests.
"""

from __future__ import annotations

import time
from typing import Callable

from tenacity import Retrying, retry_if_result, stop_never

from executor.parts.agents.base import Agent
from executor.core.journal import Attempt, write_json_atomic
from executor.runs.pipeline import CommitOutcome, Log, RunOptions, run_commit
from executor.core.policy import DecisionKind, RetryPolicy, decide
from executor.records.state import POLICY_NAME
from executor.core.task import CommitJob

__all__ = ["RetryPolicy", "run_commit_with_retries"]


def run_commit_with_retries(job: CommitJob, agent: Agent, options: RunOptions,
                            policy: RetryPolicy | None = None, log: Log = print, *,
                            sleep: Callable[[float], None] = time.sleep,
                            run: Callable[..., CommitOutcome] = run_commit) -> CommitOutcome:
    """`run_commit` until success, a final failure, or the policy's attempts are used up.
    Returns the last attempt's outcome; KeyboardInterrupt passes through untouched."""
    policy = policy or RetryPolicy()
    seen: list[Attempt] = []

    def retry_wanted(outcome: CommitOutcome) -> bool:
        record_policy(outcome, policy)
        seen.append(Attempt(attempt=len(seen) + 1, status=outcome.status,
                            signature=outcome.signature))
        decision = decide(seen, policy)
        if decision.kind == DecisionKind.RETRY:
            log(f"attempt {len(seen)}: {decision.reason}; retrying after a backoff")
            return True
        if not decision.succeeded:
            log(f"attempt {len(seen)}: not retried: {decision.reason}")
        return False

    retrying = Retrying(retry=retry_if_result(retry_wanted), stop=stop_never,
                        wait=policy.tenacity_wait(), sleep=sleep, reraise=True)
    return retrying(run, job, agent, options, log)


def record_policy(outcome: CommitOutcome, policy: RetryPolicy) -> None:
    """The policy beside the run's items, as batches record theirs: `status` judges the item
    by the cap this run used (run-commit's 3), not the default (whose "attempt 4 of 4" would
    promise a retry that never comes)."""
    run_dir = outcome.item_dir.parent
    if outcome.item_dir.is_dir():
        write_json_atomic(run_dir / POLICY_NAME, policy)
