"""The replay key of Chat Completions requests (executor/parts/gateway/chat_key.py), on real
bodies: both requests of two runs of the real OpenHands 1.16.0 on the same demo item with the
same scripted answers (tests/fixtures/openhands/; the prompts' and tools' long texts cut to 60
characters, the per-run lines kept). What OpenHands mints per run is set aside; anything the
model is asked is not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from executor.parts.gateway.chat_key import replay_key
from executor.parts.gateway.replay import replay_key as gateway_replay_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openhands"


def recorded(run: str) -> list[dict]:
    return json.loads((FIXTURES / f"chat_requests_run_{run}.json").read_text())


def key(body: dict, path: str = "chat/completions") -> str | None:
    return replay_key(path, json.dumps(body).encode())


def system_text(body: dict) -> str:
    return body["messages"][0]["content"][1]["text"]


@pytest.mark.parametrize("call", [0, 1])
def test_the_two_runs_sent_other_bytes_and_have_one_key(call):
    a, b = recorded("a")[call], recorded("b")[call]
    assert a != b and a["prompt_cache_key"] != b["prompt_cache_key"]
    assert system_text(a) != system_text(b)  # the date and time
    assert key(a) == key(b) and key(a) is not None
    assert gateway_replay_key("chat/completions", json.dumps(a).encode()) == key(a)


def test_the_first_and_second_call_of_a_run_differ():
    first, second = recorded("a")
    assert key(first) != key(second)


def test_another_hosts_kernel_is_set_aside():
    body = copy.deepcopy(recorded("a")[0])
    text = system_text(body)
    assert "(kernel " in text
    body["messages"][0]["content"][1]["text"] = text.replace("(kernel ", "(kernel 5.15.0-x ")
    assert key(body) == key(recorded("a")[0])


@pytest.mark.parametrize("change", ["model", "tools", "task", "tool_output", "tool_call_id",
                                    "working_dir", "reasoning_effort"])
def test_what_the_model_is_asked_changes_the_key(change):
    body = copy.deepcopy(recorded("a")[1])
    if change == "model":
        body["model"] = "another-model"
    elif change == "tools":
        body["tools"] = body["tools"][:-1]
    elif change == "task":
        body["messages"][1]["content"][0]["text"] += " Also make it faster."
    elif change == "tool_output":
        body["messages"][-1]["content"][0]["text"] += "x"
    elif change == "tool_call_id":
        body["messages"][2]["tool_calls"][0]["id"] = "call_2"
    elif change == "working_dir":
        body["messages"][0]["content"][1]["text"] = system_text(body).replace(
            "/workspace/repo", "/workspace/other")
    elif change == "reasoning_effort":
        body["reasoning_effort"] = "low" if body.get("reasoning_effort") != "low" else "high"
    assert key(body) != key(recorded("a")[1])


def test_other_paths_and_non_json_bodies_have_no_key():
    body = recorded("a")[0]
    assert key(body, "responses") is None and key(body, "messages") is None
    assert replay_key("chat/completions", b"not json") is None
    assert replay_key("chat/completions", b"") is None


def test_a_record_made_before_the_key_is_keyed_from_its_bodies(tmp_path):
    """Run A recorded without replay keys (as before chat_key existed) still serves run B's
    requests: the source keys each recorded call from its recorded (redacted) body."""
    from executor.parts.gateway.record import CallRecord, RecordWriter
    from executor.parts.gateway.replay import replay_from

    record = tmp_path / "model_calls.jsonl"
    writer = RecordWriter(record)
    for seq, body in enumerate(recorded("a"), 1):
        writer.append(CallRecord(seq=seq, method="POST", path="chat/completions", status=200,
                                 request_sha256=f"{seq:064x}", request_body=body,
                                 response_body={"choices": []}))
    source = replay_from(record)
    for body in recorded("b"):
        raw = json.dumps(body).encode()
        answer = source.answer("chat/completions", "f" * 64, replay_key("chat/completions", raw))
        assert answer.status == 200 and answer.call is not None
    assert source.served == 2
