"""The scripted server over real HTTP, driven by the official openai client and by plain JSON
(as litellm-style clients send it). Clients use max_retries=0 unless a test is about retries,
so each request consumes exactly the turn the test expects."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import openai
import pytest

from executor.core.errors import classify_text
from executor.testing.llm_script import LlmScript, RateWindow, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM

KEY = "sk-isobench-test-abcdefghijklmnop"
BASH = {"type": "function", "name": "bash", "description": "Run a command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                       "required": ["command"]}}
CHAT_BASH = {"type": "function", "function": {k: v for k, v in BASH.items() if k != "type"}}


def client(llm: ScriptedLLM, key: str = KEY, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key=key, max_retries=retries)


def error_body(exc: openai.APIStatusError) -> dict:
    return exc.response.json()


# ----------------------------------------------------------------------- Responses API


def test_responses_tool_call_answered_correctly_then_text():
    usage = TurnUsage(input_tokens=1200, output_tokens=80, cached_tokens=1024,
                      reasoning_tokens=32)
    script = [reply(None, call("bash", command="ls"), usage=usage), reply("All done.")]
    with ScriptedLLM(LlmScript(turns=script, api_key=KEY)) as llm:
        c = client(llm)
        history = [{"role": "user", "content": "list files"}]
        first = c.responses.create(model="gpt-5", input=history, tools=[BASH])
        fc = first.output[0]
        assert (fc.type, fc.name, json.loads(fc.arguments)) == \
            ("function_call", "bash", {"command": "ls"})
        assert fc.call_id == "call_1"
        u = first.usage
        assert (u.input_tokens, u.output_tokens, u.input_tokens_details.cached_tokens,
                u.output_tokens_details.reasoning_tokens, u.total_tokens) == (1200, 80, 1024, 32,
                                                                              1280)
        history += [fc.model_dump(exclude_none=True),
                    {"type": "function_call_output", "call_id": fc.call_id, "output": "a.py"}]
        second = c.responses.create(model="gpt-5", input=history, tools=[BASH])
        assert second.output_text == "All done." and second.status == "completed"
        assert second.usage.input_tokens > 0  # estimated when not scripted
        assert llm.turns_served == 2 and llm.turns_left == 0


def test_responses_unpaired_call_gets_the_real_400_body():
    script = [reply(None, call("task_done")), reply("never")]
    with ScriptedLLM(script) as llm:
        c = client(llm)
        first = c.responses.create(model="gpt-5", input="do it")
        history = [{"role": "user", "content": "do it"}, first.output[0].model_dump(),
                   {"role": "user", "content": "ERROR! Your Patch is empty. Please provide a "
                                               "patch that fixes the problem."}]
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model="gpt-5", input=history)
        assert error_body(err.value) == {"error": {
            "message": "No tool output found for function call call_1.",
            "type": "invalid_request_error", "param": "input", "code": None}}
        assert classify_text(str(err.value), "stderr").name == "tool_output_missing"
        assert llm.turns_served == 1  # a refused request consumes no turn
        assert [r.status for r in llm.requests] == [200, 400]
        assert llm.requests[-1].turn is None


def test_responses_parallel_calls_need_every_output():
    script = [reply(None, call("bash", command="a"), call("bash", command="b")), reply("ok")]
    with ScriptedLLM(script) as llm:
        c = client(llm)
        calls = c.responses.create(model="m", input="go").output
        history = [{"role": "user", "content": "go"}, *[x.model_dump() for x in calls]]
        only_one = history + [{"type": "function_call_output", "call_id": "call_2",
                               "output": "b"}]
        with pytest.raises(openai.BadRequestError, match="call_1"):
            c.responses.create(model="m", input=only_one)
        both = only_one + [{"type": "function_call_output", "call_id": "call_1", "output": "a"}]
        assert c.responses.create(model="m", input=both).output_text == "ok"


def test_responses_previous_response_id_sends_only_new_items():
    script = [reply(None, call("bash", command="ls")), reply("done"), reply("never")]
    with ScriptedLLM(script) as llm:
        c = client(llm)
        first = c.responses.create(model="m", input="go", tools=[BASH])
        fc = first.output[0]
        output = {"type": "function_call_output", "call_id": fc.call_id, "output": "x"}
        with pytest.raises(openai.BadRequestError) as err:  # forgot the output
            c.responses.create(model="m", previous_response_id=first.id,
                               input=[{"role": "user", "content": "next"}])
        assert "No tool output found for function call call_1." in str(err.value)
        with pytest.raises(openai.BadRequestError) as err:  # re-sent the stored call
            c.responses.create(model="m", previous_response_id=first.id,
                               input=[fc.model_dump(), output])
        assert error_body(err.value) == {"error": {
            "message": f"Duplicate item found with id {fc.id}. Remove duplicate items from "
                       "your input and try again.",
            "type": "invalid_request_error", "param": "input", "code": None}}
        second = c.responses.create(model="m", previous_response_id=first.id, input=[output])
        assert second.output_text == "done" and second.previous_response_id == first.id
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model="m", previous_response_id="resp_nope", input="x")
        assert error_body(err.value)["error"]["code"] == "previous_response_not_found"


def test_output_for_an_unknown_call_is_refused():
    with ScriptedLLM([reply("never")]) as llm:
        with pytest.raises(openai.BadRequestError, match="No tool call found for function "
                                                         "call output with call_id call_9"):
            client(llm).responses.create(model="m", input=[
                {"role": "user", "content": "x"},
                {"type": "function_call_output", "call_id": "call_9", "output": "?"}])


# ----------------------------------------------------------------------- Chat Completions


def test_chat_tool_call_round_trip_and_usage():
    usage = TurnUsage(input_tokens=500, output_tokens=40, cached_tokens=256, reasoning_tokens=8)
    script = [reply("Let me look.", call("bash", command="ls"), usage=usage), reply("Done.")]
    with ScriptedLLM(script) as llm:
        c = client(llm)
        messages = [{"role": "user", "content": "list"}]
        first = c.chat.completions.create(model="gpt-4.1", messages=messages, tools=[CHAT_BASH])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me look."
        tc = choice.message.tool_calls[0]
        assert (tc.id, tc.function.name, json.loads(tc.function.arguments)) == \
            ("call_1", "bash", {"command": "ls"})
        u = first.usage
        assert (u.prompt_tokens, u.completion_tokens, u.total_tokens,
                u.prompt_tokens_details.cached_tokens,
                u.completion_tokens_details.reasoning_tokens) == (500, 40, 540, 256, 8)
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": tc.id, "content": "a.py"}]
        second = c.chat.completions.create(model="gpt-4.1", messages=messages)
        assert second.choices[0].message.content == "Done."
        assert second.choices[0].finish_reason == "stop"


def test_chat_unpaired_call_gets_the_real_400_body():
    with ScriptedLLM([reply(None, call("bash", command="ls"), call("bash", command="pwd"))]) \
            as llm:
        c = client(llm)
        msg = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        messages = [{"role": "user", "content": "x"},
                    msg.choices[0].message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
                    {"role": "user", "content": "and?"}]
        with pytest.raises(openai.BadRequestError) as err:
            c.chat.completions.create(model="m", messages=messages)
        assert error_body(err.value) == {"error": {
            "message": "An assistant message with 'tool_calls' must be followed by tool "
                       "messages responding to each 'tool_call_id'. The following tool_call_ids "
                       "did not have response messages: call_2",
            "type": "invalid_request_error", "param": "messages.[3].role", "code": None}}
        with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
            c.chat.completions.create(model="m", messages=[
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "call_1", "content": "stray"}])


def test_truncated_tool_call_arguments():
    cut = reply(None, call("bash", '{"command": "python -c \\"print(1'), truncated=True)
    with ScriptedLLM([cut]) as llm:
        choice = client(llm).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]).choices[0]
        assert choice.finish_reason == "length"
        with pytest.raises(json.JSONDecodeError) as err:
            json.loads(choice.message.tool_calls[0].function.arguments)
        assert classify_text(f"JSONDecodeError: {err.value}", "x").name == "truncated_tool_json"


def test_plain_json_client_as_litellm_sends_it():
    with ScriptedLLM([reply("hi", call("bash", command="ls"))]) as llm:
        request = urllib.request.Request(
            f"{llm.base_url}/chat/completions", method="POST",
            data=json.dumps({"model": "openai/scripted", "tools": [CHAT_BASH],
                             "messages": [{"role": "user", "content": "x"}]}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        assert body["object"] == "chat.completion" and body["model"] == "openai/scripted"
        assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "bash"
        assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens",
                                      "prompt_tokens_details", "completion_tokens_details"}


# ----------------------------------------------------------------------- scripted errors


def test_rate_limit_has_real_body_and_retry_after():
    with ScriptedLLM([fail("rate_limit", retry_after_s=7)]) as llm:
        with pytest.raises(openai.RateLimitError) as err:
            client(llm).responses.create(model="gpt-5", input="x")
        assert err.value.response.headers["retry-after"] == "7"
        body = error_body(err.value)["error"]
        assert (body["code"], body["type"]) == ("rate_limit_exceeded", "tokens")
        assert classify_text(str(err.value), "x").name == "rate_limit"


def test_quota_is_a_429_that_is_not_a_rate_limit():
    with ScriptedLLM([fail("insufficient_quota")]) as llm:
        with pytest.raises(openai.RateLimitError) as err:
            client(llm).chat.completions.create(model="m", messages=[{"role": "user",
                                                                      "content": "x"}])
        assert error_body(err.value)["error"]["code"] == "insufficient_quota"
        assert "retry-after" not in err.value.response.headers
        assert classify_text(str(err.value), "x").name == "quota_exhausted"


@pytest.mark.parametrize("kind,exc,signature", [
    ("server_error", openai.InternalServerError, "provider_unavailable"),
    ("invalid_api_key", openai.AuthenticationError, "auth"),
    ("bad_request", openai.BadRequestError, "invalid_request"),
    ("context_length_exceeded", openai.BadRequestError, "context_overflow"),
])
def test_scripted_errors(kind, exc, signature):
    with ScriptedLLM([fail(kind)]) as llm:
        with pytest.raises(exc) as err:
            client(llm).responses.create(model="m", input="x")
        assert classify_text(str(err.value), "x").name == signature
        assert llm.requests[0].turn == 1


def test_client_retry_after_429_consumes_the_next_turn():
    with ScriptedLLM([fail("rate_limit", retry_after_s=0.001), reply("ok")]) as llm:
        assert client(llm, retries=1).responses.create(model="m", input="x").output_text == "ok"
        assert [r.status for r in llm.requests] == [429, 200]


# ----------------------------------------------------------------------- keys and recording


def test_wrong_and_missing_keys_are_refused_without_consuming_turns():
    with ScriptedLLM(LlmScript(turns=[reply("hi")], api_key=KEY)) as llm:
        with pytest.raises(openai.AuthenticationError) as err:
            client(llm, key="sk-wrong-key-0000000000000000").responses.create(model="m",
                                                                              input="x")
        assert error_body(err.value)["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-key-0000000000000000" not in str(err.value)
        request = urllib.request.Request(f"{llm.base_url}/models")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(request)
        assert missing.value.code == 401
        assert llm.turns_served == 0
        assert client(llm).responses.create(model="m", input="x").output_text == "hi"


def test_requests_are_recorded_with_credentials_masked():
    with ScriptedLLM(LlmScript(turns=[reply("hi")], api_key=KEY)) as llm:
        client(llm).responses.create(model="m", input=f"the key is {KEY}")
        recorded = llm.requests
    assert recorded[0].headers["authorization"] == "[REDACTED]"
    assert recorded[0].path == "/v1/responses" and recorded[0].body["model"] == "m"
    assert KEY not in json.dumps([r.model_dump() for r in recorded])
    assert KEY not in repr(llm.script)


def test_models_endpoint_unknown_paths_and_exhaustion():
    with ScriptedLLM(LlmScript(turns=[], models=["gpt-5", "gpt-5-mini"])) as llm:
        c = client(llm)
        assert [m.id for m in c.models.list()] == ["gpt-5", "gpt-5-mini"]
        with pytest.raises(openai.NotFoundError):
            c.embeddings.create(model="m", input="x")
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model="m", input="x")
        assert error_body(err.value)["error"]["code"] == "script_exhausted"


def test_cli_serves_a_script_file_and_writes_the_record(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(LlmScript(turns=[reply("from a file")]).model_dump_json())
    record = tmp_path / "record.json"
    env = {**os.environ, "SCRIPTED_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "executor.testing.scripted_llm", "--script",
                             str(script), "--port", "0", "--api-key-env", "SCRIPTED_KEY",
                             "--record", str(record)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = proc.stdout.readline()  # blocks until the server is listening
        base_url = banner.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        c = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        assert c.responses.create(model="m", input="x").output_text == "from a file"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    saved = json.loads(record.read_text())
    assert saved[0]["status"] == 200 and saved[0]["headers"]["authorization"] == "[REDACTED]"
    assert KEY not in record.read_text()


def test_streamed_chat_and_responses_parse_with_the_official_client():
    turns = [reply("streamed text", call("bash", command="ls"),
                   usage=TurnUsage(input_tokens=11, output_tokens=7)),
             reply("second", usage=TurnUsage(input_tokens=5, output_tokens=3))]
    with ScriptedLLM(LlmScript(turns=turns)) as llm:
        c = client(llm)
        chunks = list(c.chat.completions.create(
            model="m", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "x"}]))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        calls = [tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or []]
        assert text == "streamed text" and calls[0].function.name == "bash"
        assert chunks[-1].usage.prompt_tokens == 11 and chunks[-1].usage.completion_tokens == 7
        events = list(c.responses.create(model="m", input="x", stream=True))
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert events[-1].response.output_text == "second"
        assert events[-1].response.usage.input_tokens == 5


def test_rate_window_answers_429_with_the_retry_after_that_frees_a_slot():
    with ScriptedLLM(LlmScript(turns=[reply("a"), reply("b")],
                               rate_limit=RateWindow(requests=1, window_s=30))) as llm:
        c = client(llm)
        assert c.responses.create(model="m", input="x").output_text == "a"
        with pytest.raises(openai.RateLimitError) as err:
            c.responses.create(model="m", input="x")
        assert error_body(err.value)["error"]["code"] == "rate_limit_exceeded"
        assert 0 < float(err.value.response.headers["retry-after"]) <= 30
        assert llm.turns_served == 1  # the refused call consumed no turn
