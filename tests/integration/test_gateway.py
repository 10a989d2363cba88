"""The model gateway over real HTTP (no Docker): the official openai client talks to the
gateway, the gateway to the scripted OpenAI-compatible server with the real key."""

from __future__ import annotations

import base64
import concurrent.futures

import openai
import pytest
from pydantic import SecretStr

from executor.core.errors import UserInputError, classify_text
from executor.parts.gateway import Gateway, GatewayOptions, Upstream, check_upstream, replay_from
from executor.parts.gateway.budget import Budget, Budgets
from executor.parts.gateway.limiter import Limits
from executor.parts.gateway.record import read_calls, summarise
from executor.testing.llm_script import LlmScript, RateWindow, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM

KEY = "sk-gateway-test-5b1e0c9d7a2f4e3b"
USER = [{"role": "user", "content": "fix it"}]


def upstream(llm: ScriptedLLM) -> Upstream:
    return Upstream(base_url=llm.base_url, api_key=SecretStr(KEY), model="scripted-model")


def client(gw: Gateway, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=token, max_retries=0)


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), raw.hex(), raw.hex().upper()]


def test_calls_carry_the_real_key_upstream_and_only_the_token_downstream(tmp_path):
    turns = [reply("one", usage=TurnUsage(input_tokens=40, output_tokens=9)), reply("two")]
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            assert KEY not in lease.token
            c = client(gw, lease.token)
            assert c.chat.completions.create(model="m", messages=USER) \
                .choices[0].message.content == "one"
            assert c.responses.create(model="m", input=f"echo {KEY}").output_text == "two"
        with pytest.raises(openai.AuthenticationError):  # revoked with the attempt
            c.models.list()
    calls = read_calls(tmp_path / "calls.jsonl")
    assert [(x.path, x.status, x.upstream_statuses) for x in calls] == [
        ("chat/completions", 200, [200]), ("responses", 200, [200])]
    assert calls[0].usage["prompt_tokens"] == 40 and calls[0].tokens.output_tokens == 9
    record = (tmp_path / "calls.jsonl").read_text()
    assert not [e for e in encodings(KEY) if e in record]
    assert "[REDACTED]" in record  # the key the agent sent in its prompt was masked


def test_a_429_with_retry_after_is_waited_out_by_the_gateway(tmp_path):
    turns = [fail("rate_limit", retry_after_s=0.2), reply("after the wait")]
    with ScriptedLLM(LlmScript(turns=turns)) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            answer = client(gw, lease.token).chat.completions.create(model="m", messages=USER)
    assert answer.choices[0].message.content == "after the wait"
    [only] = read_calls(tmp_path / "calls.jsonl")
    assert only.upstream_statuses == [429, 200] and only.upstream_retries == 1
    assert only.waited_s >= 0.2  # held by the limiter for the provider's retry-after
    traffic, _ = summarise([only], "calls.jsonl")
    assert traffic.upstream_429 == 1 and traffic.agent_saw_429 == 0


def test_a_retry_after_beyond_the_bound_reaches_the_agent(tmp_path):
    options = GatewayOptions(limits=Limits(max_retry_wait_s=1))
    with ScriptedLLM([fail("rate_limit", retry_after_s=30)]) as llm, Gateway(options) as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            with pytest.raises(openai.RateLimitError) as err:
                client(gw, lease.token).chat.completions.create(model="m", messages=USER)
    assert err.value.response.headers["retry-after"] == "30"
    assert read_calls(tmp_path / "calls.jsonl")[0].upstream_statuses == [429]


def test_one_limiter_paces_concurrent_attempts_under_the_provider_rate(tmp_path):
    """Six attempts at once against a provider allowing 2 calls per second: every agent gets
    its answer, the provider's 429s stay inside the gateway."""
    script = LlmScript(turns=[reply(f"r{n}") for n in range(6)],
                       rate_limit=RateWindow(requests=2, window_s=1.0))
    with ScriptedLLM(script) as llm, Gateway() as gw:
        leases = [gw.lease(tmp_path / f"a{n}.jsonl", upstream=upstream(llm)) for n in range(6)]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda lease: client(gw, lease.token).chat.completions
                                    .create(model="m", messages=USER), leases))
        upstream_statuses = [r.status for r in llm.requests]
    assert sorted(a.choices[0].message.content for a in answers) == [f"r{n}" for n in range(6)]
    calls = [c for n in range(6) for c in read_calls(tmp_path / f"a{n}.jsonl")]
    assert all(c.status == 200 for c in calls)
    assert upstream_statuses.count(200) == 6
    assert sum(c.waited_s for c in calls) > 0


