"""Resume and retry policy: when is an item done, and when is another attempt worth it.

The one policy for every caller: `isobench run-commit` (executor/runs/attempts.py), batches
(executor/runs/batch/dispatch.py), resume and `isobench status`.

ISO-Bench's resume skipped any item once called "success" (which often was not) and its retries
repeated every exception, permanent 400/401 included. Here an item is skipped only when its last
attempt reached an outcome this policy calls *final*:

- success;
- a permanent failure (the signature's class is `permanent`, or an unsigned agent outcome such
  as max steps or an empty patch: re-running would re-sample the agent, not repair a fault);
- a retryable or infra failure that has used up its class's attempts.

An attempt left `running` is never final: the controller that wrote it died. The next controller
closes it as `interrupted` (holding the item lock proves nobody still runs it) and runs again.
Interrupted attempts do not use up retries; the agent did not fail, the controller stopped.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel, Field

from executor.core.errors import ErrorClass
from executor.core.journal import Attempt, RunStatus

if TYPE_CHECKING:  # an annotation only: status and report read policies, never retry
    from tenacity import RetryCallState


class DecisionKind(StrEnum):
    """Why the policy says run or skip."""

    FIRST = "first"  # never attempted
    RETRY = "retry"  # last attempt failed with a retryable/infra class and budget is left
    RESUME = "resume"  # last attempt was interrupted: run again, costs no retry budget
    ABANDONED = "abandoned"  # last attempt still says running: close it first, then decide
    SUCCESS = "success"  # final
    PERMANENT = "permanent"  # final: a retry sends the same inputs into the same failure
    EXHAUSTED = "exhausted"  # final: the class's attempts are used up


FINAL_KINDS = frozenset({DecisionKind.SUCCESS, DecisionKind.PERMANENT, DecisionKind.EXHAUSTED})

# Failures without a signature, classed by their status. Only our own machinery failing is
# worth repeating; the agent's own outcomes are what we measure.
STATUS_CLASS: dict[RunStatus, ErrorClass] = {
    RunStatus.INFRA_ERROR: ErrorClass.INFRA,
    RunStatus.NO_PATCH: ErrorClass.PERMANENT,
    RunStatus.PATCH_APPLY_FAILED: ErrorClass.PERMANENT,
    RunStatus.MAX_STEPS: ErrorClass.PERMANENT,
    RunStatus.TIMEOUT: ErrorClass.PERMANENT,
    RunStatus.AGENT_ERROR: ErrorClass.PERMANENT,
    RunStatus.BENCH_FAILED: ErrorClass.PERMANENT,
}


class Decision(BaseModel):
    """What to do with an item, given its attempts."""

    kind: DecisionKind = Field(description="The rule that decided.")
    next_attempt: int = Field(description="Number the next attempt gets (if one runs).")
    error_class: ErrorClass | None = Field(default=None,
                                           description="Class of the last failure, if any.")
    reason: str = Field(default="", description="One line for logs and status.")

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS

    @property
    def succeeded(self) -> bool:
        return self.kind == DecisionKind.SUCCESS


class RetryPolicy(BaseModel):
    """How many attempts each failure class gets, and how long to back off between them.
    (`run` takes the per-class counts and the first delay as flags, `run-commit` the cap and the
    longest wait.)"""

    retryable_attempts: int = Field(default=4, ge=1,
                                    json_schema_extra={"flag": "--retryable-attempts"},
                                    description="Attempts for retryable failures (429, 5xx, "
                                                "timeouts).")
    infra_attempts: int = Field(default=3, ge=1, json_schema_extra={"flag": "--infra-attempts"},
                                description="Attempts for infrastructure failures (Docker, "
                                            "lost Ray nodes).")
    max_attempts: int = Field(default=6, ge=1,
                              json_schema_extra={"flag": "--max-attempts"},
                              description="Attempts in all; only retryable and infra failures "
                                          "are tried again.")
    backoff_base_s: float = Field(default=30.0, ge=0, json_schema_extra={"flag": "--backoff"},
                                  description="First retry delay in seconds (doubles per retry, "
                                              "plus up to 25% jitter).")
    backoff_max_s: float = Field(default=900.0, ge=0,
                                 json_schema_extra={"flag": "--retry-wait-max"},
                                 description="Hard cap in seconds of one backoff wait between "
                                             "attempts (jitter included).")
    backoff_jitter: float = Field(default=0.25, ge=0, le=1,
                                  description="Random extra wait, as a fraction of the wait.")

    def attempts_for(self, error_class: ErrorClass) -> int:
        """Permanent failures get one attempt, whatever the configuration says."""
        return {ErrorClass.RETRYABLE: self.retryable_attempts,
                ErrorClass.INFRA: self.infra_attempts}.get(error_class, 1)

    def backoff_s(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Wait before retry `retry_number` (1 = first retry): exponential, capped, jittered
        (so workers that hit the same rate limit together do not come back together).
        backoff_max_s is a hard cap: the jitter never takes a wait past it."""
        wait = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, retry_number - 1))
        return min(self.backoff_max_s, wait * (1 + self.backoff_jitter * (rng or random).random()))

    def tenacity_wait(self) -> Callable[[RetryCallState], float]:
        """The same backoff as a tenacity wait strategy, for loops that tenacity drives."""
        return lambda state: self.backoff_s(state.attempt_number)


