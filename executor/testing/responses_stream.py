"""The Responses API's server-sent events for a finished reply body, event by event as the real
service streams them (`stream: true` on POST /v1/responses).

Order, as OpenAI documents it and its clients parse it: `response.created` and
`response.in_progress` (the response with status in_progress, no output, no usage); then per
output item `response.output_item.added` (the item with empty content or arguments), for a
message `response.content_part.added`, one or more `response.output_text.delta`,
`response.output_text.done`, `response.content_part.done`, for a function call one or more
`response.function_call_arguments.delta` and `response.function_call_arguments.done`, then
`response.output_item.done` (the whole item); and last `response.completed` (or
`response.incomplete` when the output limit cut the reply off) carrying the whole response with
its usage. Every event has a `type` and a `sequence_number` counting from 0; there is no
`[DONE]` sentinel. Clients that build the reply from deltas (the openai SDK's stream helpers)
and clients that read whole items (Codex CLI reads `output_item.done` and `completed`) both see
the same reply.
"""

from __future__ import annotations

import json
from typing import Any

DELTA_CHARS = 24  # pieces per delta: several deltas per item, as a real stream has


def _pieces(text: str) -> list[str]:
    return [text[i:i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)] or [""]


class _Events:
    def __init__(self) -> None:
        self.events: list[str] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.events), **fields}
        self.events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n")


def responses_stream(body: dict[str, Any]) -> list[str]:
    """The whole event stream of one finished `response` body (see the module docstring)."""
    out = _Events()
    started = {**body, "status": "in_progress", "output": [], "usage": None,
               "incomplete_details": None}
    out.add("response.created", response=started)
    out.add("response.in_progress", response=started)
    for index, item in enumerate(body["output"]):
        if item.get("type") == "message":
            _message(out, index, item)
        elif item.get("type") == "function_call":
            _function_call(out, index, item)
        else:
            out.add("response.output_item.added", output_index=index, item=item)
            out.add("response.output_item.done", output_index=index, item=item)
    final = "response.incomplete" if body.get("status") == "incomplete" else "response.completed"
    out.add(final, response=body)
    return out.events


def _message(out: _Events, index: int, item: dict[str, Any]) -> None:
    item_id = item["id"]
    out.add("response.output_item.added", output_index=index,
            item={**item, "status": "in_progress", "content": []})
    for part_no, part in enumerate(item.get("content") or []):
        where = {"item_id": item_id, "output_index": index, "content_index": part_no}
        text = part.get("text", "")
        out.add("response.content_part.added", **where,
                part={**part, "text": "", "annotations": []})
        for piece in _pieces(text):
            out.add("response.output_text.delta", **where, delta=piece, logprobs=[])
        out.add("response.output_text.done", **where, text=text, logprobs=[])
        out.add("response.content_part.done", **where, part=part)
    out.add("response.output_item.done", output_index=index, item=item)


def _function_call(out: _Events, index: int, item: dict[str, Any]) -> None:
    item_id = item["id"]
    out.add("response.output_item.added", output_index=index,
            item={**item, "status": "in_progress", "arguments": ""})
    arguments = item.get("arguments", "")
    for piece in _pieces(arguments):
        out.add("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                delta=piece)
    out.add("response.function_call_arguments.done", item_id=item_id, output_index=index,
            arguments=arguments)
    out.add("response.output_item.done", output_index=index, item=item)


def failed_stream(body: dict[str, Any], code: str, message: str) -> list[str]:
    """A stream that starts and then fails, as the service reports an error met while the
    model runs: `response.created`, `response.in_progress`, then `response.failed` whose
    response has status failed and `error: {code, message}` (HTTP status stays 200)."""
    out = _Events()
    started = {**body, "status": "in_progress", "output": [], "usage": None}
    out.add("response.created", response=started)
    out.add("response.in_progress", response=started)
    out.add("response.failed", response={**started, "status": "failed",
                                         "error": {"code": code, "message": message}})
    return out.events
