"""The key an Anthropic Messages request is replayed by (Claude Code's requests).

Replay serves a recorded answer only to the request that was recorded (replay.py). Claude Code
(2.1.332, stateless: the whole conversation every call) sends different bytes when it repeats
itself, because each run mints values the model's answer cannot depend on. The key is the
sha256 of the request with exactly those set aside; they were found by running the real Claude
Code twice on the same task with the same scripted answers and comparing the recorded bodies
(tests/fixtures/claude_code/):
  * top-level `metadata`: its `user_id` is a JSON string of `device_id` (64 hex, minted into
    $HOME/.claude.json at first start, and every sandbox starts with a fresh HOME),
    `account_uuid` (empty with an API key) and `session_id` (a uuid4 per process). The provider
    keeps it for abuse tracking; the model is not shown it;
  * those two ids wherever else they occur in the body;
  * the directories and file ids Claude Code mints for what it keeps on disk and names to the
    model: a large command output saved to
    `$HOME/.claude/projects/<cwd-slug>/<uuid>/tool-results/<id>.txt`, a background command's
    `/tmp/claude-<uid>/<cwd-slug>/<uuid>/tasks/<id>.output`, whose `<id>` is also the task's
    id (`with ID: <id>`, `<task-id><id></task-id>`). Each such id is replaced, wherever it
    occurs, by its order of first appearance, so two different ids stay two;
  * `Today's date is <YYYY-MM-DD>.`: the day the run happened, not part of the task;
  * `OS Version: <kernel>`: the kernel release of the host that ran the sandbox (a rerun on
    another host has another); the sandbox image, the repository and the task are the same.
Everything else stays: the model, the system prompt, the tools, every message (the agent's
commands, their output, the provider's own tool_use ids, which a replay hands out again),
max_tokens, thinking, the cache markers. A request that differs in any of those has another
key, and replay refuses it. Headers are not part of it (`x-claude-code-session-id` is per
run too), nor is the body's formatting: the key is taken over the parsed JSON.
The gateway keys the body after its redactor ran (server.py), so the attempt token, new each
attempt, never enters the key either.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from executor.parts.gateway.responses import json_object_body

MESSAGES_PATHS = ("messages", "messages/count_tokens")
PER_RUN_TOP = ("metadata",)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Where Claude Code names an id it minted: the session directory of its files (under its
# projects directory in $HOME, or /tmp/claude-<uid>, then the working directory's slug) and
# the file or background task id inside it. Anchored on the whole path, so that a path of the
# agent's own (`src/tasks/run.py`) never makes a word of the body an "id".
MINTED_PATH = re.compile(rf"(?:/\.claude/projects|/claude-\d+)/[^/\s\"]+/({_UUID})/"
                         r"(?:(?:tool-results|tasks)/([A-Za-z0-9_-]+)\.\w+)?")
PER_RUN_TEXT = (
    (re.compile(r"Today's date is \d{4}-\d{2}-\d{2}\."), "Today's date is *."),
    (re.compile(r"OS Version: [^\n]*"), "OS Version: *"),
)


def is_messages(path: str) -> bool:
    return path.split("?", 1)[0].strip("/") in MESSAGES_PATHS


def metadata_ids(body: dict[str, Any]) -> list[str]:
    """The device and session ids in `metadata.user_id` (a JSON string), if any."""
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str):
        return []
    try:
        ids = json.loads(user_id)
    except ValueError:
        return [user_id] if user_id else []
    if not isinstance(ids, dict):
        return []
    return [v for k, v in sorted(ids.items()) if k in ("device_id", "session_id")
            and isinstance(v, str) and v]


def _strings(value: Any) -> list[str]:
    """Every string in `value`, in a fixed order (dict keys sorted)."""
    if isinstance(value, dict):
        return [s for k in sorted(value) for s in _strings(value[k])]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def minted_ids(body: dict[str, Any]) -> list[str]:
    """The per-run ids of this body, in order of first appearance (metadata's first)."""
    found = dict.fromkeys(metadata_ids(body))
    for text in _strings({k: v for k, v in body.items() if k not in PER_RUN_TOP}):
        for match in MINTED_PATH.finditer(text):
            found.update(dict.fromkeys(g for g in match.groups() if g))
    return list(found)


def _canonical(value: Any, ids: re.Pattern[str] | None, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v, ids, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v, ids, names) for v in value]
    if not isinstance(value, str):
        return value
    for pattern, replacement in PER_RUN_TEXT:
        value = pattern.sub(replacement, value)
    return ids.sub(lambda m: names[m.group(0)], value) if ids is not None else value


def canonical_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its per-run values set aside (see the module docstring)."""
    found = minted_ids(body)
    names = {value: f"<per-run-id-{n}>" for n, value in enumerate(found, 1)}
    # Whole tokens only: an id is never replaced inside a longer word.
    ids = re.compile(r"(?<![A-Za-z0-9_-])(?:" + "|".join(
        re.escape(v) for v in sorted(found, key=len, reverse=True)) + r")(?![A-Za-z0-9_-])") \
        if found else None
    return _canonical({k: v for k, v in body.items() if k not in PER_RUN_TOP}, ids, names)


def replay_key(path: str, raw: bytes) -> str | None:
    """The replay key of a Messages request; None for other paths and for bodies that are
    not JSON objects (their body sha256 is their key)."""
    body = json_object_body(raw) if is_messages(path) else None
    if body is None:
        return None
    canonical = json.dumps(canonical_body(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
