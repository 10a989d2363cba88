"""Replay: an attempt's recorded model responses served again, in order, with no upstream.

A deterministic agent (the script agent, an LLM agent at temperature 0 with the same prompt)
sends the same requests again; each must match the recorded one (path, and body sha256 or the
replay key below) or the gateway answers a 400 `replay_mismatch`, so a diverging rerun fails
loudly instead of being fed answers to questions it did not ask. Used by `isobench run-commit
--gateway-replay RECORD` and by reruns (`replay_from(path)`).

Clients that mint values per run (ids, dates) send other bytes when they repeat themselves; a
Responses request (Codex: gateway/responses.py), a Messages request (Claude Code:
gateway/messages_key.py) and a Chat Completions request (OpenHands: gateway/chat_key.py) also
match by a replay key that sets exactly those aside.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from executor.core.errors import UserInputError
from executor.parts.gateway import chat_key, messages_key, responses
from executor.parts.gateway.record import CallRecord, read_calls


def replay_key(path: str, raw: bytes) -> str | None:
    """The replay key of a Responses, Messages or Chat Completions request (the body less its
    per-run values); None for other requests, which match by body sha256 alone."""
    return (responses.replay_key(path, raw) or messages_key.replay_key(path, raw)
            or chat_key.replay_key(path, raw))


class ReplayAnswer:
    """What the gateway sends back for one replayed call."""

    def __init__(self, status: int, content_type: str, body: bytes, call: CallRecord | None):
        self.status, self.content_type, self.body, self.call = status, content_type, body, call


class ReplaySource:
    """The recorded calls of one attempt, served once each, in order."""

    def __init__(self, calls: list[CallRecord], origin: str = ""):
        self.calls = calls
        self.origin = origin
        self._next = 0
        self._lock = threading.Lock()

    @property
    def served(self) -> int:
        with self._lock:
            return self._next

    def answer(self, path: str, request_sha256: str, key: str | None = None) -> ReplayAnswer:
        """The next recorded answer, if this request is the recorded one: the same body, or
        for a Responses, Messages or Chat Completions request the same replay key
        (`replay_key`)."""
        with self._lock:
            if self._next >= len(self.calls):
                return _error(f"replay: the record has no call left ({len(self.calls)} "
                              "served)", "replay_exhausted")
            call = self.calls[self._next]
            same = call.request_sha256 == request_sha256 or (
                key is not None and call.replay_key == key)
            if call.path != path or not same:
                return _error(f"replay: call {self._next + 1} differs from the record "
                              f"(recorded {call.path} {call.request_sha256[:12]}, got {path} "
                              f"{request_sha256[:12]}); the agent did not repeat itself",
                              "replay_mismatch")
            self._next += 1
        body = call.response_body
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return ReplayAnswer(call.status, call.response_type, raw, call)


def _error(message: str, code: str) -> ReplayAnswer:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": code}}
    return ReplayAnswer(400, "application/json", json.dumps(body).encode(), None)


def replay_from(record_path: Path) -> ReplaySource:
    """A replay source from an attempt's model_calls.jsonl; a one-line error when the record
    is missing or was kept without bodies."""
    path = Path(record_path)
    if not path.is_file():
        raise UserInputError(f"no model-call record at {path}")
    try:
        calls = read_calls(path)
    except ValueError as exc:
        raise UserInputError(f"{path} is not a model-call record: {exc}") from None
    if any(call.response_body is None for call in calls):
        raise UserInputError(f"{path} was recorded without bodies (--no-gateway-bodies); it "
                             "cannot be replayed")
    return ReplaySource([_keyed(call) for call in calls], origin=str(path))


def _keyed(call: CallRecord) -> CallRecord:
    """The call with its replay key, taken from its recorded body when the record predates
    the key for its dialect (the key is over the parsed, redacted body: the same either way)."""
    if call.replay_key is not None or not isinstance(call.request_body, dict):
        return call
    key = replay_key(call.path, json.dumps(call.request_body).encode())
    return call.model_copy(update={"replay_key": key}) if key else call
