"""Podman, rootless: its Docker-compatible API service, GPUs through CDI, podman's own facts.

isobench talks to podman's API service (`podman system service`) with the same client as to
Docker (docker-py, through engine/docker.py's `api_client`); what differs lives here:

  * where the service listens: $ISOBENCH_PODMAN_SOCKET, else podman's own $CONTAINER_HOST,
    else the user's socket ($XDG_RUNTIME_DIR/podman/podman.sock; root: /run/podman/podman.sock).
    When the user's own socket is silent and `podman` is installed, the service is started
    (it serves until its user's session ends); a socket named by a variable is someone else's
    to start, so there the error says what to run.
  * GPUs: CDI device names (`nvidia.com/gpu=0`, `nvidia.com/gpu=all`) from a spec that
    `nvidia-ctk cdi generate` wrote; the nvidia runtime and `--gpus` are Docker's. podman's
    Docker-compatible create takes device *paths* only (4.3 answers "stat nvidia.com/gpu=all:
    no such file or directory"), so a container with CDI devices is created through podman's
    own API (libpod's create, which resolves CDI names since 4.1) from the same arguments.
  * limits: a rootless podman sets cgroup limits only on cgroup v2, and only for the
    controllers delegated to its user; the limits it cannot set are named
    (`unenforced_limits`), recorded with the host facts, and warned about in one line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from executor.core.errors import EngineUnavailable
from executor.core.resources import GpuRequest
from executor.engine.base import ContainerEngine, limits_beyond_reach
from executor.engine.docker import ENGINE_ERRORS, APIError, api_client, parse_bytes

SOCKET_ENV = "ISOBENCH_PODMAN_SOCKET"
CDI_SPEC_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
CDI_GPU_KIND = "nvidia.com/gpu"
SERVICE_START_WAIT_S = 30
LIBPOD = "/v4.0.0/libpod"  # podman's own API, served by podman 4 and 5 alike
GPU_SHM_SIZE = "16g"  # a tmpfs cap, not an allocation
CPU_PERIOD_US = 100_000  # the CFS period Docker's --cpus uses


def socket_url(env: Mapping[str, str] | None = None, uid: int | None = None
               ) -> tuple[str, bool]:
    """The API service's URL, and whether it is this user's own default socket (which
    isobench may start) rather than one a variable names."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    for variable in (SOCKET_ENV, "CONTAINER_HOST"):
        if value := env.get(variable, "").strip():
            return (value if "://" in value else f"unix://{value}"), False
    if uid == 0:
        return "unix:///run/podman/podman.sock", True
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"unix://{runtime_dir}/podman/podman.sock", True


def cdi_devices(gpus: GpuRequest) -> list[str]:
    """CDI device names for a GPU request: nvidia-ctk names each GPU by index (and, with
    --device-name-strategy=uuid, by UUID), and all of them `all`."""
    if gpus.mode == "all":
        return [f"{CDI_GPU_KIND}=all"]
    return [f"{CDI_GPU_KIND}={gpu_id}" for gpu_id in gpus.ids]


_KIND = re.compile(r'(?:^|[{,])\s*"?kind"?\s*:\s*"?([^"\s,}]+)', re.MULTILINE)


def cdi_spec_kinds(spec_text: str) -> set[str]:
    """The device kinds a CDI spec declares (its top-level `kind`), read from its YAML or JSON
    text without a YAML parser: the kind is a plain `vendor/class` scalar."""
    return set(_KIND.findall(spec_text))


def cdi_gpu_spec(dirs: tuple[Path, ...] = CDI_SPEC_DIRS) -> Path | None:
    """The first CDI spec in `dirs` that declares NVIDIA GPUs; None when there is none."""
    for directory in dirs:
        try:
            files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml",
                                                                         ".json"))
        except OSError:
            continue
        for path in files:
            try:
                if CDI_GPU_KIND in cdi_spec_kinds(path.read_text(errors="replace")):
                    return path
            except OSError:
                continue
    return None


