"""Docker: the default engine, and the one module that imports the Docker SDK.

docker-py is also the client isobench uses for podman's Docker-compatible API (podman.py), so
the SDK's error types are exported from here for the engine-neutral modules (sandbox.py,
images.py) to catch.
"""

from __future__ import annotations

import os
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import DeviceRequest, Ulimit
from docker.utils import parse_bytes  # noqa: F401 (podman.py's byte sizes, as docker-py reads them)

from executor.core.errors import EngineUnavailable
from executor.core.resources import GpuRequest
from executor.engine.base import ContainerEngine, limits_beyond_reach

NotFound = docker.errors.NotFound
ImageNotFound = docker.errors.ImageNotFound
APIError = docker.errors.APIError

# What an engine client raises when the engine or the connection to it fails. The pipeline
# catches these (and classifies the text as infra) instead of importing the SDK itself.
ENGINE_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException,
                                              requests.exceptions.RequestException)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def api_client(base_url: str | None, timeout: int | None, unavailable: str) -> Any:
    """A pinged docker-py client of the Docker-compatible API at `base_url` (None: Docker's
    own environment, DOCKER_HOST and its TLS settings); `unavailable` is the one-line advice
    when nothing answers there."""
    try:
        client = (docker.from_env(timeout=timeout, max_pool_size=64) if base_url is None else
                  docker.DockerClient(base_url=base_url, timeout=timeout, max_pool_size=64))
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        reason = str(exc).split("(")[0].strip().rstrip(":") or type(exc).__name__
        where = base_url or os.environ.get("DOCKER_HOST", DEFAULT_SOCKET)
        raise EngineUnavailable(f"cannot reach the container engine at {where} ({reason}); "
                                f"{unavailable}") from exc


def _limits_for_gpu_work() -> dict[str, Any]:
    # NCCL and PyTorch's dataloaders need more than the default 64 MB /dev/shm: share the host's
    # IPC namespace, and lift memlock/stack limits as NGC containers expect.
    return {"ipc_mode": "host",
            "ulimits": [Ulimit(name="memlock", soft=-1, hard=-1),
                        Ulimit(name="stack", soft=64 * 1024 * 1024, hard=64 * 1024 * 1024)]}


def docker_facts(version: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """The facts isobench records about a Docker engine, from its /version and /info."""
    rootless = any("name=rootless" in str(option)
                   for option in info.get("SecurityOptions") or [])
    cgroup_version = str(info.get("CgroupVersion") or "1")
    return {"engine": "docker", "engine_version": str(version.get("Version", "")),
            "engine_api": str(version.get("ApiVersion", "")),
            "storage_driver": str(info.get("Driver", "")),
            "engine_kernel": str(info.get("KernelVersion", "")),
            "rootless": str(rootless).lower(),
            "cgroup_manager": str(info.get("CgroupDriver", "")),
            "cgroup_version": cgroup_version,
            "unenforced_limits": ",".join(limits_beyond_reach(rootless, cgroup_version))}


class DockerEngine(ContainerEngine):
    name = "docker"

    def start_hint(self) -> str:
        return ("start it with scripts/ensure-docker.sh (or `sudo systemctl start docker`), "
                "then check with `isobench doctor`")

    def _connect(self, timeout: int | None) -> Any:
        return api_client(None, timeout, self.start_hint())

    def gpu_run_options(self, gpus: GpuRequest) -> dict[str, Any]:
        request = (DeviceRequest(count=-1, capabilities=[["gpu"]]) if gpus.mode == "all"
                   else DeviceRequest(device_ids=gpus.ids, capabilities=[["gpu"]]))
        return {"device_requests": [request], **_limits_for_gpu_work()}

    def facts(self) -> dict[str, str]:
        client = self.client()
        return docker_facts(client.version(), client.info())

    def gpu_ready(self) -> bool:
        info = self.client(timeout=30).info()
        return "nvidia" in set((info.get("Runtimes") or {}).keys()) | {info.get("DefaultRuntime")}

    def gpu_setup_hint(self) -> str:
        return ("install nvidia-container-toolkit, then `sudo nvidia-ctk runtime configure "
                "--runtime=docker && sudo systemctl restart docker`")

    def data_root(self) -> str:
        return str(self.client(timeout=30).info().get("DockerRootDir") or "/var/lib/docker")
