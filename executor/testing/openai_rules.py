"""What the real OpenAI API rejects, and the exact error bodies it answers with.

These rules are the point of the scripted server: ISO-Bench's largest failure group was a 400
"No tool output found for function call ..." that only a server enforcing the pairing rules can
reproduce (FIELD_NOTES sections 3 and 4). Messages, types, params and codes follow the bodies
the real service sends, because clients and our own error taxonomy match on them.
"""

from __future__ import annotations

from typing import Any

from executor.testing.llm_script import ScriptedError


class ApiError(Exception):
    """An HTTP error in the real API's JSON shape: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


# ----------------------------------------------------------------------- scripted failures


def scripted_error(turn: ScriptedError, model: str) -> ApiError:
    """The error the real service sends for each scripted failure kind."""
    kind, msg = turn.error, turn.message
    if kind == "rate_limit":
        return ApiError(
            429, msg or f"Rate limit reached for {model} in organization org-scripted on tokens "
            f"per min (TPM): Limit 30000, Used 29800, Requested 1200. Please try again in "
            f"{turn.retry_after_s:g}s. Visit https://platform.openai.com/account/rate-limits "
            f"to learn more.",
            "tokens", None, "rate_limit_exceeded",
            {"retry-after": f"{turn.retry_after_s:g}"})
    if kind == "insufficient_quota":
        return ApiError(
            429, msg or "You exceeded your current quota, please check your plan and billing "
            "details. For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota", None, "insufficient_quota")
    if kind == "server_error":
        return ApiError(500, msg or "The server had an error while processing your request. "
                        "Sorry about that!", "server_error")
    if kind == "overloaded":
        return ApiError(503, msg or "The engine is currently overloaded, please try again "
                        "later.", "server_error")
    if kind == "invalid_api_key":
        return wrong_key_error("sk-scripted-invalid-key")
    if kind == "context_length_exceeded":
        return ApiError(400, msg or "Your input exceeds the context window of this model. "
                        "Please adjust your input and try again.",
                        "invalid_request_error", "input", "context_length_exceeded")
    return ApiError(400, msg or "Unsupported parameter: 'temperature' is not supported with "
                    "this model.", "invalid_request_error", "temperature", "unsupported_parameter")


# ----------------------------------------------------------------------- request checks


def missing_key_error() -> ApiError:
    return ApiError(
        401, "You didn't provide an API key. You need to provide your API key in an "
        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the "
        "password field (with blank username) if you're accessing the API from your browser and "
        "are prompted for a username. You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.")


def wrong_key_error(sent_key: str) -> ApiError:
    # The real service echoes a masked form; never more than a few characters of the key.
    shown = f"{sent_key[:3]}{'*' * 8}{sent_key[-4:]}" if len(sent_key) >= 12 else "*" * 8
    return ApiError(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error", None, "invalid_api_key")


def invalid_json_error() -> ApiError:
    return ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely "
                    "means you aren't using your HTTP library correctly. The OpenAI API expects "
                    "a JSON payload, but what was sent was not valid JSON.)")


def missing_param_error(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", "invalid_request_error",
                    param, "missing_required_parameter")


def not_found_error(method: str, path: str) -> ApiError:
    return ApiError(404, f"Invalid URL ({method} {path})")


def script_exhausted_error(served: int) -> ApiError:
    # Permanent (400), so clients do not retry a script that has nothing left to say.
    return ApiError(400, f"Scripted LLM: the script has no turn left ({served} served).",
                    "invalid_request_error", None, "script_exhausted")


# ----------------------------------------------------------------------- Responses pairing


def item_type(item: dict[str, Any]) -> str:
    """Input items without a type but with a role are messages."""
    return item.get("type") or ("message" if "role" in item else "unknown")


def no_tool_output_error(call_id: str) -> ApiError:
    return ApiError(400, f"No tool output found for function call {call_id}.",
                    "invalid_request_error", "input")


def check_responses_pairing(items: list[dict[str, Any]]) -> None:
    """Every function_call needs a function_call_output with its call_id, later in the input.

    The real service checks presence, not adjacency: upstream TRAE (e839e55) files a turn's text
    *after* its function_call items, so the text sits between a call and its output, and that
    works against the real API. What it refuses is a call that is never answered ("No tool
    output found for function call ...", the must-patch death of FIELD_NOTES section 3) and an
    output whose call does not come before it. Chat Completions is stricter (check_chat_pairing).
    """
    seen: set[str] = set()
    pending: list[str] = []  # calls not yet answered, in the order they were made
    for item in items:
        kind = item_type(item)
        if kind == "function_call":
            seen.add(item.get("call_id", ""))
            pending.append(item.get("call_id", ""))
        elif kind == "function_call_output":
            call_id = item.get("call_id", "")
            if call_id not in seen:
                raise ApiError(400, f"No tool call found for function call output with call_id "
                               f"{call_id}.", "invalid_request_error", "input")
            if call_id in pending:
                pending.remove(call_id)
    if pending:
        raise no_tool_output_error(pending[0])


def check_no_duplicates(prior: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """With previous_response_id the stored chain already holds earlier items: re-sending one
    (by item id, or a function call by call_id) is a 400, as is one id twice in a request."""
    seen_ids = {item["id"] for item in prior if item.get("id")}
    seen_calls = {item.get("call_id") for item in prior if item_type(item) == "function_call"}
    for item in new:
        item_id = item.get("id")
        dup_call = item_type(item) == "function_call" and item.get("call_id") in seen_calls
        if (item_id and item_id in seen_ids) or dup_call:
            raise ApiError(400, f"Duplicate item found with id {item_id or item.get('call_id')}. "
                           "Remove duplicate items from your input and try again.",
                           "invalid_request_error", "input")
        if item_id:
            seen_ids.add(item_id)
        if item_type(item) == "function_call":
            seen_calls.add(item.get("call_id"))


# ----------------------------------------------------------------------- Chat pairing


def check_chat_pairing(messages: list[dict[str, Any]]) -> None:
    """An assistant message with tool_calls must be followed directly by one tool message per
    tool_call_id; a tool message anywhere else is rejected."""
    block: list[str] = []  # ids of the tool_calls whose answers may follow now
    pending: list[str] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not block:
                raise ApiError(400, "Invalid parameter: messages with role 'tool' must be a "
                               "response to a preceeding message with 'tool_calls'.",
                               "invalid_request_error", f"messages.[{index}].role")
            if call_id not in block:
                raise ApiError(400, f"Invalid parameter: tool_call_id of '{call_id}' not found "
                               "in 'tool_calls' of previous message.", "invalid_request_error",
                               f"messages.[{index}].tool_call_id")
            if call_id in pending:
                pending.remove(call_id)
            continue
        if pending:
            raise _missing_tool_messages(index, pending)
        block = [tc.get("id") for tc in message.get("tool_calls") or []] \
            if role == "assistant" else []
        pending = list(block)
    if pending:
        raise _missing_tool_messages(len(messages), pending)


def _missing_tool_messages(index: int, pending: list[str]) -> ApiError:
    return ApiError(400, "An assistant message with 'tool_calls' must be followed by tool "
                    "messages responding to each 'tool_call_id'. The following tool_call_ids did "
                    f"not have response messages: {', '.join(pending)}",
                    "invalid_request_error", f"messages.[{index}].role")
