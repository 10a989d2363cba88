"""The gateway's Anthropic Messages side: which requests speak it, how the key is sent upstream,
the error shape, and usage read from the provider's own fields.

A request to `/v1/messages` or `/v1/messages/count_tokens` (or any request carrying
`anthropic-version`) speaks Anthropic. The agent authenticates with its attempt token in
`x-api-key` (what Claude Code sends from ANTHROPIC_API_KEY) or as a Bearer token
(ANTHROPIC_AUTH_TOKEN); upstream, the gateway sends the real key in `x-api-key` and passes
`anthropic-version` and `anthropic-beta` on unchanged (they are not in the dropped set). The
gateway's own answers (unknown token, budget, upstream timeout) take Anthropic's shape,
`{"type": "error", "error": {"type", "message"}}`, so the agent's client reads them as it reads
the provider's.

Usage: Anthropic's `input_tokens` exclude the cached part; cache reads and writes are counted
beside it (`cache_read_input_tokens`, `cache_creation_input_tokens`, split by lifetime in
`cache_creation`). A stream reports it in `message_start` (input) and `message_delta` (the
cumulative counts, output included), so the counts are merged in that order.
"""

from __future__ import annotations

import json
from typing import Any

from executor.core.journal import Usage
from executor.core.pricing import DEFAULT_PRICES, PER, PriceTable, cost

MESSAGES_TAIL = "messages"
API_VERSION_HEADER = "anthropic-version"
PASS_RESPONSE_HEADERS = ("request-id", "anthropic-organization-id")
PASS_RESPONSE_PREFIXES = ("anthropic-ratelimit-",)
# Errors the gateway answers itself, by the status it answers with.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               404: "not_found_error", 429: "rate_limit_error", 502: "api_error",
               504: "timeout_error"}


def speaks_anthropic(tail: str, headers: Any) -> bool:
    """A Messages API request (path after the gateway's /v1, and the request's headers)."""
    path = tail.split("?", 1)[0].strip("/")
    return path == MESSAGES_TAIL or path.startswith(MESSAGES_TAIL + "/") \
        or API_VERSION_HEADER in headers


def attempt_token(headers: Any) -> str:
    """The token an Anthropic client sends: `x-api-key`, else a Bearer token."""
    token = headers.get("x-api-key", "")
    if token:
        return token.strip()
    auth = headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else ""


def upstream_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}


def refused_for_good(payload: bytes) -> bool:
    """A 429 that waiting does not heal: the monthly spend cap (no retry-after either)."""
    return b"enforced_spend_limit_reached" in payload


# ----------------------------------------------------------------------- usage


def usage_in(body: Any) -> dict[str, Any] | None:
    """The usage of a `message` object (or of a `message_start` event's message)."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("usage"), dict):
        return body["usage"]
    message = body.get("message")
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        return message["usage"]
    return None


def usage_in_sse(text: str) -> dict[str, Any] | None:
    """The usage of a streamed message: message_start's, updated by each message_delta's
    (cumulative counts: later values win)."""
    merged: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("type") in ("message_start", "message_delta"):
            merged.update({k: v for k, v in (usage_in(event) or {}).items() if v is not None})
    return merged or None


def is_anthropic_usage(raw: dict[str, Any]) -> bool:
    return "cache_read_input_tokens" in raw or "cache_creation_input_tokens" in raw


def normalise_usage(raw: dict[str, Any], model: str | None,
                    prices: PriceTable | None) -> Usage:
    """Anthropic usage as the journal's Usage (input excludes the cache, as the provider
    counts it), priced: 1-hour cache writes at their own price, or no cost when the table has
    none for them."""
    count = lambda key: int(raw.get(key) or 0)
    usage = Usage(input_tokens=count("input_tokens"), output_tokens=count("output_tokens"),
                  cached_input_tokens=count("cache_read_input_tokens"),
                  cache_creation_input_tokens=count("cache_creation_input_tokens"),
                  llm_calls=1)
    return usage.model_copy(update={"cost_usd": _cost(usage, raw, model or "",
                                                      prices or DEFAULT_PRICES)})


def _cost(usage: Usage, raw: dict[str, Any], model: str, table: PriceTable) -> float | None:
    split = raw.get("cache_creation") if isinstance(raw.get("cache_creation"), dict) else {}
    hour = int(split.get("ephemeral_1h_input_tokens") or 0)
    if not hour:
        return cost(usage, model, table)
    price = table.price(model)
    if price is None or price.cache_write_1h is None:
        return None
    short = usage.model_copy(update={
        "cache_creation_input_tokens": max(0, usage.cache_creation_input_tokens - hour)})
    rest = cost(short, model, table)
    return None if rest is None else rest + hour * price.cache_write_1h / PER
