"""The podman engine's pure parts: CDI option mapping, the libpod create spec, facts parsing,
the limits an engine cannot set, the socket it looks for, and the host facts that record the
engine. (The engine itself, against a real rootless podman: tests/integration/test_podman.py.)"""

import json
import subprocess
import sys

import pytest

from executor.core.resources import GpuRequest, Mount, SandboxLimits, SandboxSpec
from executor.engine.base import limits_beyond_reach
from executor.engine.docker import docker_facts
from executor.engine.hostfacts import HostFacts, host_differences
from executor.engine.podman import (
    PodmanEngine,
    cdi_devices,
    cdi_gpu_spec,
    cdi_spec_kinds,
    is_cdi_name,
    libpod_create_spec,
    podman_facts,
    socket_url,
)
from tests.conftest import REPO_ROOT

# The shape of podman 4.3.1's libpod /info, rootless on this cgroup v1 host (trimmed).
ROOTLESS_V1_INFO = {
    "host": {"cgroupManager": "cgroupfs", "cgroupVersion": "v1", "cgroupControllers": [],
             "kernel": "6.18.44", "ociRuntime": {"name": "runc"},
             "security": {"rootless": True}},
    "store": {"graphDriverName": "overlay",
              "graphRoot": "/home/isobench-podman/.local/share/containers/storage"},
    "version": {"APIVersion": "4.3.1", "Version": "4.3.1"}}

NVIDIA_SPEC_YAML = """---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: all
"""


def test_gpu_requests_map_to_cdi_device_names():
    assert cdi_devices(GpuRequest.parse("all")) == ["nvidia.com/gpu=all"]
    assert cdi_devices(GpuRequest.parse("0,1")) == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    uuid = "GPU-0a1b2c3d-0000-1111-2222-333344445555"
    assert cdi_devices(GpuRequest.parse(uuid)) == [f"nvidia.com/gpu={uuid}"]
    options = PodmanEngine().gpu_run_options(GpuRequest.parse("1"))
    assert options["devices"] == ["nvidia.com/gpu=1"]
    assert options["security_opt"] == ["label=disable"]
    assert "ipc_mode" not in options and "ulimits" not in options  # not rootless-settable


def test_cdi_names_are_told_from_device_paths():
    assert is_cdi_name("nvidia.com/gpu=all") and is_cdi_name("nvidia.com/gpu=GPU-12ab-34")
    assert not is_cdi_name("/dev/fuse") and not is_cdi_name("/dev/null:/dev/null:rwm")


def gpu_sandbox_kwargs(monkeypatch, gpus: str) -> dict:
    from executor.engine.sandbox import container_kwargs

    monkeypatch.setenv("ISOBENCH_ENGINE", "podman")
    spec = SandboxSpec(image="isobench/sandbox-demo:abc", budget_s=600, run_id="r", item="i",
                       phase="bench", gpus=GpuRequest.parse(gpus), network="none",
                       limits=SandboxLimits(cpus=1.5, cpuset="0-3", memory="2g", pids=256),
                       mounts=[Mount(host_path="/opt/agent", container_path="/agent")])
    return container_kwargs(spec, "isobench-r-i-bench-x")


