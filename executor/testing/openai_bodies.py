"""Successful reply bodies for the Responses API and Chat Completions, built from a scripted turn.

Field sets follow the real objects closely enough that the official `openai` client parses them
into typed models and that plain-JSON clients (litellm) find every field they read: ids, status,
output items / choices, finish reasons and the usage block with its *_details.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from executor.testing.llm_script import Reply, ScriptedToolCall

CHARS_PER_TOKEN = 4  # estimate used when a turn does not script its token counts


class IdMint:
    """Deterministic ids, one counter per prefix (call_1, call_2, resp_1, ...): predictable in
    assertions, unique for the server's life."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count] = {}
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            return f"{prefix}_{next(counter)}"


def _arguments(tool_call: ScriptedToolCall) -> str:
    args = tool_call.arguments
    return args if isinstance(args, str) else json.dumps(args)


def _token_counts(turn: Reply, request: dict[str, Any]) -> tuple[int, int]:
    usage = turn.usage
    out_chars = len(turn.text or "") + sum(len(tc.name) + len(_arguments(tc))
                                           for tc in turn.tool_calls)
    input_tokens = usage.input_tokens if usage.input_tokens is not None \
        else max(1, len(json.dumps(request)) // CHARS_PER_TOKEN)
    output_tokens = usage.output_tokens if usage.output_tokens is not None \
        else max(1, out_chars // CHARS_PER_TOKEN) + usage.reasoning_tokens
    return input_tokens, output_tokens


def resolve_call_ids(turn: Reply, ids: IdMint) -> list[str]:
    return [tc.call_id or ids.new("call") for tc in turn.tool_calls]


# ----------------------------------------------------------------------- Responses API


def responses_body(turn: Reply, request: dict[str, Any], model: str, ids: IdMint,
                   call_ids: list[str]) -> dict[str, Any]:
    """A `response` object; its `output` items are what a stateless client sends back."""
    output: list[dict[str, Any]] = []
    if turn.text is not None:
        output.append({"type": "message", "id": ids.new("msg"), "status": "completed",
                       "role": "assistant",
                       "content": [{"type": "output_text", "text": turn.text,
                                    "annotations": [], "logprobs": []}]})
    for tool_call, call_id in zip(turn.tool_calls, call_ids):
        output.append({"type": "function_call", "id": ids.new("fc"), "call_id": call_id,
                       "name": tool_call.name, "arguments": _arguments(tool_call),
                       "status": "completed"})
    input_tokens, output_tokens = _token_counts(turn, request)
    return {
        "id": ids.new("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if turn.truncated else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if turn.truncated else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": turn.usage.cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": turn.usage.reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": {},
    }


# ----------------------------------------------------------------------- Chat Completions


def chat_body(turn: Reply, request: dict[str, Any], model: str, ids: IdMint,
              call_ids: list[str]) -> dict[str, Any]:
    """A `chat.completion` object with one choice."""
    tool_calls = [{"id": call_id, "type": "function",
                   "function": {"name": tc.name, "arguments": _arguments(tc)}}
                  for tc, call_id in zip(turn.tool_calls, call_ids)]
    message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None,
                               "annotations": []}
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = "length" if turn.truncated else ("tool_calls" if tool_calls else "stop")
    input_tokens, output_tokens = _token_counts(turn, request)
    return {
        "id": ids.new("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": turn.usage.cached_tokens,
                                      "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": turn.usage.reasoning_tokens,
                                          "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_scripted",
    }


def models_body(models: list[str]) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "isobench-scripted"}
                     for m in models]}
