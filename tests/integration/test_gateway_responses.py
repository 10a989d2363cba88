"""The gateway on the Responses API over real HTTP (no Docker): the official openai client
streams through the gateway to the scripted server; the events arrive whole and in order, the
usage recorded is the provider's, a refused request arrives with the real API's status and
body, a budget refusal has the API's error shape, and a record replays to a client that mints
fresh ids each run (as Codex CLI does)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest
from pydantic import SecretStr

from executor.core.errors import classify_text
from executor.parts.gateway import Gateway, GatewayOptions, Upstream, replay_from
from executor.parts.gateway.budget import Budget, Budgets
from executor.parts.gateway.record import read_calls
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM

KEY = "sk-gateway-responses-4c2a9e71b0d3"
TOOLS = [{"type": "function", "name": "exec_command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}}}]


def upstream(llm: ScriptedLLM) -> Upstream:
    return Upstream(base_url=llm.base_url, api_key=SecretStr(KEY), model="scripted-model")


def client(gw: Gateway, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=token, max_retries=0)


def test_a_streamed_response_arrives_event_by_event_with_the_providers_usage(tmp_path):
    turn = reply("Running the benchmark now.", call("exec_command", cmd="python bench.py"),
                 usage=TurnUsage(input_tokens=321, output_tokens=45, cached_tokens=300,
                                 reasoning_tokens=7))
    with (ScriptedLLM(LlmScript(turns=[turn], api_key=SecretStr(KEY))) as llm, Gateway() as gw,
          gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease):
        c = client(gw, lease.token)
        with c.responses.stream(model="m", input="speed it up", tools=TOOLS) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added",
                 "response.output_text.delta", "response.output_text.done",
                 "response.function_call_arguments.delta",
                 "response.function_call_arguments.done", "response.output_item.done"):
        assert kind in kinds, kind
    assert kinds.count("response.output_text.delta") > 1  # text in pieces, as it is streamed
    assert final.output_text == "Running the benchmark now."
    [fc] = [item for item in final.output if item.type == "function_call"]
    assert json.loads(fc.arguments) == {"cmd": "python bench.py"}
    [record] = read_calls(tmp_path / "calls.jsonl")
    assert record.stream and record.response_type == "text/event-stream"
    assert record.usage["input_tokens"] == 321  # the provider's own fields, as reported
    assert record.tokens.cached_input_tokens == 300 and record.tokens.reasoning_tokens == 7
    assert record.replay_key is not None


def test_an_unanswered_function_call_is_refused_as_the_api_refuses_it(tmp_path):
    with (ScriptedLLM(LlmScript(turns=[reply("unused")])) as llm, Gateway() as gw,
          gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease):
        c = client(gw, lease.token)
        with pytest.raises(openai.BadRequestError) as caught:
            c.responses.create(model="m", stream=True, input=[
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "call_9", "name": "exec_command",
                 "arguments": "{}"}])
        served = llm.turns_served
    assert caught.value.status_code == 400 and served == 0  # the model never ran
    assert caught.value.body["message"] == "No tool output found for function call call_9."
    assert caught.value.body["type"] == "invalid_request_error"
    assert classify_text(str(caught.value), "agent").name == "tool_output_missing"
    [record] = read_calls(tmp_path / "calls.jsonl")
    assert record.status == 400 and record.upstream_statuses == [400]


def test_a_spent_budget_refuses_a_streamed_request_in_the_apis_error_shape(tmp_path):
    options = GatewayOptions(budgets=Budgets(attempt=Budget(tokens=100)))
    turns = [reply("first", usage=TurnUsage(input_tokens=90, output_tokens=20))]
    with (ScriptedLLM(LlmScript(turns=turns)) as llm, Gateway(options) as gw,
          gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease):
        c = client(gw, lease.token)
        list(c.responses.create(model="m", input="one", stream=True))
        with pytest.raises(openai.BadRequestError) as caught:
            c.responses.create(model="m", input="two", stream=True)
    assert caught.value.body["code"] == "isobench_budget_exhausted"
    assert classify_text(str(caught.value), "agent").name == "budget_exhausted"
    assert [c.gateway_error for c in read_calls(tmp_path / "calls.jsonl")] == \
        [None, "budget_exhausted"]


def responses_body(prompt: str, session: str, wall: str) -> dict:
    """A request shaped like Codex CLI's: per-run ids and timings besides what matters."""
    return {"model": "m", "stream": True, "store": False, "prompt_cache_key": session,
            "client_metadata": {"session_id": session}, "tools": TOOLS, "input": [
                {"type": "message", "id": f"msg_{session}", "role": "user",
                 "content": [{"type": "input_text", "text": prompt}]},
                {"type": "function_call", "call_id": "call_1", "name": "exec_command",
                 "arguments": "{\"cmd\": \"ls\"}"},
                {"type": "function_call_output", "id": f"fco_{session}", "call_id": "call_1",
                 "output": f"Chunk ID: {session[:6]}\nWall time: {wall} seconds\nOutput:\na.py\n"}]}


class Answer:
    def __init__(self, status: int, content_type: str, text: str):
        self.status_code, self.content_type, self.text = status, content_type, text

    def json(self) -> dict:
        return json.loads(self.text)


def post(gw: Gateway, token: str, body: dict) -> Answer:
    request = urllib.request.Request(f"{gw.base_url}/responses", json.dumps(body).encode(), {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Answer(resp.status, resp.headers["content-type"], resp.read().decode())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers["content-type"], err.read().decode())


def test_a_record_replays_to_a_client_that_mints_new_ids_but_not_to_another_request(tmp_path):
    record = tmp_path / "calls.jsonl"
    with (ScriptedLLM(LlmScript(turns=[reply("recorded answer")])) as llm, Gateway() as gw,
          gw.leased(record, upstream=upstream(llm)) as lease):
        first = post(gw, lease.token, responses_body("speed it up", "a1b2c3d4", "0.31"))
    assert first.status_code == 200 and "recorded answer" in first.text
    with (Gateway() as gw,
          gw.leased(tmp_path / "again.jsonl", replay=replay_from(record)) as lease):
        again = post(gw, lease.token, responses_body("speed it up", "ffee9988", "2.07"))
        with gw.leased(tmp_path / "other.jsonl", replay=replay_from(record)) as lease:
            other = post(gw, lease.token, responses_body("make it slower", "ffee9988", "0.31"))
    assert again.status_code == 200 and again.text == first.text
    assert again.content_type.startswith("text/event-stream")
    assert other.status_code == 400 and other.json()["error"]["code"] == "replay_mismatch"


def test_an_error_met_mid_stream_arrives_as_response_failed(tmp_path):
    turns = [fail("server_error", in_stream=True), fail("server_error", in_stream=True)]
    with (ScriptedLLM(LlmScript(turns=turns)) as llm, Gateway() as gw,
          gw.leased(tmp_path / "calls.jsonl", upstream=upstream(llm)) as lease):
        c = client(gw, lease.token)
        events = list(c.responses.create(model="m", input="go", stream=True))
        with pytest.raises(openai.InternalServerError):  # not streamed: the HTTP error
            c.responses.create(model="m", input="go")
    assert [e.type for e in events] == ["response.created", "response.in_progress",
                                        "response.failed"]
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.code == "server_error"
    assert [(r.status, r.stream) for r in read_calls(tmp_path / "calls.jsonl")] == \
        [(200, True), (500, False)]
