"""What a measurement ran on: CPU, kernel, container engine (Docker or podman), GPUs. Recorded with every benchmark
(results.json `host`) so that `isobench compare` can say what differed between two hosts when
their numbers differ. Old results have none: they read as "not recorded"."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess

from pydantic import AliasChoices, BaseModel, Field


class GpuFact(BaseModel):
    """One GPU as nvidia-smi names it."""

    name: str = Field(description="Product name, e.g. 'NVIDIA H200'.")
    uuid: str = Field(description="GPU UUID.")
    driver: str = Field(description="Driver version.")
    cuda: str | None = Field(default=None, description="CUDA version the driver supports.")


class HostFacts(BaseModel):
    """The machine and engine one benchmark ran on."""

    hostname: str = Field(description="Node name.")
    cpu_model: str = Field(description="CPU model from /proc/cpuinfo.")
    cpu_count: int = Field(description="Logical CPUs of the host.")
    cpuset: str | None = Field(default=None, description="CPUs the benchmark containers were "
                                                         "pinned to (--cpuset); None: all.")
    cpus: float | None = Field(default=None, description="CPU quota of the benchmark containers "
                                                         "(--cpus); None: no quota.")
    kernel: str = Field(description="Kernel release (uname -r).")
    engine: str = Field(default="docker", description="Container engine: docker or podman "
                                                      "(records from before podman: docker).")
    engine_version: str | None = Field(
        default=None, validation_alias=AliasChoices("engine_version", "docker_version"),
        description="The engine's version (older records: docker_version).")
    storage_driver: str | None = Field(default=None, description="The engine's storage driver.")
    rootless: bool | None = Field(default=None, description="Whether the engine runs "
                                                            "unprivileged; None: not recorded.")
    unenforced_limits: list[str] = Field(
        default_factory=list, description="Limits the engine could not set on the containers "
                                          "(e.g. rootless podman on cgroup v1: all of them).")
    gpus: list[GpuFact] = Field(default_factory=list, description="GPUs nvidia-smi lists.")


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_facts() -> list[GpuFact]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,uuid,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    cuda = None
    if "CUDA Version:" in header.stdout:
        cuda = header.stdout.split("CUDA Version:", 1)[1].split()[0]
    gpus = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append(GpuFact(name=parts[0], uuid=parts[1], driver=parts[2], cuda=cuda))
    return gpus


def collect_host_facts(cpuset: str | None = None, cpus: float | None = None) -> HostFacts:
    """This host and its engine (the engine is asked; a failure leaves its fields None)."""
    facts = HostFacts(hostname=socket.gethostname(), cpu_model=cpu_model(),
                      cpu_count=os.cpu_count() or 0, cpuset=cpuset, cpus=cpus,
                      kernel=platform.release(), gpus=gpu_facts())
    try:
        from executor.engine.sandbox import engine_facts

        engine = engine_facts()
        facts.engine = engine.get("engine", facts.engine)
        facts.engine_version = engine.get("engine_version")
        facts.storage_driver = engine.get("storage_driver")
        facts.rootless = engine.get("rootless") == "true" if "rootless" in engine else None
        facts.unenforced_limits = [x for x in engine.get("unenforced_limits", "").split(",") if x]
    except Exception:  # noqa: BLE001 - facts are a record, never a reason to fail a benchmark
        pass
    return facts


def host_differences(a: HostFacts | None, b: HostFacts | None) -> list[str]:
    """'cpu_model: X -> Y' for every fact that differs ('not recorded' for a missing side)."""
    if a is None or b is None:
        if a is None and b is None:
            return []
        return [f"host facts: {'not recorded' if a is None else 'recorded'} -> "
                f"{'not recorded' if b is None else 'recorded'}"]
    diffs = []
    for field in ("cpu_model", "cpu_count", "cpuset", "cpus", "kernel", "engine",
                  "engine_version", "storage_driver", "rootless", "unenforced_limits"):
        old, new = getattr(a, field), getattr(b, field)
        if field == "rootless" and (old is None or new is None):
            continue  # recorded only since podman: an older record says nothing
        if old != new:
            diffs.append(f"{field}: {old} -> {new}")
    old_gpus = [(g.name, g.driver, g.cuda) for g in a.gpus]
    new_gpus = [(g.name, g.driver, g.cuda) for g in b.gpus]
    if old_gpus != new_gpus:
        diffs.append(f"gpus: {old_gpus or 'none'} -> {new_gpus or 'none'}")
    return diffs
