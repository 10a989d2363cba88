"""A container's CPU time, read from its cgroup's own counter on the host.

The engine's stats API reads the same counter but takes about half a second per call (it
gathers every statistic of the container); a trial needs two readings. The file read takes
microseconds and, like the API, happens outside the container, so nothing the benchmark does
inside can change what is read.

Engine-agnostic: the cgroup is found from a process of the container (`/proc/PID/cgroup`) and
the host's cgroup mounts (`/proc/self/mountinfo`), so it works for Docker and (rootless)
Podman alike, on cgroup v1 (`cpuacct.usage`, nanoseconds) and v2 (`cpu.stat` `usage_usec`).
Where the controller cannot see the container's processes (a remote engine, a controller in a
container of its own) no file is found and the caller asks the engine instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
V1_FILE, V2_FILE = "cpuacct.usage", "cpu.stat"


@dataclass(frozen=True)
class CgroupMount:
    """Where one cgroup hierarchy is mounted, and which of its cgroups the mount shows as /."""

    version: int  # 1 (the cpuacct controller's hierarchy) or 2 (the unified hierarchy)
    root: str
    mount_point: Path


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cpu_mounts(mountinfo: str) -> list[CgroupMount]:
    """The cpuacct (v1) and unified (v2) cgroup mounts in a mountinfo text, v1 first: on a
    hybrid host containers are accounted in v1's cpuacct."""
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, super_options = tail[0], tail[2].split(",")
        root, mount_point = _unescape(fields[3]), Path(_unescape(fields[4]))
        if fstype == "cgroup" and "cpuacct" in super_options:
            mounts.append(CgroupMount(1, root, mount_point))
        elif fstype == "cgroup2":
            mounts.append(CgroupMount(2, root, mount_point))
    return sorted(mounts, key=lambda m: m.version)


def cgroup_paths(proc_cgroup: str) -> dict[int, str]:
    """A process's cgroup in the cpuacct hierarchy (1) and in the unified one (2), from the
    text of /proc/PID/cgroup (lines `id:controllers:path`)."""
    paths: dict[int, str] = {}
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "cpuacct" in controllers.split(","):
            paths[1] = path
        elif hierarchy == "0" and controllers == "":
            paths[2] = path
    return paths


def _under_mount(mount: CgroupMount, path: str) -> Path | None:
    """The directory of cgroup `path` under `mount`; None when the mount does not show it."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return mount.mount_point / path[len(root):].lstrip("/")


def cpu_usage_file(pid: int, *, must_contain: str = "", proc: Path = PROC) -> Path | None:
    """The file counting the CPU time of `pid`'s cgroup, or None where this host cannot read
    it. `must_contain` (the container's id) guards against a pid of another pid namespace: the
    cgroup found must be the container's own."""
    try:
        paths = cgroup_paths((proc / str(pid) / "cgroup").read_text())
        mounts = cpu_mounts((proc / "self" / "mountinfo").read_text())
    except OSError:
        return None
    for mount in mounts:
        path = paths.get(mount.version)
        if path is None or must_contain not in path:
            continue
        directory = _under_mount(mount, path)
        candidate = directory / (V1_FILE if mount.version == 1 else V2_FILE) if directory else None
        if candidate and read_cpu_seconds(candidate) is not None:
            return candidate
    return None


def read_cpu_seconds(path: Path) -> float | None:
    """CPU seconds in a cgroup counter file (cpuacct.usage or cpu.stat); None if unreadable
    (e.g. the cgroup is gone with its container)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if path.name == V1_FILE:
        return int(text.strip()) / 1e9 if text.strip().isdigit() else None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value) / 1e6
    return None