def test_a_gpu_sandbox_becomes_a_libpod_spec_with_cdi_devices(monkeypatch):
    spec = libpod_create_spec(gpu_sandbox_kwargs(monkeypatch, "0,1"))
    assert spec["devices"] == [{"path": "nvidia.com/gpu=0"}, {"path": "nvidia.com/gpu=1"}]
    assert spec["selinux_opts"] == ["disable"]
    assert spec["resource_limits"] == {"pids": {"limit": 256},
                                       "memory": {"limit": 2 * 1024 ** 3},
                                       "cpu": {"cpus": "0-3", "period": 100_000,
                                               "quota": 150_000}}
    assert spec["netns"] == {"nsmode": "none"} and "networks" not in spec
    assert spec["remove"] is True and spec["init"] is True  # expires and is removed by itself
    assert spec["command"] == ["sleep", "600"] and spec["name"] == "isobench-r-i-bench-x"
    assert spec["labels"]["isobench.run_id"] == "r" and spec["labels"]["isobench.managed"] == "1"
    assert spec["env"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert spec["shm_size"] == 16 * 1024 ** 3
    assert spec["mounts"] == [{"type": "bind", "source": "/opt/agent", "destination": "/agent",
                               "options": ["rbind", "ro"]}]
    json.dumps(spec)  # what is posted


def test_libpod_spec_refuses_arguments_it_cannot_translate(monkeypatch):
    kwargs = gpu_sandbox_kwargs(monkeypatch, "all")
    with pytest.raises(ValueError, match="cap_add"):
        libpod_create_spec({**kwargs, "cap_add": ["SYS_ADMIN"]})
    named = libpod_create_spec({**kwargs, "network_mode": "isobench-net"})
    assert named["netns"] == {"nsmode": "bridge"} and named["networks"] == {"isobench-net": {}}
    assert "netns" not in libpod_create_spec({**kwargs, "network_mode": "bridge"})


def test_cdi_spec_kinds_from_yaml_and_json(tmp_path):
    assert cdi_spec_kinds(NVIDIA_SPEC_YAML) == {"nvidia.com/gpu"}
    assert cdi_spec_kinds(json.dumps({"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
                                      "devices": []})) == {"nvidia.com/gpu"}
    empty, other, nvidia = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (empty, other, nvidia):
        folder.mkdir()
    (other / "vendor.yaml").write_text("cdiVersion: 0.5.0\nkind: vendor.com/fpga\n")
    (nvidia / "nvidia.yaml").write_text(NVIDIA_SPEC_YAML)
    assert cdi_gpu_spec((tmp_path / "missing", empty, other)) is None
    assert cdi_gpu_spec((empty, other, nvidia)) == nvidia / "nvidia.yaml"


def test_podman_facts_from_libpod_info():
    facts = podman_facts(ROOTLESS_V1_INFO, "1.41")
    assert facts["engine"] == "podman" and facts["engine_version"] == "4.3.1"
    assert facts["rootless"] == "true" and facts["cgroup_version"] == "1"
    assert facts["cgroup_manager"] == "cgroupfs" and facts["storage_driver"] == "overlay"
    assert facts["data_root"].endswith("/containers/storage")
    assert facts["unenforced_limits"] == "cpus,cpuset,memory,pids"
    delegated = {**ROOTLESS_V1_INFO, "host": {**ROOTLESS_V1_INFO["host"], "cgroupVersion": "v2",
                                              "cgroupControllers": ["cpu", "memory", "pids"]}}
    assert podman_facts(delegated)["unenforced_limits"] == "cpuset"


def test_limits_beyond_reach_of_each_kind_of_engine():
    assert limits_beyond_reach(False, "1") == []
    assert limits_beyond_reach(True, "1") == ["cpus", "cpuset", "memory", "pids"]
    assert limits_beyond_reach(True, "2", ["cpu", "cpuset", "memory", "pids"]) == []
    assert limits_beyond_reach(True, "2", ["memory"]) == ["cpus", "cpuset", "pids"]


def test_docker_facts_use_the_same_keys():
    facts = docker_facts({"Version": "20.10.24", "ApiVersion": "1.41"},
                         {"Driver": "overlay2", "KernelVersion": "6.1", "CgroupDriver":
                          "cgroupfs", "CgroupVersion": "1", "SecurityOptions":
                          ["name=seccomp,profile=default"]})
    assert facts["engine"] == "docker" and facts["engine_version"] == "20.10.24"
    assert facts["rootless"] == "false" and facts["unenforced_limits"] == ""
    rootless = docker_facts({}, {"CgroupVersion": "1", "SecurityOptions": ["name=rootless"]})
    assert rootless["unenforced_limits"] == "cpus,cpuset,memory,pids"
    assert set(facts) <= set(podman_facts(ROOTLESS_V1_INFO))


def test_socket_lookup_order():
    assert socket_url({"ISOBENCH_PODMAN_SOCKET": "/run/x.sock", "CONTAINER_HOST":
                       "unix:///y"}, 1000) == ("unix:///run/x.sock", False)
    assert socket_url({"CONTAINER_HOST": "unix:///y.sock"}, 1000) == ("unix:///y.sock", False)
    assert socket_url({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000) == \
        ("unix:///run/user/1000/podman/podman.sock", True)
    assert socket_url({}, 1234) == ("unix:///run/user/1234/podman/podman.sock", True)
    assert socket_url({}, 0) == ("unix:///run/podman/podman.sock", True)


def test_host_facts_name_the_engine_and_read_older_records():
    old = HostFacts.model_validate({"hostname": "h", "cpu_model": "c", "cpu_count": 2,
                                    "kernel": "6.1", "docker_version": "20.10.24",
                                    "storage_driver": "overlay2"})
    assert old.engine == "docker" and old.engine_version == "20.10.24" and old.rootless is None
    same_docker = old.model_copy(update={"rootless": False})
    assert host_differences(old, same_docker) == []  # not recorded is not a difference
    podman = old.model_copy(update={"engine": "podman", "engine_version": "4.3.1",
                                    "storage_driver": "overlay", "rootless": True,
                                    "unenforced_limits": ["cpus", "cpuset", "memory", "pids"]})
    diffs = host_differences(old, podman)
    assert "engine: docker -> podman" in diffs
    assert "engine_version: 20.10.24 -> 4.3.1" in diffs
    assert any(d.startswith("unenforced_limits: [] -> ['cpus'") for d in diffs)
    assert HostFacts.model_validate(json.loads(podman.model_dump_json())) == podman


def test_engine_option_is_a_resources_option_and_checked():
    help_text = subprocess.run([sys.executable, "-m", "executor.cli", "run-commit", "--help"],
                               capture_output=True, text=True, cwd=REPO_ROOT, check=False).stdout
    resources = help_text.split("Resources:", 1)[1]
    assert "--engine [docker|podman]" in resources.split("\n\n")[0]
    bad = subprocess.run([sys.executable, "-m", "executor.cli", "doctor", "--engine", "lxc"],
                         capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert bad.returncode == 2 and "'lxc' is not one of 'docker', 'podman'" in bad.stderr


def test_doctor_on_podman_without_a_service_says_what_to_run(tmp_path):
    env = {"ISOBENCH_PODMAN_SOCKET": f"unix://{tmp_path}/none.sock", "PATH": "/usr/bin:/bin",
           "COLUMNS": "400"}  # the table unwrapped
    out = subprocess.run([sys.executable, "-m", "executor.cli", "doctor", "--engine", "podman",
                          "--state-dir", str(tmp_path)], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, check=False)
    assert out.returncode == 1, out.stderr
    text = " ".join(out.stdout.split() + out.stderr.split())
    assert "podman engine" in text and "fail" in text and "none.sock" in text
    assert "podman system service" in text
