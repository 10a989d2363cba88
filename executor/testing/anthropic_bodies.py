"""Anthropic Messages reply bodies and their server-sent event streams, built from a scripted turn.

The `message` object (content blocks `text` and `tool_use`, `stop_reason` end_turn / tool_use /
max_tokens, `usage` with `input_tokens` *excluding* the cached part beside
`cache_creation_input_tokens` and `cache_read_input_tokens`), and the stream the real service
sends for it: `message_start` (the message with empty content and the input usage), per block
`content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta` with
`partial_json` pieces) / `content_block_stop`, a `ping`, `message_delta` (stop_reason and the
cumulative usage) and `message_stop`. Each event is named on an `event:` line.
"""

from __future__ import annotations

import json
from typing import Any

from executor.testing.llm_script import Reply
from executor.testing.openai_bodies import CHARS_PER_TOKEN, IdMint

JSON_PIECE_CHARS = 24  # input_json_delta pieces, so clients really reassemble the arguments


def tool_input(arguments: dict[str, Any] | str) -> tuple[dict[str, Any], str]:
    """The tool_use `input` object and the JSON text streamed for it (a string argument is
    streamed verbatim, e.g. truncated JSON, and is an empty object when not streamed)."""
    if isinstance(arguments, dict):
        return arguments, json.dumps(arguments)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = {}
    return parsed if isinstance(parsed, dict) else {}, arguments


def usage_block(turn: Reply, request: dict[str, Any], content: list[dict[str, Any]]) -> dict:
    """Anthropic usage: input_tokens counts only what was neither read from nor written to
    the cache; the scripted input_tokens is the whole prompt, as for OpenAI."""
    scripted = turn.usage
    prompt = scripted.input_tokens if scripted.input_tokens is not None \
        else max(1, len(json.dumps(request)) // CHARS_PER_TOKEN)
    output = scripted.output_tokens if scripted.output_tokens is not None \
        else max(1, len(json.dumps(content)) // CHARS_PER_TOKEN)
    read, written = scripted.cached_tokens, scripted.cache_write_tokens
    return {"input_tokens": max(0, prompt - read - written),
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard"}


def message_body(turn: Reply, request: dict[str, Any], model: str, ids: IdMint) -> dict:
    """A `message` object for one scripted turn."""
    content: list[dict[str, Any]] = []
    if turn.text is not None:
        content.append({"type": "text", "text": turn.text})
    for tool_call in turn.tool_calls:
        content.append({"type": "tool_use", "id": tool_call.call_id or ids.new("toolu"),
                        "name": tool_call.name, "input": tool_input(tool_call.arguments)[0]})
    stop = "max_tokens" if turn.truncated else (
        "tool_use" if turn.tool_calls else "end_turn")
    return {"id": ids.new("msg"), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": usage_block(turn, request, content)}


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def message_stream(body: dict[str, Any], turn: Reply) -> list[str]:
    """The events of `body` as the real service streams them."""
    usage = body["usage"]
    start_usage = {**usage, "output_tokens": 1}  # output is only known at the end
    events = [_event("message_start", {"type": "message_start", "message": {
        **body, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": start_usage}})]
    raw_inputs = iter(tool_input(tc.arguments)[1] for tc in turn.tool_calls)
    for index, block in enumerate(body["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        else:
            opening = {**block, "input": {}}
            text = next(raw_inputs)
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": text[i:i + JSON_PIECE_CHARS]}
                for i in range(0, len(text), JSON_PIECE_CHARS)]
        events.append(_event("content_block_start", {"type": "content_block_start",
                                                     "index": index, "content_block": opening}))
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        events += [_event("content_block_delta", {"type": "content_block_delta",
                                                  "index": index, "delta": delta})
                   for delta in deltas]
        events.append(_event("content_block_stop", {"type": "content_block_stop",
                                                    "index": index}))
    final_usage = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    events.append(_event("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": body["stop_reason"], "stop_sequence": None}, "usage": final_usage}))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def count_tokens_body(request: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/messages/count_tokens: the prompt's size, estimated from its text."""
    size = len(json.dumps({k: request.get(k) for k in ("system", "messages", "tools")}))
    return {"input_tokens": max(1, size // CHARS_PER_TOKEN)}


def models_body(models: list[str]) -> dict[str, Any]:
    """GET /v1/models as Anthropic lists them."""
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
            for m in models]
    return {"data": data, "has_more": False, "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None}
