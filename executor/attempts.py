"""Attempts of one commit: call `run_commit` again when a retry can help, and only then.

Each `run_commit` call is one attempt, appended to the item's journal.json by the pipeline, so
every try (failed, retried, final) is on record. Whether another attempt follows is decided by
the failure's class in the one taxonomy (errors.py): `retryable` (429, 5xx, provider timeouts)
and `infra` (Docker, OOM, a GPU detached) are tried again after an exponential, jittered,
bounded wait; `permanent` failures (400, 401, quota, max steps, no patch, unknown) never are.
`isobench run-commit` and batches share this policy object; waits are injectable for tests.
"""

from __future__ import annotations

import time
from typing import Callable

from pydantic import BaseModel, Field
from tenacity import wait_random_exponential
from tenacity.wait import wait_base

from executor.agents.base import Agent
from executor.errors import ErrorClass, ErrorSignature
from executor.journal import RunStatus
from executor.pipeline import CommitOutcome, Log, RunOptions, run_commit
from executor.retry import AttemptReport, run_with_retries
from executor.task import CommitJob


class RetryPolicy(BaseModel):
    """How often and how patiently a commit is tried again."""

    max_attempts: int = Field(default=3, ge=1, description="Attempts in all, the first included.")
    wait_max_s: float = Field(default=300.0, ge=0, description="Cap of one backoff wait.")
    wait_multiplier_s: float = Field(default=10.0, ge=0,
                                     description="Backoff scale: waits up to 10, 20, 40 s ...")

    def wait(self) -> wait_base:
        """Full jitter: a random wait in [0, min(cap, scale * 2^n)], so workers that hit the same
        rate limit together do not come back together."""
        return wait_random_exponential(multiplier=self.wait_multiplier_s, max=self.wait_max_s)


def attempt_signature(outcome: CommitOutcome) -> ErrorSignature | None:
    """None for a success; otherwise why the attempt failed. An ending the pipeline left without
    a signature (no patch, say) is named by its status and is permanent."""
    if outcome.status == RunStatus.SUCCESS:
        return None
    if outcome.signature is not None:
        return outcome.signature
    return ErrorSignature(name=outcome.status.value, error_class=ErrorClass.PERMANENT,
                          evidence=outcome.detail or outcome.status.value, source="controller",
                          cause="The attempt ended without a patch worth measuring; running "
                                "it again would not change the inputs.")


def run_commit_with_retries(job: CommitJob, agent: Agent, options: RunOptions,
                            policy: RetryPolicy | None = None, log: Log = print, *,
                            wait: wait_base | None = None,
                            sleep: Callable[[float], None] = time.sleep,
                            run: Callable[..., CommitOutcome] = run_commit) -> CommitOutcome:
    """`run_commit` until success, a permanent failure, or `policy.max_attempts` attempts.
    Returns the last attempt's outcome; KeyboardInterrupt passes through untouched."""
    policy = policy or RetryPolicy()

    def report(entry: AttemptReport) -> None:
        if entry.will_retry and entry.signature is not None:
            log(f"attempt {entry.attempt}: {entry.signature.name} "
                f"({entry.signature.error_class}); attempt {entry.attempt + 1} of "
                f"{policy.max_attempts} in {entry.wait_s:.1f}s")
        elif not entry.succeeded and entry.signature is not None and \
                entry.attempt < policy.max_attempts:
            log(f"attempt {entry.attempt}: {entry.signature.name} "
                f"({entry.signature.error_class}): not retried")

    return run_with_retries(lambda _n: run(job, agent, options, log),
                            lambda r: attempt_signature(r) if isinstance(r, CommitOutcome)
                            else None,
                            policy.max_attempts, report, wait=wait or policy.wait(),
                            sleep=sleep)
