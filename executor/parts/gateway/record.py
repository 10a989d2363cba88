"""The per-attempt record of model traffic: one JSON line per call the agent made.

Written by the gateway as calls finish (attempt-<n>/model_calls.jsonl, state.MODEL_CALLS_NAME),
read back by the pipeline for the journal (tokens, cost, error counts) and by replay. Everything
in it has passed the redactor; request and response bodies are kept unless switched off, since
replay serves the recorded responses.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from executor.core.journal import ModelTraffic, Usage, utcnow
from executor.core.pricing import DEFAULT_PRICES, PriceTable, with_cost
from executor.parts.gateway import anthropic


class CallRecord(BaseModel):
    """One model call as the gateway handled it."""

    seq: int = Field(ge=1, description="1-based order of the call within the attempt.")
    method: str = Field(description="HTTP method.")
    path: str = Field(description="Path after the gateway's /v1, e.g. chat/completions.")
    started_at: datetime = Field(default_factory=utcnow)
    latency_s: float = Field(default=0.0, description="Arrival to last byte sent back.")
    waited_s: float = Field(default=0.0, description="Time held by the shared limiter "
                                                     "(pacing and upstream retry-after).")
    status: int = Field(description="HTTP status the agent received.")
    upstream_statuses: list[int] = Field(
        default_factory=list, description="Status of each upstream try, in order; a 429 "
        "followed by 200 is a retry the gateway made for the agent. 0: no answer (timeout, "
        "connection error).")
    upstream_retries: int = Field(default=0, description="Upstream tries after the first.")
    timeouts: int = Field(default=0, description="Upstream tries that timed out or lost "
                                                 "the connection.")
    stream: bool = Field(default=False, description="Answered as server-sent events.")
    model: str | None = Field(default=None, description="Model named in the request body.")
    usage: dict[str, Any] | None = Field(
        default=None, description="Usage exactly as the provider reported it.")
    tokens: Usage | None = Field(default=None, description="That usage normalised and priced.")
    gateway_error: str | None = Field(
        default=None, description="When the gateway answered itself: budget_exhausted, "
        "unknown_token, upstream_timeout, upstream_unreachable, replay_mismatch...")
    request_sha256: str = Field(description="sha256 of the request body as received "
                                            "(replay matches on it).")
    replay_key: str | None = Field(
        default=None, description="Responses and Messages requests: sha256 of the body less "
        "the values a client mints per run (gateway/responses.py, gateway/messages_key.py); "
        "replay matches on it too.")
    request_body: Any = Field(default=None, description="Request body (redacted), if kept.")
    response_type: str = Field(default="application/json", description="Content type answered.")
    response_body: Any = Field(default=None, description="Response body (redacted; SSE as "
                                                         "text), if kept.")


def body_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def normalise_usage(raw: dict[str, Any] | None, model: str | None,
                    prices: PriceTable | None) -> Usage | None:
    """Responses (`input_tokens`...) or Chat Completions (`prompt_tokens`...) usage as the
    journal's Usage, priced; None when the provider reported none."""
    if not isinstance(raw, dict):
        return None
    if anthropic.is_anthropic_usage(raw):  # Messages API: input excludes the cached part
        return anthropic.normalise_usage(raw, model, prices)
    details_in = raw.get("input_tokens_details") or raw.get("prompt_tokens_details") or {}
    details_out = raw.get("output_tokens_details") or raw.get("completion_tokens_details") or {}
    usage = Usage(
        input_tokens=int(raw.get("input_tokens", raw.get("prompt_tokens", 0)) or 0),
        output_tokens=int(raw.get("output_tokens", raw.get("completion_tokens", 0)) or 0),
        cached_input_tokens=int(details_in.get("cached_tokens", 0) or 0),
        reasoning_tokens=int(details_out.get("reasoning_tokens", 0) or 0),
        llm_calls=1)
    return with_cost(usage, model or "", prices or DEFAULT_PRICES)


def usage_in(body: Any) -> dict[str, Any] | None:
    """The usage object of a JSON response (Responses or Chat), or of one streamed event
    (`response.completed` carries the Responses usage; Chat sends it in the last chunk)."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("usage"), dict):
        return body["usage"]
    response = body.get("response")
    if isinstance(response, dict) and isinstance(response.get("usage"), dict):
        return response["usage"]
    return None


def usage_in_sse(text: str) -> dict[str, Any] | None:
    """The last usage found in a server-sent event stream."""
    found = None
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        try:
            found = usage_in(json.loads(data)) or found
        except ValueError:
            continue
    return found


class RecordWriter:
    """Appends CallRecords to one attempt's file; safe from any thread."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def append(self, call: CallRecord) -> None:
        line = call.model_dump_json() + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)


def read_calls(path: Path) -> list[CallRecord]:
    """Every call of a record file, in order (an empty list for a missing file)."""
    if not path.exists():
        return []
    return [CallRecord.model_validate_json(line) for line in path.read_text().splitlines()
            if line.strip()]


def summarise(calls: list[CallRecord], record_name: str) -> tuple[ModelTraffic, Usage]:
    """What the journal keeps of an attempt's traffic, and its usage summed over calls."""
    total = Usage()
    priced = True
    for call in calls:
        if call.tokens is None:
            continue
        total.input_tokens += call.tokens.input_tokens
        total.output_tokens += call.tokens.output_tokens
        total.cached_input_tokens += call.tokens.cached_input_tokens
        total.cache_creation_input_tokens += call.tokens.cache_creation_input_tokens
        total.reasoning_tokens += call.tokens.reasoning_tokens
        total.llm_calls += 1
        if call.tokens.cost_usd is None:
            priced = False
        else:
            total.cost_usd = (total.cost_usd or 0.0) + call.tokens.cost_usd
    if not priced:
        total.cost_usd = None
    tries = [s for call in calls for s in call.upstream_statuses]
    traffic = ModelTraffic(
        record=record_name, calls=len(calls),
        answered_ok=sum(1 for c in calls if 200 <= c.status < 300),
        upstream_429=sum(1 for s in tries if s == 429),
        upstream_5xx=sum(1 for s in tries if s >= 500),
        upstream_timeouts=sum(c.timeouts for c in calls),
        gateway_retries=sum(c.upstream_retries for c in calls),
        agent_saw_429=sum(1 for c in calls if c.status == 429),
        agent_saw_5xx=sum(1 for c in calls if c.status >= 500),
        waited_s=round(sum(c.waited_s for c in calls), 3),
        budget_exhausted=any(c.gateway_error == "budget_exhausted" for c in calls),
        replay_mismatch=next((_error_message(c) for c in calls
                              if c.gateway_error == "replay_mismatch"), None))
    return traffic, total


def _error_message(call: CallRecord) -> str:
    """The message of the gateway's own error answer to a call (its text if not JSON)."""
    body = call.response_body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return str(body or f"call {call.seq}: {call.gateway_error}")[:300]
