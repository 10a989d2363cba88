"""What ISO-Bench's trajectory-less agents leave behind, read as evidence.

TRAE writes a trajectory; claude_code, codex and openhands did not (in ISO-Bench's state they
leave `<agent>_stdout.txt`, a journal with the CLI's exit code, and a patch). Claude Code's
`--output-format json` prints one result object as its last stdout line: `type: result`,
`is_error`, `subtype`, `result`, `usage`, `total_cost_usd`. That is a real ending. The others'
stdout is free text: no ending can be read from it, so the caller calls the attempt "unknown"
(or keeps its patch), never failed.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import ErrorSignature, classify_text
from executor.core.journal import Usage

STDOUT_GLOB = "*_stdout.txt"
STDERR_GLOB = "*_stderr.txt"
STDERR_TAIL_BYTES = 16 * 1024  # the fatal error is at the end; every line costs every rule
TAIL_BYTES = 256 * 1024  # the result line is the last one; a long transcript precedes it


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


def _result_object(path: Path) -> dict | None:
    lines = tail_lines(path)
    for line in reversed(lines):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


def _record(data: dict, source: str) -> AgentRecord:
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    count = lambda key: int(usage.get(key) or 0)  # noqa: E731 - absent counts are zero
    cost = data.get("total_cost_usd")
    turns = data.get("num_turns")
    return AgentRecord(
        finished=not data.get("is_error") and data.get("subtype") == "success",
        result=str(data.get("result") or data.get("subtype") or ""),
        usage=Usage(input_tokens=count("input_tokens"), output_tokens=count("output_tokens"),
                    cached_input_tokens=count("cache_read_input_tokens"),
                    cache_creation_input_tokens=count("cache_creation_input_tokens"),
                    llm_calls=int(turns) if isinstance(turns, int) else 0,
                    cost_usd=float(cost) if isinstance(cost, (int, float)) else None),
        duration_s=(data["duration_ms"] / 1000 if isinstance(data.get("duration_ms"),
                                                            (int, float)) else None),
        source=source)
