"""The scripted server's Anthropic side: `POST /v1/messages` (plain or `stream: true`) and
`POST /v1/messages/count_tokens`, from the same script of turns as the OpenAI routes.

Checked like the real service, before any turn is consumed: the key (`x-api-key`, or a Bearer
token), the `anthropic-version` header, the required fields and the tool_use / tool_result
pairing (anthropic_rules.py). A scripted failure answers with Anthropic's status, error type and
headers (429 with retry-after, 529 overloaded_error, ...). Every answer carries a `request-id`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic import BaseModel, Field

from executor.testing import anthropic_rules as rules
from executor.testing.anthropic_bodies import (count_tokens_body, message_body, message_stream,
                                               models_body)
from executor.testing.llm_script import LlmScript, Reply, ScriptedError
from executor.testing.openai_bodies import IdMint
from executor.testing.openai_rules import ApiError


class ScriptedLLM(Protocol):
    """What this module uses of the server (scripted_llm.ScriptedLLM), which imports it."""

    script: LlmScript
    _ids: IdMint

    def _take_turn(self) -> tuple[int, Reply | ScriptedError]: ...

    def _check_rate(self, model: str) -> None: ...

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
MODELS = "/v1/models"


def is_anthropic_route(route: str) -> bool:
    return route == MESSAGES or route.startswith(MESSAGES + "/")


class AnthropicAnswer(BaseModel):
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[str] | None = None
    request: Any = None
    turn: int | None = None


def answer(llm: ScriptedLLM, method: str, route: str, headers: dict[str, str],
           raw: bytes) -> AnthropicAnswer:
    """Answer one Anthropic request (headers lower-cased)."""
    request_id = llm._ids.new("req_scripted")
    body: Any = None
    turn_no: int | None = None
    try:
        _check_key(llm, headers)
        if method == "GET" and route == MODELS:
            return AnthropicAnswer(status=200, body=models_body(llm.script.models),
                                   headers={"request-id": request_id})
        if method != "POST" or route not in (MESSAGES, COUNT_TOKENS):
            raise rules.not_found_error()
        body = _parse(raw)
        rules.check_request(body, headers) if route == MESSAGES else _check_count(body, headers)
        if route == COUNT_TOKENS:
            return AnthropicAnswer(status=200, body=count_tokens_body(body),
                                   headers={"request-id": request_id}, request=body)
        _check_rate(llm, str(body["model"]))
        turn_no, turn = llm._take_turn()
        if isinstance(turn, ScriptedError):
            raise rules.scripted_error(turn, str(body["model"]))
        reply = message_body(turn, body, str(body["model"]), llm._ids)
        events = message_stream(reply, turn) if body.get("stream") else None
        return AnthropicAnswer(status=200, body=reply, events=events, request=body,
                               headers={"request-id": request_id}, turn=turn_no)
    except ApiError as err:
        error = err if isinstance(err, rules.AnthropicError) else \
            rules.AnthropicError(err.status, "invalid_request_error", err.message, err.headers)
        return AnthropicAnswer(status=error.status, body={**error.body(),
                                                          "request_id": request_id},
                               headers={**error.headers, "request-id": request_id},
                               request=body, turn=turn_no)


def _check_key(llm: ScriptedLLM, headers: dict[str, str]) -> None:
    if llm.script.api_key is None:
        return
    sent = headers.get("x-api-key") or \
        headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not sent:
        raise rules.missing_key_error()
    if sent != llm.script.api_key.get_secret_value():
        raise rules.wrong_key_error()


def _check_count(body: dict[str, Any], headers: dict[str, str]) -> None:
    rules.check_request(body, headers, max_tokens=False)


def _check_rate(llm: ScriptedLLM, model: str) -> None:
    """The script's request window, answered the Anthropic way."""
    try:
        llm._check_rate(model)
    except ApiError as err:
        raise rules.AnthropicError(
            429, "rate_limit_error",
            f"This request would exceed the rate limit for your organization of "
            f"{llm.script.rate_limit.requests} requests per minute (model: {model}). For "
            f"details, refer to: {rules.DOCS_RATE_LIMITS}.",
            {"retry-after": err.headers.get("retry-after", "1")}) from None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise rules.invalid("There was an error parsing the body of your request. "
                            "The request body must be valid JSON.") from None
    if not isinstance(body, dict):
        raise rules.invalid("The request body must be a JSON object.")
    return body
