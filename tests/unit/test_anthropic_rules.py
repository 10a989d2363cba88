"""The scripted Messages server's request checks, as the real API words them."""

import pytest

from executor.testing.anthropic_rules import AnthropicError, check_pairing, check_request

USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                        "input": {}}]}
ANSWER = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                       "content": "ok"}]}
ASK = {"role": "user", "content": "go"}
HEADERS = {"anthropic-version": "2023-06-01"}


def message(err: pytest.ExceptionInfo) -> str:
    assert err.value.status == 400 and err.value.body()["error"]["type"] == \
        "invalid_request_error"
    return err.value.body()["error"]["message"]


def test_answered_tool_use_passes_and_an_unanswered_one_is_named():
    check_pairing([ASK, USE, ANSWER])
    check_pairing([ASK, USE])  # an assistant message last is a prefill
    with pytest.raises(AnthropicError) as err:
        check_pairing([ASK, USE, ASK])
    assert message(err) == ("messages.1: `tool_use` ids were found without `tool_result` "
                            "blocks immediately after: toolu_1. Each `tool_use` block must "
                            "have a corresponding `tool_result` block in the next message.")


def test_a_tool_result_without_its_tool_use_is_refused():
    with pytest.raises(AnthropicError) as err:
        check_pairing([ANSWER])
    assert "unexpected `tool_use_id` found in `tool_result` blocks: toolu_1" in message(err)


def test_system_messages_only_under_the_beta_that_admits_them():
    system = {"role": "system", "content": "environment"}
    with pytest.raises(AnthropicError) as err:
        check_request({"model": "m", "max_tokens": 1, "messages": [ASK, system]}, HEADERS)
    assert message(err) == "messages.1.role: Input should be 'user' or 'assistant'"
    check_request({"model": "m", "max_tokens": 1, "messages": [ASK, USE, system, ANSWER]},
                  {**HEADERS, "anthropic-beta": "mid-conversation-tool-changes-2026-07-01"})


def test_version_header_and_fields_are_required():
    with pytest.raises(AnthropicError) as err:
        check_request({"model": "m", "max_tokens": 1, "messages": [ASK]}, {})
    assert message(err) == "anthropic-version: header is required"
    with pytest.raises(AnthropicError) as err:
        check_request({"model": "m", "messages": [ASK]}, HEADERS)
    assert message(err) == "max_tokens: Field required"
