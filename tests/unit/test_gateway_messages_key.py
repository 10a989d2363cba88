"""The replay key of Anthropic Messages requests (executor/parts/gateway/messages_key.py), on
real bodies: the last request of two runs of the real Claude Code with the same task and the
same answers (tests/fixtures/claude_code/, regenerate.py there). What Claude Code mints per run
is set aside; anything the model is asked is not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from executor.parts.gateway.messages_key import minted_ids, replay_key
from executor.parts.gateway.replay import replay_key as gateway_replay_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def recorded(run: str) -> dict:
    return json.loads((FIXTURES / f"run_{run}_last_request.json").read_text())


def key(body: dict, path: str = "messages") -> str | None:
    return replay_key(path, json.dumps(body).encode())


def texts(body: dict) -> list[dict]:
    """Every content block of the conversation that carries text or a tool result."""
    return [block for message in body["messages"] for block in message["content"]
            if isinstance(block, dict) and ("text" in block or "content" in block)]


def test_the_two_runs_sent_other_bytes_and_have_one_key():
    a, b = recorded("a"), recorded("b")
    assert a != b and a["metadata"] != b["metadata"]
    assert key(a) == key(b) and key(a) is not None
    # The gateway keys Messages requests with it (Responses ones with their own key).
    assert gateway_replay_key("messages", json.dumps(a).encode()) == key(a)


def test_the_per_run_ids_found_are_the_minted_ones():
    a = recorded("a")
    user = json.loads(a["metadata"]["user_id"])
    ids = minted_ids(a)
    # device and session (metadata), then the saved output's directory and file, then the
    # background task's id (its directory is the session's).
    assert ids[:2] == [user["device_id"], user["session_id"]]
    assert len(ids) == 5
    serialized = json.dumps({k: v for k, v in a.items() if k != "metadata"})
    assert all(i in serialized for i in ids[2:])


@pytest.mark.parametrize("change", ["date", "kernel", "metadata", "ids swapped for new ones"])
def test_what_changes_from_run_to_run_does_not_change_the_key(change):
    a = recorded("a")
    other = copy.deepcopy(a)
    text = json.dumps(other)
    if change == "date":
        day = text[text.index("Today's date is "):][:27]
        assert day.endswith(".") and day != "Today's date is 2031-02-28."
        text = text.replace(day, "Today's date is 2031-02-28.")
    elif change == "kernel":
        start = text.index("OS Version: ") + len("OS Version: ")
        end = text.index("\\n", start)
        text = text[:start] + "Linux 5.10.0-other" + text[end:]
    elif change == "metadata":  # another installation (the session id recurs: see below)
        user = json.loads(other["metadata"]["user_id"])
        other["metadata"]["user_id"] = json.dumps(user | {"device_id": "f" * 64})
        text = json.dumps(other)
    else:
        for n, value in enumerate(minted_ids(a)):
            fresh = f"{n:x}" * len(value) if "-" not in value else \
                "-".join(f"{n:x}" * len(part) for part in value.split("-"))
            text = text.replace(value, fresh)
    changed = json.loads(text)
    assert changed != a
    assert key(changed) == key(a)


def _mutate(body: dict, change: str) -> dict:
    body = copy.deepcopy(body)
    if change == "model":
        body["model"] = "claude-opus-4-1"
    elif change == "system prompt":
        body["system"][-1]["text"] += " Be brief."
    elif change == "tools":
        body["tools"] = body["tools"][:-1]
    elif change == "tool description":
        body["tools"][0]["description"] = body["tools"][0]["description"] + "!"
    elif change == "task prompt":
        first = body["messages"][0]["content"][-1]
        first["text"] = first["text"].replace("Reduce the latency", "Raise the latency")
    elif change == "a command's output":
        result = next(b for b in texts(body) if "waited" in str(b.get("content")))
        result["content"] = result["content"].replace("waited", "failed")
    elif change == "a command":
        call = next(b for m in body["messages"] for b in m["content"]
                    if isinstance(b, dict) and b.get("type") == "tool_use")
        call["input"]["command"] += " && rm -rf minivllm"
    elif change == "a tool_use id":
        call = next(b for m in body["messages"] for b in m["content"]
                    if isinstance(b, dict) and b.get("type") == "tool_use")
        call["id"] = "toolu_99"
    elif change == "a turn fewer":
        body["messages"] = body["messages"][:-2]
    elif change == "max_tokens":
        body["max_tokens"] = 1000
    elif change == "thinking":
        body["thinking"]["budget_tokens"] = 1024
    elif change == "two ids made one":
        ids = minted_ids(body)
        body = json.loads(json.dumps(body).replace(ids[-1], ids[-2]))
    return body


@pytest.mark.parametrize("change", [
    "model", "system prompt", "tools", "tool description", "task prompt", "a command's output",
    "a command", "a tool_use id", "a turn fewer", "max_tokens", "thinking",
    "two ids made one"])
def test_what_the_model_is_asked_changes_the_key(change):
    a = recorded("a")
    changed = _mutate(a, change)
    assert changed != a
    assert key(changed) != key(a)
    assert key(changed) != key(recorded("b"))


def test_count_tokens_is_keyed_alike_and_other_requests_are_not():
    a, b = recorded("a"), recorded("b")
    counted = {k: v for k, v in a.items() if k in ("model", "messages", "system", "tools")}
    counted_b = {k: v for k, v in b.items() if k in ("model", "messages", "system", "tools")}
    assert key(counted, "messages/count_tokens") == key(counted_b, "messages/count_tokens")
    assert key(a, "chat/completions") is None and key(a, "responses/x") is None
    assert replay_key("messages", b"not json") is None
    assert replay_key("messages", b"[1]") is None and replay_key("messages", b"") is None


def test_the_fixtures_hold_no_key_or_token():
    for run in ("a", "b"):
        text = (FIXTURES / f"run_{run}_last_request.json").read_text()
        assert "sk-ant-" not in text and "isobench-attempt-" not in text


def test_a_path_of_the_agents_own_makes_no_word_an_id():
    a = recorded("a")
    result = next(b for b in texts(a) if "waited" in str(b.get("content")))
    result["content"] = "see /workspace/repo/tasks/run.py and /tmp/claude-x/tasks/run.output; run"
    assert "run" not in minted_ids(a)
    walked = copy.deepcopy(a)
    next(b for b in texts(walked) if "tasks/run.py" in str(b.get("content")))["content"] = \
        result["content"].replace("run", "walk")
    assert key(walked) != key(a)