def test_streams_pass_through_and_their_usage_is_recorded(tmp_path):
    turns = [reply("chunked", call("bash", command="ls"),
                   usage=TurnUsage(input_tokens=21, output_tokens=4)),
             reply("events", usage=TurnUsage(input_tokens=8, output_tokens=2))]
    with ScriptedLLM(turns) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            c = client(gw, lease.token)
            chunks = list(c.chat.completions.create(
                model="m", messages=USER, stream=True, stream_options={"include_usage": True}))
            events = list(c.responses.create(model="m", input="x", stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "chunked"
    assert events[-1].response.output_text == "events"
    calls = read_calls(tmp_path / "calls.jsonl")
    assert [c.stream for c in calls] == [True, True]
    assert [(c.tokens.input_tokens, c.tokens.output_tokens) for c in calls] == [(21, 4), (8, 2)]
    assert calls[0].response_type == "text/event-stream" and "[DONE]" in calls[0].response_body


def test_a_spent_token_budget_is_refused_with_an_error_the_taxonomy_names(tmp_path):
    options = GatewayOptions(budgets=Budgets(attempt=Budget(tokens=50)))
    turns = [reply("big", usage=TurnUsage(input_tokens=45, output_tokens=10)), reply("never")]
    with ScriptedLLM(turns) as llm, Gateway(options) as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            c = client(gw, lease.token)
            c.chat.completions.create(model="m", messages=USER)  # crosses the budget
            with pytest.raises(openai.BadRequestError) as err:
                c.chat.completions.create(model="m", messages=USER)
        assert llm.turns_served == 1  # the refused call never went upstream
    assert classify_text(f"Error code: 400 - {err.value.body}", "agent").name == \
        "budget_exhausted"
    traffic, usage = summarise(read_calls(tmp_path / "calls.jsonl"), "calls.jsonl")
    assert traffic.budget_exhausted and usage.input_tokens + usage.output_tokens == 55


def test_a_record_replays_without_upstream_and_refuses_a_different_request(tmp_path):
    turns = [reply(None, call("bash", command="ls")), reply("done")]
    asked = [[*USER], [*USER, {"role": "assistant", "content": "ok"}]]
    with ScriptedLLM(turns) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "rec.jsonl", upstream=upstream(llm)) as lease:
            c = client(gw, lease.token)
            first = [c.chat.completions.create(model="m", messages=m).model_dump()
                     for m in asked]
    with Gateway() as gw:  # no upstream at all
        with gw.leased(tmp_path / "replayed.jsonl",
                       replay=replay_from(tmp_path / "rec.jsonl")) as lease:
            c = client(gw, lease.token)
            again = [c.chat.completions.create(model="m", messages=m).model_dump()
                     for m in asked]
        with gw.leased(tmp_path / "diverged.jsonl",
                       replay=replay_from(tmp_path / "rec.jsonl")) as lease:
            with pytest.raises(openai.BadRequestError, match="replay"):
                client(gw, lease.token).chat.completions.create(model="m", messages=asked[1])
    assert again == first
    assert summarise(read_calls(tmp_path / "replayed.jsonl"), "x")[1].llm_calls == 2


def test_the_key_check_names_a_wrong_key_and_an_unreachable_endpoint():
    with ScriptedLLM(LlmScript(turns=[], api_key=SecretStr(KEY))) as llm:
        check_upstream(upstream(llm))
        wrong = upstream(llm).model_copy(update={"api_key": SecretStr("sk-wrong-0000000000000")})
        with pytest.raises(UserInputError, match="refused the key"):
            check_upstream(wrong)
        port = llm.port
    with pytest.raises(UserInputError, match="cannot reach"):
        check_upstream(Upstream(base_url=f"http://127.0.0.1:{port}/v1", api_key=SecretStr(KEY)))


def test_a_requests_per_minute_limit_keeps_calls_under_the_providers_rate(tmp_path):
    """The gateway's own pacing (2 per 1.3 s) under a provider allowing 2 per 1 s: six
    concurrent attempts, and the provider never has to refuse one."""
    script = LlmScript(turns=[reply(f"r{n}") for n in range(6)],
                       rate_limit=RateWindow(requests=2, window_s=1.0))
    options = GatewayOptions(limits=Limits(requests_per_minute=2, window_s=1.3))
    with ScriptedLLM(script) as llm, Gateway(options) as gw:
        leases = [gw.lease(tmp_path / f"a{n}.jsonl", upstream=upstream(llm)) for n in range(6)]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda lease: client(gw, lease.token).chat.completions
                          .create(model="m", messages=USER), leases))
        statuses = [r.status for r in llm.requests]
    assert statuses == [200] * 6
    calls = [c for n in range(6) for c in read_calls(tmp_path / f"a{n}.jsonl")]
    assert sorted(c.waited_s > 0 for c in calls).count(True) >= 4  # all but the first two