def failure_class(attempt: Attempt) -> ErrorClass | None:
    """The class of a finished failed attempt; None for success, interrupted or running."""
    if attempt.status in (RunStatus.SUCCESS, RunStatus.INTERRUPTED, RunStatus.RUNNING,
                          RunStatus.UNKNOWN):
        return None
    if attempt.signature is not None:
        return attempt.signature.error_class
    return STATUS_CLASS.get(attempt.status, ErrorClass.PERMANENT)


def decide(attempts: list[Attempt], policy: RetryPolicy) -> Decision:
    """The policy, as one pure function of an item's attempts."""
    if not attempts:
        return Decision(kind=DecisionKind.FIRST, next_attempt=1, reason="not attempted yet")
    last = attempts[-1]
    following = last.attempt + 1
    if last.status == RunStatus.RUNNING:
        return Decision(kind=DecisionKind.ABANDONED, next_attempt=following,
                        reason=f"attempt {last.attempt} still says running "
                               f"({last.host}:{last.controller_pid})")
    if last.status == RunStatus.SUCCESS:
        return Decision(kind=DecisionKind.SUCCESS, next_attempt=following, reason="succeeded")
    if last.status in (RunStatus.INTERRUPTED, RunStatus.UNKNOWN):
        return Decision(kind=DecisionKind.RESUME, next_attempt=following,
                        reason=f"attempt {last.attempt} was {last.status.value}")
    error_class = failure_class(last)
    name = last.signature.name if last.signature else last.status.value
    if error_class == ErrorClass.PERMANENT:
        return Decision(kind=DecisionKind.PERMANENT, next_attempt=following,
                        error_class=error_class, reason=f"{name} is permanent")
    counted = [a for a in attempts if a.status not in (RunStatus.INTERRUPTED, RunStatus.UNKNOWN)]
    same_class = sum(1 for a in counted if failure_class(a) == error_class)
    limit = min(policy.attempts_for(error_class), policy.max_attempts)
    if same_class >= limit or len(counted) >= policy.max_attempts:
        return Decision(kind=DecisionKind.EXHAUSTED, next_attempt=following,
                        error_class=error_class,
                        reason=f"{name}: {same_class} of {limit} {error_class} attempts used "
                               f"({len(counted)} of {policy.max_attempts} in all)")
    return Decision(kind=DecisionKind.RETRY, next_attempt=following, error_class=error_class,
                    reason=f"{name} ({error_class}): attempt {same_class + 1} of {limit}")
