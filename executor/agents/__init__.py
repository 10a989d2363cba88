"""Agent adapters, by name. Adding an agent is one module and one line in `AGENTS`."""

from __future__ import annotations

from pathlib import Path

from executor.agents.base import Agent
from executor.errors import UserInputError

AGENTS = ("replay",)


def make_agent(name: str, *, patch_file: Path | None = None,
               default_patch: tuple[bytes, str] | None = None) -> Agent:
    """Build the adapter named on the command line.

    `default_patch` is the task's own reference patch (the demo ships one), used by the
    replay agent when no --patch is given.
    """
    if name == "replay":
        from executor.agents.replay import ReplayAgent

        if patch_file is not None:
            try:
                return ReplayAgent(patch_file.read_bytes(), str(patch_file))
            except OSError as exc:
                raise UserInputError(f"cannot read patch {patch_file}: {exc.strerror}") from exc
        if default_patch is None:
            raise UserInputError("the replay agent needs --patch FILE for this task")
        return ReplayAgent(*default_patch)
    raise UserInputError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}")
