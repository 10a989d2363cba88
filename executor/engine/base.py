"""The container-engine seam: which engine a run uses, and what every engine must provide.

isobench drives containers through the Docker-compatible REST API, which both engines it
supports serve: Docker's daemon, and podman's API service (rootless: one per user, started on
demand). What differs between them lives in one module per engine:

  engine/docker.py   the Docker SDK (the only importer of it), Docker's socket, GPUs through the
                     nvidia runtime (`--gpus`), the engine's facts
  engine/podman.py   podman's per-user socket and service, GPUs through CDI
                     (`--device nvidia.com/gpu=...`), podman's facts

Everything else (sandbox.py, images.py, the pipeline) asks `current_engine()` (chosen.py) for a
client and for the engine-specific pieces, and never names an engine. The choice is per run
(`--engine`, or $ISOBENCH_ENGINE), recorded in the manifest, and inherited by worker
processes through the environment.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from executor.core.resources import GpuRequest

# The limits a sandbox may ask for (SandboxLimits), and the cgroup controller each needs.
LIMIT_CONTROLLERS = {"cpus": "cpu", "cpuset": "cpuset", "memory": "memory", "pids": "pids"}


def limits_beyond_reach(rootless: bool, cgroup_version: str,
                        controllers: list[str] | None = None) -> list[str]:
    """Which limits an engine cannot set, from how it runs: a root engine sets them all; a
    rootless one none on cgroup v1 (no cgroup can be delegated to a user there: podman ignores
    the limits, Docker refuses them), and on cgroup v2 those whose controller is not delegated
    to its user (`controllers`: the ones it has; None: not reported, assumed all)."""
    if not rootless:
        return []
    if cgroup_version != "2":
        return list(LIMIT_CONTROLLERS)
    if controllers is None:
        return []
    return [limit for limit, controller in LIMIT_CONTROLLERS.items()
            if controller not in controllers]


class ContainerEngine(ABC):
    """One container engine: how to reach it, how it gives GPUs, what it says about itself."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._clients: dict[int | None, Any] = {}
        self._lock = threading.Lock()
        self._unenforced: list[str] | None = None

    def client(self, timeout: int | None = 300) -> Any:
        """A client of the engine's API that has answered a ping (shared per process and
        timeout: its connection pool is thread-safe), or a one-line EngineUnavailable error.
        `timeout=None` is for long, possibly silent streams (builds, agent runs)."""
        with self._lock:
            found = self._clients.get(timeout)
            if found is None:
                found = self._connect(timeout)
                self._clients[timeout] = found
            return found

    @abstractmethod
    def _connect(self, timeout: int | None) -> Any:
        """A fresh, pinged API client."""

    def run_container(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """Create and start a container from docker-py `containers.run` arguments; returns
        docker-py's Container. An engine whose compatible API lacks something the arguments
        ask for (podman: CDI devices) creates it through its own API instead."""
        return client.containers.run(**kwargs)

    @abstractmethod
    def gpu_run_options(self, gpus: GpuRequest) -> dict[str, Any]:
        """Container-creation options that give a container these GPUs (not called for none)."""

    @abstractmethod
    def facts(self) -> dict[str, str]:
        """What the engine says about itself, recorded with the host facts: engine (its name),
        engine_version, engine_api, storage_driver, engine_kernel, rootless ("true"/"false"),
        cgroup_manager, cgroup_version, unenforced_limits (comma-separated, see
        limits_beyond_reach)."""

    def unenforced_limits(self) -> list[str]:
        """The limits (LIMIT_CONTROLLERS' keys) this engine cannot set on a container (asked
        once per process: the engine's cgroup setup does not change under a run)."""
        if self._unenforced is None:
            self._unenforced = [limit for limit in
                                self.facts().get("unenforced_limits", "").split(",") if limit]
        return list(self._unenforced)

    def measures_container_cpu(self) -> bool:
        """Whether a container's CPU time can be read (its own cgroup, or the stats API)."""
        return True

    def can_pause(self) -> bool:
        """Whether containers can be frozen (a commit pauses its container while it copies)."""
        return True

    @abstractmethod
    def gpu_ready(self) -> bool:
        """Whether this engine can give containers GPUs at all (a runtime or a CDI spec)."""

    @abstractmethod
    def gpu_setup_hint(self) -> str:
        """What to run so that `gpu_ready` becomes true."""

    @abstractmethod
    def data_root(self) -> str:
        """Where the engine keeps images and containers (disk checks)."""

    @abstractmethod
    def start_hint(self) -> str:
        """What to run when the engine cannot be reached."""
