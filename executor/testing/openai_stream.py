"""Server-sent event streams (`stream: true`) built from a finished reply body, in the shapes
the real service streams: Chat Completions as `chat.completion.chunk`s (usage in a last chunk
only with `stream_options.include_usage`) ending in `data: [DONE]`; the Responses API's typed
events (created ... deltas ... `response.completed`, which carries the usage) are built in
responses_stream.py."""

from __future__ import annotations

import json
from typing import Any

from executor.testing.responses_stream import responses_stream  # noqa: F401 (re-exported)


def _event(data: dict[str, Any], name: str | None = None) -> str:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def chat_stream(body: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """One chunk per piece: role, text, each tool call, the finish reason, usage, [DONE]."""
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                            "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    if message.get("content"):
        events.append(chunk({"content": message["content"]}))
    for index, tool_call in enumerate(message.get("tool_calls") or []):
        events.append(chunk({"tool_calls": [{"index": index, **tool_call}]}))
    events.append(chunk({}, choice["finish_reason"]))
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append(_event({**base, "choices": [], "usage": body["usage"]}))
    events.append("data: [DONE]\n\n")
    return events
