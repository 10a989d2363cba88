"""The gateway and the scripted server speaking Anthropic Messages over real HTTP (no Docker):
plain and streamed messages, count_tokens, the anthropic-* headers passed on, the real key sent
upstream as x-api-key and never downstream, Anthropic error shapes (429 retry-after, 529,
unpaired tool_use), budgets, usage and cost from the provider's own fields, and replay."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from executor.parts.gateway import Gateway, GatewayOptions, Upstream, replay_from
from executor.parts.gateway.budget import Budget, Budgets
from executor.parts.gateway.record import read_calls, summarise
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM

KEY = "sk-ant-gateway-test-0c4f1e9a7b2d5e8f"
MODEL = "claude-sonnet-4-5"
VERSION = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}
USER = [{"role": "user", "content": "fix it"}]


def upstream(llm: ScriptedLLM) -> Upstream:
    return Upstream(base_url=llm.base_url, api_key=SecretStr(KEY), model=MODEL,
                    wire="anthropic")


def post(url: str, body: dict, token: str, **headers: str) -> tuple[int, dict, bytes]:
    """One POST as Claude Code sends it: the token in x-api-key, anthropic-* headers."""
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST", headers={
        "content-type": "application/json", "x-api-key": token, **VERSION, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def message(**extra) -> dict:
    return {"model": MODEL, "max_tokens": 1024, "messages": USER, **extra}


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), raw.hex()]


def test_messages_plain_and_streamed_carry_usage_and_cost(tmp_path):
    usage = TurnUsage(input_tokens=5000, output_tokens=50, cached_tokens=3000,
                      cache_write_tokens=1000)
    turns = [reply("one", call("Bash", command="ls"), usage=usage), reply("two", usage=usage)]
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            url = gw.base_url + "/messages"
            status, _, raw = post(url, message(), lease.token)
            first = json.loads(raw)
            assert status == 200 and first["stop_reason"] == "tool_use"
            tool_use = first["content"][1]
            follow = USER + [{"role": "assistant", "content": first["content"]},
                             {"role": "user", "content": [{"type": "tool_result",
                                                           "tool_use_id": tool_use["id"],
                                                           "content": "a.txt"}]}]
            status, headers, raw = post(url, message(messages=follow, stream=True),
                                        lease.token)
            counted = post(url + "/count_tokens", {"model": MODEL, "messages": USER},
                           lease.token)
        seen = llm.requests
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = [line.split(": ", 1)[1] for line in raw.decode().splitlines()
              if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert counted[0] == 200 and json.loads(counted[2])["input_tokens"] > 0
    # Upstream: the real key in x-api-key, the agent's anthropic-* headers passed on.
    assert all(r.headers["x-api-key"] == "[REDACTED]" for r in seen)  # the server masks it
    assert all(r.headers["anthropic-beta"] == "claude-code-20250219" for r in seen)
    calls = read_calls(tmp_path / "calls.jsonl")
    assert [(c.path, c.status, c.stream) for c in calls] == [
        ("messages", 200, False), ("messages", 200, True), ("messages/count_tokens", 200, False)]
    for c in calls[:2]:  # the provider's fields: input excludes the 3000 read + 1000 written
        assert (c.tokens.input_tokens, c.tokens.cached_input_tokens,
                c.tokens.cache_creation_input_tokens, c.tokens.output_tokens) == \
            (1000, 3000, 1000, 50)
        # claude-sonnet-4-5 list prices: $3 in, $0.30 cache read, $3.75 5-min write, $15 out.
        assert c.tokens.cost_usd == pytest.approx((1000 * 3 + 3000 * 0.3 + 1000 * 3.75
                                                   + 50 * 15) / 1e6)
    assert calls[2].tokens is None  # count_tokens is not a model call
    _, total = summarise(calls, "calls.jsonl")
    assert total.llm_calls == 2 and total.cache_creation_input_tokens == 2000
    record = (tmp_path / "calls.jsonl").read_text()
    assert not [f for f in forms(KEY) if f in record]


def test_provider_errors_keep_their_anthropic_shape(tmp_path):
    turns = [fail("rate_limit", retry_after_s=0.05), reply("after the wait"),
             fail("overloaded")]
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, Gateway() as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            url = gw.base_url + "/messages"
            waited = post(url, message(), lease.token)
            overloaded = post(url, message(), lease.token)
            unpaired = post(url, message(messages=USER + [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9",
                                                   "name": "Bash", "input": {}}]},
                {"role": "user", "content": "go on"}]), lease.token)
            no_version = post(url, message(), lease.token, **{"anthropic-version": ""})
        unknown = post(url, message(), lease.token)  # revoked with the attempt
    assert waited[0] == 200  # the gateway waited out the 429's retry-after itself
    assert overloaded[0] == 529 and json.loads(overloaded[2])["error"] == {
        "type": "overloaded_error", "message": "Overloaded"}
    assert json.loads(overloaded[2])["type"] == "error" and "request-id" in overloaded[1]
    assert unpaired[0] == 400
    assert "`tool_use` ids were found without `tool_result` blocks immediately after: " \
           "toolu_9" in json.loads(unpaired[2])["error"]["message"]
    assert no_version[0] == 400
    assert unknown[0] == 401 and json.loads(unknown[2])["error"]["type"] == \
        "authentication_error"
    calls = read_calls(tmp_path / "calls.jsonl")
    assert [c.upstream_statuses for c in calls] == [[429, 200], [529], [400], [400]]
    assert llm.turns_served == 3  # rejected requests consume no turn


def test_cache_reads_count_against_the_token_budget(tmp_path):
    """Claude Code's prompts are mostly cache reads, which Anthropic counts apart from
    input_tokens: a budget that ignored them would barely move."""
    turns = [reply("cached", usage=TurnUsage(input_tokens=900, cached_tokens=800,
                                             output_tokens=10)), reply("never")]
    options = GatewayOptions(budgets=Budgets(attempt=Budget(tokens=500)))
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, \
            Gateway(options) as gw, \
            gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
        statuses = [post(gw.base_url + "/messages", message(), lease.token)[0]
                    for _ in range(2)]
    # 100 uncached + 800 read + 10 out = 910 >= 500, though input_tokens alone is 100.
    assert statuses == [200, 400] and llm.turns_served == 1


def test_budget_refusal_is_anthropic_shaped_and_replay_serves_the_record(tmp_path):
    turns = [reply("spent", usage=TurnUsage(input_tokens=900, output_tokens=200))]
    options = GatewayOptions(budgets=Budgets(attempt=Budget(tokens=1000)))
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, \
            Gateway(options) as gw:
        with gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease:
            url = gw.base_url + "/messages"
            first = post(url, message(stream=True), lease.token)
            refused = post(url, message(), lease.token)
    assert first[0] == 200
    body = json.loads(refused[2])
    assert refused[0] == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "isobench budget exhausted" in body["error"]["message"]
    traffic, _ = summarise(read_calls(tmp_path / "calls.jsonl"), "calls.jsonl")
    assert traffic.budget_exhausted
    replay = GatewayOptions(replay=tmp_path / "calls.jsonl")
    with Gateway(replay) as gw, gw.leased(tmp_path / "again.jsonl",
                   replay=replay_from(tmp_path / "calls.jsonl")) as lease:
        again = post(gw.base_url + "/messages", message(stream=True), lease.token)
    assert again[0] == 200 and again[2] == first[2]
    [replayed] = read_calls(tmp_path / "again.jsonl")
    assert replayed.tokens.input_tokens == 900 and replayed.tokens.output_tokens == 200


def test_a_record_replays_to_a_client_with_another_session_but_not_to_another_request(
        tmp_path):
    """Claude Code sends its device and session ids in metadata.user_id, new every run, and
    an agent that prints its environment sends its attempt token, new every attempt: the
    replay key of a Messages request sets both aside (gateway/messages_key.py, taken after
    the redactor), so the record serves the rerun; a request that asks something else is
    refused in Anthropic's shape."""
    def asked(n: int, token: str, **extra) -> dict:
        user_id = json.dumps({"device_id": f"{n}" * 64, "account_uuid": "",
                              "session_id": f"{n}" * 8 + "-0000-4000-8000-" + "0" * 12})
        said = f"fix it\n(env: ANTHROPIC_API_KEY={token})"
        return message(messages=[{"role": "user", "content": said}],
                       metadata={"user_id": user_id}, **extra)

    record = tmp_path / "calls.jsonl"
    with ScriptedLLM(LlmScript(turns=[reply("recorded answer")], api_key=SecretStr(KEY))) as llm, \
            Gateway() as gw, gw.leased(record, upstream=upstream(llm)) as lease:
        first = post(gw.base_url + "/messages", asked(1, lease.token), lease.token)
    assert first[0] == 200 and b"recorded answer" in first[2]
    with Gateway() as gw:
        with gw.leased(tmp_path / "again.jsonl", replay=replay_from(record)) as lease:
            again = post(gw.base_url + "/messages", asked(2, lease.token), lease.token)
        with gw.leased(tmp_path / "other.jsonl", replay=replay_from(record)) as lease:
            other = post(gw.base_url + "/messages", asked(2, lease.token, system="Be brief."),
                         lease.token)
    assert again[0] == 200 and again[2] == first[2]
    [served] = read_calls(tmp_path / "again.jsonl")
    assert served.replay_key == read_calls(record)[0].replay_key
    assert served.request_sha256 != read_calls(record)[0].request_sha256
    body = json.loads(other[2])
    assert other[0] == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("replay: call 1 differs from the record")
    assert read_calls(tmp_path / "other.jsonl")[0].gateway_error == "replay_mismatch"
