"""What the real Anthropic Messages API rejects, and the exact error bodies it answers with.

Every error is `{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`
with a `request-id` header; the error types and statuses are Anthropic's (400
invalid_request_error, 401 authentication_error, 404 not_found_error, 429 rate_limit_error with
`retry-after`, 500 api_error, 529 overloaded_error). Messages follow what the service sends, since
Claude Code prints them and our taxonomy (executor/core/errors.py) matches on them: the pairing
400 ("`tool_use` ids were found without `tool_result` blocks immediately after: ...") is the
Anthropic form of ISO-Bench's largest failure group.
"""

from __future__ import annotations

from typing import Any

from executor.testing.llm_script import ScriptedError
from executor.testing.openai_rules import ApiError

DOCS_RATE_LIMITS = "https://docs.claude.com/en/api/rate-limits"


class AnthropicError(ApiError):
    """An HTTP error in Anthropic's shape; `type_` is Anthropic's error type."""

    def __init__(self, status: int, type_: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status, message, type_, None, None, headers)

    def body(self) -> dict[str, Any]:
        # request_id is filled in by the server, which also sends it as a header.
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


def invalid(message: str) -> AnthropicError:
    return AnthropicError(400, "invalid_request_error", message)


def scripted_error(turn: ScriptedError, model: str) -> AnthropicError:
    """The error the real service sends for each scripted failure kind."""
    kind, msg = turn.error, turn.message
    if kind == "rate_limit":
        return AnthropicError(
            429, "rate_limit_error", msg or
            "This request would exceed the rate limit for your organization of 50 requests per "
            f"minute (model: {model}). For details, refer to: {DOCS_RATE_LIMITS}. You can see "
            "the response headers for current usage. Please reduce the prompt length or the "
            "maximum tokens requested, or try again later.",
            {"retry-after": f"{max(turn.retry_after_s, 0):g}"})
    if kind == "overloaded":
        return AnthropicError(529, "overloaded_error", msg or "Overloaded")
    if kind == "insufficient_quota":
        # Anthropic answers an empty prepaid balance with a 400, not a 429.
        return invalid(msg or "Your credit balance is too low to access the Anthropic API. "
                       "Please go to Plans & Billing to upgrade or purchase credits.")
    if kind == "server_error":
        return AnthropicError(500, "api_error", msg or "Internal server error")
    if kind == "invalid_api_key":
        return AnthropicError(401, "authentication_error", "invalid x-api-key")
    if kind == "context_length_exceeded":
        return invalid(msg or "prompt is too long: 212345 tokens > 200000 maximum")
    return invalid(msg or "temperature: Input should be less than or equal to 1")


def missing_key_error() -> AnthropicError:
    return AnthropicError(401, "authentication_error", "x-api-key header is required")


def wrong_key_error() -> AnthropicError:
    return AnthropicError(401, "authentication_error", "invalid x-api-key")


def not_found_error() -> AnthropicError:
    return AnthropicError(404, "not_found_error", "Not Found")


# ----------------------------------------------------------------------- request checks


# Claude Code 2.1.x sends `role: system` messages inside the conversation under this beta (and,
# refused, retries once without it); without the beta the service takes user/assistant only.
SYSTEM_MESSAGES_BETA = "mid-conversation-tool-changes"


def check_request(body: dict[str, Any], headers: dict[str, str], *,
                  max_tokens: bool = True) -> None:
    """What the service checks before the model runs (no turn is consumed)."""
    if not headers.get("anthropic-version"):
        raise invalid("anthropic-version: header is required")
    for field in ("model", "max_tokens", "messages") if max_tokens else ("model", "messages"):
        if field not in body:
            raise invalid(f"{field}: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: at least one message is required")
    check_pairing(messages, SYSTEM_MESSAGES_BETA in headers.get("anthropic-beta", ""))


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def check_pairing(messages: list[dict[str, Any]], system_role: bool = False) -> None:
    """Each assistant tool_use must be answered by a tool_result (same id) in the very next
    message, a user message; a tool_result must answer a tool_use of the message before it.
    `system_role`: the beta that admits system messages is on (they take no part in pairing)."""
    roles = ("user", "assistant", "system") if system_role else ("user", "assistant")
    for index, message in enumerate(messages):
        if message.get("role") not in roles:
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    numbered = [(i, m) for i, m in enumerate(messages) if m.get("role") != "system"]
    messages = [m for _, m in numbered]
    for turn, message in enumerate(messages):
        index = numbered[turn][0]
        role = message.get("role")
        previous_uses = {b.get("id") for b in _blocks(messages[turn - 1])
                         if b.get("type") == "tool_use"} if turn else set()
        for position, block in enumerate(_blocks(message)):
            if block.get("type") == "tool_result" and (
                    role != "user" or block.get("tool_use_id") not in previous_uses):
                raise invalid(
                    f"messages.{index}.content.{position}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message.")
        uses = [b.get("id") for b in _blocks(message) if b.get("type") == "tool_use"]
        if role != "assistant" or not uses:
            continue
        if turn + 1 == len(messages):
            continue  # an assistant message last is a prefill, not a turn to answer yet
        following = messages[turn + 1]
        answered = {b.get("tool_use_id") for b in _blocks(following)
                    if b.get("type") == "tool_result"} if following.get("role") == "user" else set()
        missing = [u for u in uses if u not in answered]
        if missing:
            raise invalid(
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message.")