def is_cdi_name(device: str) -> bool:
    """`vendor.com/class=name` (a CDI device), as opposed to a host path like /dev/fuse."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9._-]*=\S+",
                             device))


def _namespace(mode: str | None) -> dict[str, str] | None:
    if mode in (None, "", "default", "bridge"):
        return None  # podman's default: bridge when root, slirp4netns/pasta when rootless
    if mode in ("none", "host", "private"):
        return {"nsmode": mode}
    if mode.startswith("container:"):
        return {"nsmode": "container", "value": mode.split(":", 1)[1]}
    return {"nsmode": "bridge"}  # a named network: joined through `networks`


def libpod_create_spec(kwargs: dict[str, Any]) -> dict[str, Any]:
    """podman's own create spec (libpod's SpecGenerator) for the `containers.run` arguments a
    sandbox is started with (sandbox.container_kwargs + gpu_run_options). Pure: unit-tested.
    An argument it does not know is an error, not a silently different container."""
    known = {"image", "command", "name", "labels", "detach", "auto_remove", "init",
             "environment", "working_dir", "network_mode", "pids_limit", "mem_limit",
             "cpuset_cpus", "nano_cpus", "volumes", "shm_size", "devices", "security_opt",
             "ipc_mode"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"libpod_create_spec: no translation for {unknown}")
    spec: dict[str, Any] = {"image": kwargs["image"], "labels": kwargs.get("labels") or {},
                            "env": kwargs.get("environment") or {},
                            "remove": bool(kwargs.get("auto_remove")),
                            "init": bool(kwargs.get("init"))}
    for ours, theirs in (("name", "name"), ("command", "command"),
                         ("working_dir", "work_dir")):
        if kwargs.get(ours):
            spec[theirs] = kwargs[ours]
    if (netns := _namespace(kwargs.get("network_mode"))) is not None:
        spec["netns"] = netns
        if netns["nsmode"] == "bridge":
            spec["networks"] = {kwargs["network_mode"]: {}}
    if (ipcns := _namespace(kwargs.get("ipc_mode"))) is not None:
        spec["ipcns"] = ipcns
    limits: dict[str, Any] = {}
    if kwargs.get("pids_limit"):
        limits["pids"] = {"limit": int(kwargs["pids_limit"])}
    if kwargs.get("mem_limit"):
        limits["memory"] = {"limit": parse_bytes(kwargs["mem_limit"])}
    cpu: dict[str, Any] = {}
    if kwargs.get("cpuset_cpus"):
        cpu["cpus"] = kwargs["cpuset_cpus"]
    if kwargs.get("nano_cpus"):
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = int(kwargs["nano_cpus"]) * CPU_PERIOD_US // 1_000_000_000
    if cpu:
        limits["cpu"] = cpu
    if limits:
        spec["resource_limits"] = limits
    if kwargs.get("shm_size"):
        spec["shm_size"] = parse_bytes(kwargs["shm_size"])
    if kwargs.get("devices"):
        spec["devices"] = [{"path": device} for device in kwargs["devices"]]
    if "label=disable" in (kwargs.get("security_opt") or []):
        spec["selinux_opts"] = ["disable"]
    spec["mounts"] = [{"type": "bind", "source": source, "destination": bind["bind"],
                       "options": ["rbind", bind.get("mode", "rw")]}
                      for source, bind in (kwargs.get("volumes") or {}).items()]
    return spec


def podman_facts(info: dict[str, Any], api_version: str = "") -> dict[str, str]:
    """The facts isobench records about a podman engine, from its libpod /info answer."""
    host, store = info.get("host") or {}, info.get("store") or {}
    version = info.get("version") or {}
    rootless = bool((host.get("security") or {}).get("rootless"))
    cgroup_version = str(host.get("cgroupVersion") or "").lstrip("v")
    controllers = [str(c) for c in host.get("cgroupControllers") or []]
    return {"engine": "podman", "engine_version": str(version.get("Version", "")),
            "engine_api": api_version, "storage_driver": str(store.get("graphDriverName", "")),
            "engine_kernel": str(host.get("kernel", "")), "rootless": str(rootless).lower(),
            "cgroup_manager": str(host.get("cgroupManager", "")),
            "cgroup_version": cgroup_version,
            "oci_runtime": str((host.get("ociRuntime") or {}).get("name", "")),
            "data_root": str(store.get("graphRoot", "")),
            "unenforced_limits": ",".join(limits_beyond_reach(rootless, cgroup_version,
                                                            controllers))}


class PodmanEngine(ContainerEngine):
    name = "podman"

    def __init__(self) -> None:
        super().__init__()
        self._facts: dict[str, str] | None = None

    def start_hint(self) -> str:
        return ("start podman's API service as the user who runs the containers "
                "(`podman system service --time=0 &`), or as root `export ISOBENCH_PODMAN_SOCKET"
                "=$(scripts/ensure-podman.sh)`; then check with `isobench doctor --engine podman`")

    def _connect(self, timeout: int | None) -> Any:
        url, own = socket_url()
        try:
            return api_client(url, timeout, self.start_hint())
        except EngineUnavailable:
            if not (own and url.startswith("unix://") and shutil.which("podman")):
                raise
        self._start_service(url)
        return api_client(url, timeout, self.start_hint())

    def _start_service(self, url: str) -> None:
        """Start this user's API service on its default socket and wait until it answers."""
        socket_path = Path(url.removeprefix("unix://"))
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        log = socket_path.parent / "isobench-service.log"
        with open(log, "ab") as out:
            # its own session: the service outlives this run (and serves the next one)
            subprocess.Popen(["podman", "system", "service", "--time=0", url],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True)
        deadline = time.monotonic() + SERVICE_START_WAIT_S
        while time.monotonic() < deadline:
            if socket_path.exists():
                try:
                    api_client(url, 5, "").close()
                    return
                except EngineUnavailable:
                    pass
            time.sleep(0.5)  # polling a service that is starting up, not waiting on work
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise EngineUnavailable(f"started `podman system service` at {url} but it did not "
                                f"answer within {SERVICE_START_WAIT_S}s"
                                f"{': ' + tail[0] if tail else ''}; see {log}")

    def run_container(self, client: Any, kwargs: dict[str, Any]) -> Any:
        if not any(is_cdi_name(device) for device in kwargs.get("devices") or []):
            return super().run_container(client, kwargs)
        api = client.api
        spec = libpod_create_spec({k: v for k, v in kwargs.items() if k != "detach"})
        response = api.post(api.base_url + LIBPOD + "/containers/create", json=spec)
        api._raise_for_status(response)  # APIError (ImageNotFound on 404) as docker-py's own
        container_id = response.json()["Id"]
        try:
            api.start(container_id)
        except APIError:
            client.containers.get(container_id).remove(force=True)
            raise
        return client.containers.get(container_id)

    def gpu_run_options(self, gpus: GpuRequest) -> dict[str, Any]:
        # CDI names where Docker has device requests; label=disable: SELinux hosts otherwise
        # deny the injected device nodes. Not Docker's host IPC: a rootless container cannot
        # join it (podman mounts the host's /dev/mqueue, absent on minimal hosts), and inside
        # one container the processes share IPC anyway: a /dev/shm as large as NCCL and
        # dataloaders need instead. No ulimits: a rootless user cannot raise memlock or stack.
        return {"devices": cdi_devices(gpus), "security_opt": ["label=disable"],
                "shm_size": GPU_SHM_SIZE}

    def _libpod_info(self) -> dict[str, Any]:
        api = self.client(timeout=30).api
        response = api.get(api.base_url + LIBPOD + "/info", timeout=30)
        response.raise_for_status()
        return response.json()

    def facts(self) -> dict[str, str]:
        if self._facts is None:  # the same service answers the same for the whole run
            try:
                api_version = str(self.client(timeout=30).version().get("ApiVersion", ""))
                self._facts = podman_facts(self._libpod_info(), api_version)
            except ENGINE_ERRORS as exc:
                raise EngineUnavailable(f"podman's API service did not describe itself "
                                        f"({exc}); {self.start_hint()}") from exc
        return self._facts

    def measures_container_cpu(self) -> bool:
        # rootless on cgroup v1: containers get no cgroup of their own, and the stats API
        # answers 0 CPU time; no reading beats a wrong one
        facts = self.facts()
        return not (facts["rootless"] == "true" and facts["cgroup_version"] == "1")

    def can_pause(self) -> bool:
        # the freezer is a cgroup too: none for a rootless container on cgroup v1
        return self.measures_container_cpu()

    def gpu_ready(self) -> bool:
        return cdi_gpu_spec() is not None

    def gpu_setup_hint(self) -> str:
        return ("install nvidia-container-toolkit, then `sudo nvidia-ctk cdi generate "
                "--output=/etc/cdi/nvidia.yaml` (again after every driver upgrade); check with "
                "`nvidia-ctk cdi list`")

    def data_root(self) -> str:
        return self.facts()["data_root"] or os.path.expanduser(
            "~/.local/share/containers/storage")
