"""The resume/retry policy, case by case."""

from __future__ import annotations

import random

import pytest

from executor.core.policy import DecisionKind, RetryPolicy, decide, failure_class
from executor.core.errors import ErrorClass, classify_text, unclassified
from executor.core.journal import Attempt, RunStatus
from executor.core.errors import CONTROLLER_LOST, signature

POLICY = RetryPolicy(retryable_attempts=3, infra_attempts=2, max_attempts=5)


def att(n: int, status: RunStatus, evidence: str | None = None, **kw) -> Attempt:
    sig = classify_text(evidence, "test") if evidence else None
    return Attempt(attempt=n, status=status, signature=sig, **kw)


RATE = "Error code: 429 - Too Many Requests"
AUTH = "Error code: 401 - invalid_api_key"
NVML = "Failed to initialize NVML: Unknown Error"


def test_never_attempted_runs_attempt_one():
    d = decide([], POLICY)
    assert (d.kind, d.next_attempt, d.final) == (DecisionKind.FIRST, 1, False)


def test_success_is_final():
    d = decide([att(1, RunStatus.AGENT_ERROR, RATE), att(2, RunStatus.SUCCESS)], POLICY)
    assert d.kind == DecisionKind.SUCCESS and d.final and d.succeeded


def test_permanent_failure_is_final_after_one_attempt():
    d = decide([att(1, RunStatus.AGENT_ERROR, AUTH)], POLICY)
    assert d.kind == DecisionKind.PERMANENT and d.final
    assert d.error_class == ErrorClass.PERMANENT


@pytest.mark.parametrize("status", [RunStatus.NO_PATCH, RunStatus.MAX_STEPS, RunStatus.TIMEOUT,
                                    RunStatus.PATCH_APPLY_FAILED, RunStatus.BENCH_FAILED])
def test_unsigned_agent_outcomes_are_permanent(status):
    assert decide([att(1, status)], POLICY).kind == DecisionKind.PERMANENT


def test_unclassified_failure_is_never_retried():
    a = Attempt(attempt=1, status=RunStatus.AGENT_ERROR, signature=unclassified("boom", "t"))
    assert decide([a], POLICY).kind == DecisionKind.PERMANENT


def test_retryable_is_retried_until_its_attempts_are_used():
    history = [att(1, RunStatus.AGENT_ERROR, RATE)]
    d = decide(history, POLICY)
    assert (d.kind, d.next_attempt, d.error_class) == (DecisionKind.RETRY, 2,
                                                       ErrorClass.RETRYABLE)
    history.append(att(2, RunStatus.AGENT_ERROR, RATE))
    assert decide(history, POLICY).kind == DecisionKind.RETRY
    history.append(att(3, RunStatus.AGENT_ERROR, RATE))
    d = decide(history, POLICY)
    assert d.kind == DecisionKind.EXHAUSTED and d.final and not d.succeeded


def test_infra_gets_its_own_budget():
    history = [att(1, RunStatus.INFRA_ERROR, NVML)]
    assert decide(history, POLICY).kind == DecisionKind.RETRY
    history.append(att(2, RunStatus.INFRA_ERROR, NVML))
    assert decide(history, POLICY).kind == DecisionKind.EXHAUSTED
    # An unsigned infra_error is infra too.
    assert decide([att(1, RunStatus.INFRA_ERROR)], POLICY).kind == DecisionKind.RETRY


def test_total_cap_applies_across_classes():
    policy = RetryPolicy(retryable_attempts=9, infra_attempts=9, max_attempts=3)
    history = [att(1, RunStatus.AGENT_ERROR, RATE), att(2, RunStatus.INFRA_ERROR, NVML),
               att(3, RunStatus.AGENT_ERROR, RATE)]
    assert decide(history, policy).kind == DecisionKind.EXHAUSTED


def test_permanent_class_cannot_be_configured_into_retries():
    assert RetryPolicy(retryable_attempts=10).attempts_for(ErrorClass.PERMANENT) == 1


def test_running_attempt_left_by_dead_controller_is_not_done():
    history = [att(1, RunStatus.AGENT_ERROR, RATE), att(2, RunStatus.RUNNING)]
    d = decide(history, POLICY)
    assert d.kind == DecisionKind.ABANDONED and not d.final
    assert d.next_attempt == 3


def test_interrupted_attempt_is_rerun_without_using_retries():
    closed = att(2, RunStatus.INTERRUPTED, finished_at=None)
    closed.signature = signature(CONTROLLER_LOST, "controller died", "batch")
    history = [att(1, RunStatus.AGENT_ERROR, RATE), closed]
    d = decide(history, POLICY)
    assert (d.kind, d.next_attempt) == (DecisionKind.RESUME, 3)
    # Interruptions do not count: two more rate limits still fit the budget of three.
    history += [att(3, RunStatus.AGENT_ERROR, RATE)]
    assert decide(history, POLICY).kind == DecisionKind.RETRY
    assert failure_class(closed) is None


def test_backoff_doubles_and_caps():
    p = RetryPolicy(backoff_base_s=10, backoff_max_s=35, backoff_jitter=0)
    assert [p.backoff_s(n) for n in (1, 2, 3, 4)] == [10, 20, 35, 35]
    jittered = RetryPolicy(backoff_base_s=10, backoff_jitter=0.5).backoff_s(1, random.Random(1))
    assert 10 <= jittered <= 15
