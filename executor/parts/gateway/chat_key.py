"""The key a Chat Completions request is replayed by (OpenHands' requests).

Replay serves a recorded answer only to the request that was recorded (replay.py). OpenHands
(CLI 1.16.0 on SDK 1.21.0) sends different bytes when it repeats itself: each run mints values
the model's answer cannot depend on. They were found by running the real OpenHands twice on the
same three demo items with the same scripted answers and comparing every recorded body; these
were the only differences:
  * top-level `prompt_cache_key`: a uuid4 per conversation, a routing hint for the provider's
    prompt cache, never shown to the model;
  * `The current date and time is: <ISO time>` in the system prompt: when the run started.
And one that a rerun on another host adds (the same host ran both):
  * `User operating system: Linux (kernel <release>)`: the kernel of the host that ran the
    sandbox; the sandbox image, the repository and the task are the same.
Everything else stays: model, tools, every message (the agent's commands, their output, the
tool-call ids the provider minted, which a replay hands out again), reasoning_effort. The key
is taken over the parsed JSON, after the gateway's redactor (server.py), like the others.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from executor.parts.gateway.responses import json_object_body

CHAT_PATHS = ("chat/completions",)
PER_RUN_TOP = ("prompt_cache_key",)
PER_RUN_TEXT = (
    (re.compile(r"The current date and time is: \d{4}-\d{2}-\d{2}T[0-9:.]+"),
     "The current date and time is: *"),
    (re.compile(r"(User operating system: [^\n(]*)\(kernel [^)\n]*\)"), r"\1(kernel *)"),
)


def is_chat(path: str) -> bool:
    return path.split("?", 1)[0].strip("/") in CHAT_PATHS


def canonical_body(value: Any) -> Any:
    """The body (or a part of it) with its per-run text set aside."""
    if isinstance(value, dict):
        return {k: canonical_body(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_body(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in PER_RUN_TEXT:
            value = pattern.sub(replacement, value)
    return value


def replay_key(path: str, raw: bytes) -> str | None:
    """The replay key of a Chat Completions request; None for other paths and for bodies that
    are not JSON objects (their body sha256 is their key)."""
    body = json_object_body(raw) if is_chat(path) else None
    if body is None:
        return None
    kept = canonical_body({k: v for k, v in body.items() if k not in PER_RUN_TOP})
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
