"""The gateway's record arithmetic and limiter decisions (pure: no HTTP, a fake clock)."""

from __future__ import annotations

import pytest

from executor.parts.gateway.limiter import Limits, SharedLimiter
from executor.parts.gateway.record import (CallRecord, normalise_usage, summarise, usage_in,
                                     usage_in_sse)
from executor.core.pricing import ModelPrice, PriceTable

PRICES = PriceTable(models={"m": ModelPrice(input=2.0, cached_input=0.5, output=8.0)})


def test_chat_and_responses_usage_normalise_alike_and_are_priced():
    chat = {"prompt_tokens": 1000, "completion_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 30}}
    responses = {"input_tokens": 1000, "output_tokens": 100,
                 "input_tokens_details": {"cached_tokens": 400},
                 "output_tokens_details": {"reasoning_tokens": 30}}
    a, b = normalise_usage(chat, "m", PRICES), normalise_usage(responses, "m", PRICES)
    assert a == b
    assert (a.input_tokens, a.cached_input_tokens, a.reasoning_tokens) == (1000, 400, 30)
    assert a.cost_usd == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)
    assert normalise_usage(None, "m", PRICES) is None


def test_usage_is_found_in_streams_of_both_apis():
    chat = ('data: {"choices": [{"delta": {"content": "x"}}]}\n\n'
            'data: {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}\n\n'
            'data: [DONE]\n\n')
    responses = ('event: response.created\ndata: {"type": "response.created", "response": '
                 '{"usage": null}}\n\nevent: response.completed\ndata: {"type": '
                 '"response.completed", "response": {"usage": {"input_tokens": 7}}}\n\n')
    assert usage_in_sse(chat) == {"prompt_tokens": 5, "completion_tokens": 1}
    assert usage_in_sse(responses) == {"input_tokens": 7}
    assert usage_in({"error": {"message": "no"}}) is None


def test_summary_counts_every_upstream_try_and_what_the_agent_saw():
    calls = [
        CallRecord(seq=1, method="POST", path="responses", status=200, request_sha256="a",
                   upstream_statuses=[429, 429, 200], upstream_retries=2, waited_s=1.5,
                   tokens=normalise_usage({"input_tokens": 10, "output_tokens": 2}, "m",
                                          PRICES)),
        CallRecord(seq=2, method="POST", path="responses", status=503, request_sha256="b",
                   upstream_statuses=[503]),
        CallRecord(seq=3, method="POST", path="responses", status=504, request_sha256="c",
                   upstream_statuses=[0], timeouts=1, gateway_error="upstream_timeout"),
        CallRecord(seq=4, method="POST", path="responses", status=400, request_sha256="d",
                   gateway_error="budget_exhausted"),
    ]
    traffic, usage = summarise(calls, "model_calls.jsonl")
    assert (traffic.calls, traffic.answered_ok, traffic.upstream_429, traffic.gateway_retries,
            traffic.upstream_5xx, traffic.upstream_timeouts, traffic.agent_saw_5xx) == \
        (4, 1, 2, 2, 1, 1, 2)
    assert traffic.budget_exhausted and traffic.waited_s == 1.5
    assert usage.llm_calls == 1 and usage.input_tokens == 10 and usage.cost_usd is not None
    assert traffic.replay_mismatch is None


def test_a_replay_the_agent_did_not_repeat_is_the_attempts_cause_whatever_the_agent_says(
        tmp_path):
    """OpenHands records the gateway's 400 as a bare "BadRequestError"; the record knows."""
    from executor.parts.agents.base import AgentEnding, AgentRun
    from executor.parts.gateway.attempt import AttemptTraffic
    from executor.parts.gateway.record import RecordWriter

    message = ("replay: call 1 differs from the record (recorded chat/completions 0a1b2c, got "
               "chat/completions 3d4e5f); the agent did not repeat itself")
    record = tmp_path / "model_calls.jsonl"
    RecordWriter(record).append(CallRecord(
        seq=1, method="POST", path="chat/completions", status=400, request_sha256="3d4e5f",
        gateway_error="replay_mismatch", response_body={"error": {
            "message": message, "type": "invalid_request_error", "code": "replay_mismatch"}}))
    traffic = AttemptTraffic(record)
    traffic.close()
    assert traffic.traffic.replay_mismatch == message
    said = AgentRun(ending=AgentEnding.ERROR, detail="openhands: error")
    named = traffic.apply(said)
    assert named.signature.name == "replay_mismatch" and named.signature.source == "gateway"
    assert named.signature.evidence == message and named.signature.error_class == "permanent"
    finished = traffic.apply(AgentRun(ending=AgentEnding.FINISHED))
    assert finished.signature is None  # an agent that finished anyway is not overruled


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(limiter: SharedLimiter, tokens: int) -> None:
    """What _admit records, without an event loop (nothing waits here)."""
    now = limiter._clock()
    limiter._starts.append(now)
    limiter._tokens.append([now, tokens])


def test_the_limiter_waits_for_the_oldest_request_and_token_to_leave_the_window():
    clock = FakeClock()
    limiter = SharedLimiter(Limits(requests_per_minute=2, tokens_per_minute=1000), clock=clock)
    assert limiter._wait_needed(100) == 0
    admitted(limiter, 100)
    clock.now += 10
    admitted(limiter, 100)
    assert limiter._wait_needed(100) == pytest.approx(50)  # the first leaves at +60
    clock.now += 50
    assert limiter._wait_needed(100) == 0
    admitted(limiter, 700)  # 800 tokens in the last minute now
    assert limiter._wait_needed(300) == pytest.approx(10)  # wait for the 100 of t=+10 to go
    limiter.hold_off(30)  # a provider's retry-after outweighs both
    assert limiter._wait_needed(1) == pytest.approx(30)


def test_a_request_larger_than_the_token_budget_waits_only_for_an_empty_window():
    clock = FakeClock()
    limiter = SharedLimiter(Limits(tokens_per_minute=100), clock=clock)
    assert limiter._wait_needed(5000) == 0  # alone it goes
    admitted(limiter, 5000)
    clock.now += 1
    assert limiter._wait_needed(10) == pytest.approx(59)
