"""The replay key of Responses requests (executor/parts/gateway/responses.py): what a client
mints per run is set aside, anything the agent decided is not."""

from __future__ import annotations

import json

from executor.parts.gateway.responses import replay_key


def body(**changes) -> bytes:
    base = {"model": "m", "stream": True, "prompt_cache_key": "s1",
            "client_metadata": {"session_id": "s1"}, "input": [
                {"type": "message", "id": "msg_1", "role": "user", "content": [
                    {"type": "input_text", "text": "<current_date>2026-12-07</current_date> go"}]},
                {"type": "function_call_output", "id": "fco_1", "call_id": "call_1",
                 "output": "Chunk ID: ab12\nWall time: 0.3 seconds\nOutput:\nok\n"}]}
    base.update(changes)
    return json.dumps(base).encode()


def test_per_run_ids_timings_and_dates_do_not_change_the_key():
    other = json.loads(body())
    other["prompt_cache_key"], other["client_metadata"] = "s2", {"session_id": "s2"}
    other["input"][0]["id"], other["input"][1]["id"] = "msg_9", "fco_9"
    other["input"][0]["content"][0]["text"] = "<current_date>2027-01-01</current_date> go"
    other["input"][1]["output"] = "Chunk ID: ff00\nWall time: 9.81 seconds\nOutput:\nok\n"
    assert replay_key("responses", body()) == replay_key("responses", json.dumps(other).encode())


def test_what_the_agent_decided_changes_the_key():
    changed = json.loads(body())
    changed["input"][1]["output"] = changed["input"][1]["output"].replace("ok", "FAILED")
    assert replay_key("responses", body()) != replay_key("responses",
                                                         json.dumps(changed).encode())
    assert replay_key("responses", body()) != replay_key("responses", body(model="other"))
    changed = json.loads(body())
    changed["input"][1]["call_id"] = "call_2"
    assert replay_key("responses", body()) != replay_key("responses",
                                                         json.dumps(changed).encode())


def test_other_paths_and_bodies_have_no_replay_key():
    assert replay_key("chat/completions", body()) is None
    assert replay_key("responses", b"not json") is None
    assert replay_key("responses", b"[1, 2]") is None
    assert replay_key("responses", b"") is None
