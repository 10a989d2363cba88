"""Retry what a retry can fix, and nothing else; report every attempt.

ISO-Bench slept a random 3-30 s and retried every exception, permanent 400s and 401s included
(FIELD_NOTES section 2). Here the failure is classified first (errors.py) and only the
`retryable` and `infra` classes are tried again, with exponential backoff and full jitter,
a bounded number of times. Each attempt, successful or not, goes to `on_attempt`, which is how
the pipeline records attempts in the journal.

Tests inject the wait strategy and the sleep function; nothing here has to really sleep.
"""

from __future__ import annotations

import time
from typing import Callable, Generic, TypeVar

from pydantic import BaseModel, Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.wait import wait_base

from executor.errors import ErrorSignature, unclassified

T = TypeVar("T")

DEFAULT_WAIT = wait_random_exponential(multiplier=10, max=300)  # 0-10 s, 0-20 s, ... capped


class AttemptReport(BaseModel):
    """One attempt, as the journal records it."""

    attempt: int = Field(ge=1, description="1-based attempt number.")
    succeeded: bool = Field(description="The classifier found nothing wrong.")
    signature: ErrorSignature | None = Field(default=None, description="Why it failed.")
    will_retry: bool = Field(default=False, description="Another attempt follows.")
    wait_s: float = Field(default=0.0, description="Backoff before the next attempt.")
    exception: str | None = Field(default=None, description="repr of a raised exception.")


class _Failed(Exception, Generic[T]):
    """Carries one failed attempt through tenacity (a result that failed, or an exception)."""

    def __init__(self, attempt: int, sig: ErrorSignature, result: T | None = None,
                 error: BaseException | None = None):
        super().__init__(sig.name)
        self.attempt, self.signature, self.result, self.error = attempt, sig, result, error

    def report(self, will_retry: bool, wait_s: float) -> AttemptReport:
        return AttemptReport(attempt=self.attempt, succeeded=False, signature=self.signature,
                             will_retry=will_retry, wait_s=wait_s,
                             exception=repr(self.error) if self.error is not None else None)


def run_with_retries(
    fn: Callable[[int], T],
    classify: Callable[[T | Exception], ErrorSignature | None],
    max_attempts: int = 3,
    on_attempt: Callable[[AttemptReport], None] | None = None,
    *,
    wait: wait_base = DEFAULT_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn(attempt)` until it succeeds, fails permanently, or attempts run out.

    `classify` names what went wrong with a result or a raised exception (None: success; an
    exception it cannot name counts as `unclassified`, which is permanent). The last result is
    returned even when it failed; the last exception is re-raised.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    report = on_attempt or (lambda _: None)
    attempt_no = 0

    def one_attempt() -> T:
        nonlocal attempt_no
        attempt_no += 1
        try:
            result = fn(attempt_no)
        except Exception as exc:  # KeyboardInterrupt and SystemExit pass through untouched
            sig = classify(exc) or unclassified(f"{type(exc).__name__}: {exc}", "exception")
            raise _Failed(attempt_no, sig, error=exc) from exc
        sig = classify(result)
        if sig is not None:
            raise _Failed(attempt_no, sig, result=result)
        report(AttemptReport(attempt=attempt_no, succeeded=True))
        return result

    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        sleep=sleep,
        retry=retry_if_exception(lambda e: isinstance(e, _Failed) and e.signature.retry_may_help),
        before_sleep=lambda state: report(
            state.outcome.exception().report(True, state.next_action.sleep)),
        reraise=True,
    )
    try:
        return retrying(one_attempt)
    except _Failed as final:
        report(final.report(False, 0.0))
        if final.error is not None:
            raise final.error from None
        return final.result
