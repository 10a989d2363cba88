"""Agent adapters, by name. Adding an agent is one module and one line in `AGENTS`."""

from __future__ import annotations

from pathlib import Path

from executor.agents.base import Agent
from executor.errors import UserInputError

AGENTS = ("replay", "script")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror}") from exc


def make_agent(name: str, *, patch_file: Path | None = None, script_file: Path | None = None,
               default_patch: tuple[bytes, str] | None = None) -> Agent:
    """Build the adapter named on the command line.

    `default_patch` is the task's own reference patch (the demo ships one), used by the
    replay agent when no --patch is given.
    """
    if name == "replay":
        from executor.agents.replay import ReplayAgent

        if patch_file is not None:
            return ReplayAgent(_read(patch_file, "patch"), str(patch_file))
        if default_patch is None:
            raise UserInputError("the replay agent needs --patch FILE for this task")
        return ReplayAgent(*default_patch)
    if name == "script":
        from executor.agents.script import ScriptAgent

        if script_file is None:
            raise UserInputError("the script agent needs --agent-script FILE")
        return ScriptAgent(_read(script_file, "script"), str(script_file))
    raise UserInputError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}")
