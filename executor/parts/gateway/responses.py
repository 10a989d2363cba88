"""What the gateway knows of the OpenAI Responses API beyond passing it through: the key a
Responses request is replayed by.

Replay serves a recorded answer only to the request that was recorded (replay.py). Chat
Completions clients send the same bytes again when the agent repeats itself, so the body's
sha256 is the key. A Responses client such as Codex CLI (0.171.0, stateless: the whole input
every turn) does not: each run mints fresh values the model's answer cannot depend on, so the
same agent repeating itself sends different bytes. The replay key is the sha256 of the request
with those values set aside, and nothing else:
  * top-level `prompt_cache_key`, `client_metadata`, `metadata`, `user`, `safety_identifier`
    (session, thread, turn and installation ids);
  * each input item's `id` (client-minted `msg_<uuid>`, `fco_<uuid>`; the provider's
    `call_id`s stay: a replay hands out the recorded ones);
  * in text, the lines Codex writes that change from run to run: a command's
    `Chunk ID: <hex>` and `Wall time: <seconds> seconds`, and the
    `<current_date>`/`<timezone>` of its environment context.
A request that differs in anything else (another prompt, another command, other output) has
another key, and replay refuses it as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

VOLATILE_TOP = ("prompt_cache_key", "client_metadata", "metadata", "user", "safety_identifier")
VOLATILE_TEXT = (
    (re.compile(r"Chunk ID: [0-9A-Za-z]+"), "Chunk ID: *"),
    (re.compile(r"Wall time: [0-9.]+ seconds"), "Wall time: * seconds"),
    (re.compile(r"<current_date>[^<]*</current_date>"), "<current_date>*</current_date>"),
    (re.compile(r"<timezone>[^<]*</timezone>"), "<timezone>*</timezone>"),
)


def is_responses(path: str) -> bool:
    return path.split("?", 1)[0].strip("/") == "responses"


def _text(value: str) -> str:
    for pattern, replacement in VOLATILE_TEXT:
        value = pattern.sub(replacement, value)
    return value


def _canonical(value: Any, in_input: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v, in_input) for k, v in value.items()
                if not (in_input and k == "id")}
    if isinstance(value, list):
        return [_canonical(v, in_input) for v in value]
    if isinstance(value, str):
        return _text(value)
    return value


def json_object_body(raw: bytes) -> dict[str, Any] | None:
    """A request body as a JSON object; None when it is empty or not one (replay then keys it
    by its bytes)."""
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def replay_key(path: str, raw: bytes) -> str | None:
    """The replay key of a Responses request (see the module docstring); None for other
    requests and bodies that are not JSON objects (their body sha256 is their key)."""
    body = json_object_body(raw) if is_responses(path) else None
    if body is None:
        return None
    kept = {k: v for k, v in body.items() if k not in VOLATILE_TOP}
    if "input" in kept:
        kept["input"] = _canonical(kept["input"], in_input=True)
    canonical = json.dumps(_canonical({k: v for k, v in kept.items() if k != "input"})
                           | ({"input": kept["input"]} if "input" in kept else {}),
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
