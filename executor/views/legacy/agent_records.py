"""What ISO-Bench's trajectory-less agents leave behind, read as evidence.

TRAE writes a trajectory; claude_code, codex and openhands did not (in ISO-Bench's state they
leave `<agent>_stdout.txt`, a journal with the CLI's exit code, and a patch). Claude Code's
`--output-format json` prints one result object as its last stdout line: `type: result`,
`is_error`, `subtype`, `result`, `usage`, `total_cost_usd`. That is a real ending. The others'
stdout is free text: no ending can be read from it, so the caller calls the attempt "unknown"
(or keeps its patch), never failed.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import (
    AGENT_STARTUP_CRASH,
    ErrorSignature,
    classify_text,
    signature,
)
from executor.core.journal import Usage
from executor.parts.agents.claude_code_record import result_object

STDOUT_GLOB = "*_stdout.txt"
STDERR_GLOB = "*_stderr.txt"
STDERR_TAIL_BYTES = 4 * 1024  # the fatal error is at the end (codex: its last 177 bytes); each
# line costs every rule, and 16 KiB of 735 logs took 8 s on a busy 2-core host
TAIL_BYTES = 256 * 1024  # the result line is the last one; a long transcript precedes it
# The line a dying process leaves last: Python's exception line ("ImportError: cannot import
# name ...", "openai.OpenAIError: ..."), or a CLI's own "Error: ..." (click, Claude Code).
CRASH_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)|Error)\b:? .+")
TRACEBACK = "Traceback (most recent call last):"
LAST_LINES = 20  # where a log without a crash line says why it stopped
FRAME = re.compile(r'^\s*File ".+", line \d+')


class AgentRecord(BaseModel):
    """The ending an agent reported on stdout, when it reports one."""

    finished: bool = Field(description="The agent said it ended without error.")
    result: str = Field(default="", description="Its final message (or error text).")
    usage: Usage | None = Field(default=None, description="Tokens and cost it reported.")
    duration_s: float | None = Field(default=None, description="Its own wall time.")
    source: str = Field(description="The file read.")


def stdout_files(item_dir: Path) -> list[Path]:
    return sorted(item_dir.glob(STDOUT_GLOB))


def read_agent_record(item_dir: Path) -> AgentRecord | None:
    """Claude Code's result object from the item's stdout; None when no file holds one."""
    for path in stdout_files(item_dir):
        record = _result_object(path)
        if record is not None:
            return _record(record, path.name)
    return None


def tail_lines(path: Path, size: int = TAIL_BYTES) -> list[str]:
    """The last `size` bytes of a log, as lines ([] when unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def stderr_failure(item_dir: Path) -> ErrorSignature | None:
    """The failure an agent printed on stderr (codex CLI's "usage limit reached" 429 is there
    and nowhere else: its stdout is empty and its exit code says only 1)."""
    for path in sorted(item_dir.glob(STDERR_GLOB)):
        found = classify_text(tail_lines(path, STDERR_TAIL_BYTES), path.name)
        if found is not None:
            return found
    return None


def startup_crash(item_dir: Path) -> ErrorSignature | None:
    """Why an agent died before its first step, from what it printed last: its stderr's (then
    its stdout's: TRAE's click prints "Error: Config file not found" there) last crash line,
    named when a rule knows it (a missing key is `auth`), else a start-up crash; else the
    deepest frame of a traceback cut short (ISO-Bench kept some stderr only in part); else a
    failure a rule names in the last lines. None when the logs name nothing (then only the
    missing trajectory is known). Every `*_stderr.txt`: ISO-Bench wrote TRAE's under
    `openhands_stderr.txt` too (often a copy: read once)."""
    seen: list[list[str]] = []
    for path in sorted(item_dir.glob(STDERR_GLOB)) + sorted(item_dir.glob(STDOUT_GLOB)):
        lines = tail_lines(path, STDERR_TAIL_BYTES)
        if not lines or lines in seen:
            continue
        seen.append(lines)
        # Only the line that ended the process is classified: every rule on every line of
        # every log was most of `status`'s time.
        crash = next((line.strip() for line in reversed(lines)
                      if CRASH_LINE.match(line.strip())), None)
        if crash:
            return classify_text([crash], path.name) or signature(AGENT_STARTUP_CRASH, crash,
                                                                  path.name)
        if any(line.startswith(TRACEBACK) for line in lines):
            frame = next((line.strip() for line in reversed(lines) if FRAME.match(line)), "")
            return signature(AGENT_STARTUP_CRASH, f"a Python traceback, cut short at: {frame}",
                             path.name)
        if (named := classify_text(lines[-LAST_LINES:], path.name)) is not None:
            return named
    return None


def _result_object(path: Path) -> dict | None:
    """Claude Code's `type: result` object in the log's tail (the adapter's own reader)."""
    return result_object("\n".join(tail_lines(path)))


def _record(data: dict, source: str) -> AgentRecord:
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    count = lambda key: int(usage.get(key) or 0)  # noqa: E731 - absent counts are zero
    cost = data.get("total_cost_usd")
    turns = data.get("num_turns")
    # An error result names its cause in `errors` ("ENOSPC: no space left on device"), its
    # `result` and `subtype` ("error_during_execution") only say that it failed.
    errors = [str(e) for e in data.get("errors") or [] if e] if isinstance(
        data.get("errors"), list) else []
    return AgentRecord(
        finished=not data.get("is_error") and data.get("subtype") == "success",
        result="; ".join(errors) or str(data.get("result") or data.get("subtype") or ""),
        usage=Usage(input_tokens=count("input_tokens"), output_tokens=count("output_tokens"),
                    cached_input_tokens=count("cache_read_input_tokens"),
                    cache_creation_input_tokens=count("cache_creation_input_tokens"),
                    llm_calls=int(turns) if isinstance(turns, int) else 0,
                    cost_usd=float(cost) if isinstance(cost, (int, float)) else None),
        duration_s=(data["duration_ms"] / 1000 if isinstance(data.get("duration_ms"),
                                                            (int, float)) else None),
        source=source)
