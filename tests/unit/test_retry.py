"""Retries only for retryable and infra failures, bounded, with every attempt reported.
Waits are injected: nothing here sleeps."""

import pytest
from tenacity import wait_exponential, wait_none

from executor.errors import ErrorClass, classify_text
from executor.retry import DEFAULT_WAIT, AttemptReport, run_with_retries


class Scripted:
    """fn(attempt) that returns or raises the next scripted outcome."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[int] = []

    def __call__(self, attempt: int):
        self.calls.append(attempt)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def classify(result):
    """Results are strings: 'ok' succeeds, anything else is evidence for the taxonomy."""
    if result == "ok":
        return None
    return classify_text(str(result), "test")


def run(fn, max_attempts=3, wait=None):
    reports: list[AttemptReport] = []
    slept: list[float] = []
    result = run_with_retries(fn, classify, max_attempts, reports.append,
                              wait=wait or wait_none(), sleep=slept.append)
    return result, reports, slept


def test_rate_limit_then_success_is_one_retry_and_both_attempts_are_reported():
    fn = Scripted("Error code: 429 - Rate limit reached", "ok")
    result, reports, slept = run(fn)
    assert result == "ok" and fn.calls == [1, 2]
    assert [(r.attempt, r.succeeded, r.will_retry) for r in reports] == \
        [(1, False, True), (2, True, False)]
    assert reports[0].signature.name == "rate_limit"
    assert slept == [0.0]


@pytest.mark.parametrize("evidence,name", [
    ("Error code: 401 - Incorrect API key provided", "auth"),
    ("Error code: 429 - You exceeded your current quota", "quota_exhausted"),
    ("Error code: 400 - No tool output found for function call call_3.", "tool_output_missing"),
])
def test_permanent_failures_are_not_retried(evidence, name):
    fn = Scripted(evidence, "ok")
    result, reports, slept = run(fn)
    assert result == evidence and fn.calls == [1]
    assert len(reports) == 1 and reports[0].signature.name == name
    assert not reports[0].will_retry and slept == []


def test_infra_failures_are_retried():
    fn = Scripted(RuntimeError("Failed to initialize NVML: Unknown Error"), "ok")
    result, reports, _ = run(fn)
    assert result == "ok"
    assert reports[0].signature.error_class == ErrorClass.INFRA
    assert "RuntimeError" in reports[0].exception


def test_attempts_are_bounded_and_the_last_failure_is_returned():
    fn = Scripted(*["Error code: 503 - Service Unavailable"] * 5)
    result, reports, slept = run(fn, max_attempts=3)
    assert fn.calls == [1, 2, 3] and result.startswith("Error code: 503")
    assert [r.will_retry for r in reports] == [True, True, False]
    assert len(slept) == 2


def test_last_exception_is_reraised_after_reporting():
    fn = Scripted(*[TimeoutError("Request timed out.")] * 2)
    reports: list[AttemptReport] = []
    with pytest.raises(TimeoutError):
        run_with_retries(fn, classify, 2, reports.append, wait=wait_none(), sleep=lambda s: None)
    assert [r.attempt for r in reports] == [1, 2] and not reports[-1].will_retry


def test_unknown_exception_is_unclassified_and_not_retried():
    fn = Scripted(ValueError("something odd"), "ok")
    with pytest.raises(ValueError):
        run_with_retries(fn, lambda r: None if r == "ok" else None, 3, wait=wait_none(),
                         sleep=lambda s: None)
    assert fn.calls == [1]


def test_backoff_grows_and_is_reported():
    fn = Scripted(*["Error code: 500 - x"] * 3, "ok")
    _, reports, slept = run(fn, max_attempts=4, wait=wait_exponential(multiplier=1, max=60))
    assert slept == [1.0, 2.0, 4.0]
    assert [r.wait_s for r in reports] == [1.0, 2.0, 4.0, 0.0]


def test_default_wait_is_jittered_and_bounded():
    class State:
        attempt_number = 30

    waits = {DEFAULT_WAIT(State()) for _ in range(20)}
    assert all(0 <= w <= 300 for w in waits) and len(waits) > 1


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError):
        run_with_retries(lambda n: "ok", classify, 0)
