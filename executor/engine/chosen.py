"""Which container engine this process uses: chosen per run, inherited by its workers.

`--engine` (or $ISOBENCH_ENGINE) names it; `use_engine` also sets the variable, so batch
workers, Ray tasks and Slurm jobs started from this process use the same engine.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from executor.core.errors import UserInputError
from executor.engine.base import ContainerEngine

ENGINE_ENV = "ISOBENCH_ENGINE"
ENGINE_NAMES = ("docker", "podman")

_current: ContainerEngine | None = None
_current_lock = threading.Lock()


def engine_named(name: str) -> ContainerEngine:
    if name == "docker":
        from executor.engine.docker import DockerEngine
        return DockerEngine()
    if name == "podman":
        from executor.engine.podman import PodmanEngine
        return PodmanEngine()
    raise UserInputError(f"unknown container engine {name!r}: choose one of "
                         f"{', '.join(ENGINE_NAMES)}")


def use_engine(name: str) -> ContainerEngine:
    """Make `name` this process's engine (and its children's, through the environment)."""
    global _current
    with _current_lock:
        if _current is None or _current.name != name:
            _current = engine_named(name)
        os.environ[ENGINE_ENV] = name
        return _current


def current_engine() -> ContainerEngine:
    """The engine this run chose: `use_engine`'s, else $ISOBENCH_ENGINE, else Docker."""
    global _current
    with _current_lock:
        wanted = os.environ.get(ENGINE_ENV, "docker") or "docker"
        if _current is None or _current.name != wanted:
            _current = engine_named(wanted)
        return _current


def engine_client(timeout: int | None = 300) -> Any:
    """The current engine's API client (see ContainerEngine.client)."""
    return current_engine().client(timeout)
