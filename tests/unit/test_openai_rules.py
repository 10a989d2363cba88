"""Pairing rules of the scripted server, as pure functions (the HTTP tests check the bodies)."""

import pytest

from executor.testing.llm_script import LlmScript, Reply, ScriptedError
from executor.testing.openai_rules import (ApiError, check_chat_pairing, check_no_duplicates,
                                           check_responses_pairing)

USER = {"role": "user", "content": "x"}


def fc(call_id, item_id=None):
    item = {"type": "function_call", "call_id": call_id, "name": "bash", "arguments": "{}"}
    return {**item, "id": item_id} if item_id else item


def out(call_id):
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


@pytest.mark.parametrize("items", [
    [USER],
    [USER, fc("a"), out("a"), USER],
    [USER, fc("a"), fc("b"), out("b"), out("a")],  # a parallel batch, answered in any order
    [USER, fc("a"), out("a"), fc("b"), out("b")],
    # TRAE files a turn's text after its calls, before the output: the real API accepts it.
    [USER, fc("a"), {"role": "assistant", "content": "hm"}, out("a")],
    [USER, fc("a"), fc("b"), out("a"), USER, out("b")],  # presence, not adjacency
])
def test_valid_responses_inputs(items):
    check_responses_pairing(items)


@pytest.mark.parametrize("items,named", [
    ([USER, fc("a")], "call a."),
    ([USER, fc("a"), USER], "call a."),  # the must-patch nudge instead of an output
    ([USER, fc("a"), fc("b"), out("a"), USER], "call b."),
    ([USER, out("a"), fc("a")], "call_id a."),  # an output before its call
    ([USER, out("zz")], "call_id zz."),
])
def test_invalid_responses_inputs(items, named):
    with pytest.raises(ApiError) as err:
        check_responses_pairing(items)
    assert err.value.status == 400 and err.value.message.endswith(named)
    assert err.value.param == "input" and err.value.code is None


def test_duplicates_by_item_id_or_call_id():
    check_no_duplicates([USER, fc("a", "fc_1")], [out("a")])
    for resent in (fc("a", "fc_1"), fc("a")):
        with pytest.raises(ApiError, match="Duplicate item found"):
            check_no_duplicates([USER, fc("a", "fc_1")], [resent])
    with pytest.raises(ApiError, match="Duplicate item found with id msg_1"):
        check_no_duplicates([], [{"id": "msg_1", **USER}, {"id": "msg_1", **USER}])


def assistant(*ids):
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": i, "type": "function",
                            "function": {"name": "bash", "arguments": "{}"}} for i in ids]}


def tool(call_id):
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


def test_valid_chat_conversations():
    check_chat_pairing([USER, assistant("a", "b"), tool("b"), tool("a"), USER])
    check_chat_pairing([USER, {"role": "assistant", "content": "plain"}, USER])


@pytest.mark.parametrize("messages,fragment,param", [
    ([USER, assistant("a")], "did not have response messages: a", "messages.[2].role"),
    ([USER, assistant("a", "b"), tool("a"), USER], "response messages: b", "messages.[3].role"),
    ([USER, tool("a")], "preceeding message with 'tool_calls'", "messages.[1].role"),
    ([USER, assistant("a"), tool("a"), tool("a"), USER, tool("a")], "preceeding",
     "messages.[5].role"),
    ([USER, assistant("a"), tool("zz")], "tool_call_id of 'zz' not found",
     "messages.[2].tool_call_id"),
])
def test_invalid_chat_conversations(messages, fragment, param):
    with pytest.raises(ApiError) as err:
        check_chat_pairing(messages)
    assert fragment in err.value.message and err.value.param == param


def test_script_loads_from_json_and_hides_its_key(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"turns": [{"kind": "reply", "text": "hi"}, '
                    '{"kind": "error", "error": "rate_limit"}], "api_key": "sk-secret-123456"}')
    script = LlmScript.load(path)
    assert isinstance(script.turns[0], Reply) and isinstance(script.turns[1], ScriptedError)
    assert "sk-secret-123456" not in repr(script) + script.model_dump_json()
    with pytest.raises(ValueError):
        LlmScript.model_validate({"turns": [{"kind": "error", "error": "teapot"}]})
