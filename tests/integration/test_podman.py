"""Rootless podman as the engine, for real: scripts/ensure-podman.sh's user and API service.

The sandbox basics (labels, limits or the line naming them, removal, timeouts, reaping), CDI
device injection through podman's own create (a probe CDI spec: no GPU here), and the demo's
`isobench run-commit --engine podman` end to end, as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from executor.core.resources import SandboxLimits, SandboxSpec
from executor.engine import sandbox as sandbox_module
from executor.engine.chosen import ENGINE_ENV, use_engine
from executor.engine.podman import SOCKET_ENV
from executor.engine.sandbox import (
    LABEL_HOST,
    LABEL_MANAGED,
    LABEL_PHASE,
    LABEL_PID,
    LABEL_PID_START,
    LABEL_RUN,
    Sandbox,
    controller_labels,
    reap_orphans,
)
from executor.parts import demo
from tests.conftest import REPO_ROOT, rid, run_cli

pytestmark = pytest.mark.docker  # a real engine: with the integration tests


@pytest.fixture(scope="module")
def podman_socket() -> str:
    """The rootless service's socket, from scripts/ensure-podman.sh (installs and starts what
    is missing; idempotent)."""
    proc = subprocess.run([str(REPO_ROOT / "scripts" / "ensure-podman.sh")],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        if os.environ.get("ISOBENCH_SKIP_DOCKER") == "1":
            pytest.skip(f"no rootless podman here: {proc.stderr.strip()[-300:]}")
        pytest.fail(f"scripts/ensure-podman.sh failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def podman(podman_socket):
    """This process on podman for the module's tests, then back on what it used before."""
    saved = {name: os.environ.get(name) for name in (SOCKET_ENV, ENGINE_ENV)}
    os.environ[SOCKET_ENV] = podman_socket
    engine = use_engine("podman")
    yield engine
    use_engine(saved[ENGINE_ENV] or "docker")
    for name, value in saved.items():  # as before, the variable unset if it was
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def podman_base(podman):
    """The offline Debian base on podman (debootstrap + import on first use, like Docker's)."""
    from executor.engine.images import BaseImageRecipe, ensure_base_image

    return ensure_base_image(BaseImageRecipe())


def spec(image, **kw) -> SandboxSpec:
    return SandboxSpec(image=image.tag, budget_s=600, run_id=rid("podman-run"), item="item",
                       phase=kw.pop("phase", "test"), **kw)


def test_the_service_is_rootless_podman_and_says_so(podman):
    facts = podman.facts()
    assert facts["engine"] == "podman" and facts["rootless"] == "true"
    assert facts["engine_version"].split(".")[0] >= "4"
    assert Path(podman.data_root()).is_dir()


def test_sandbox_is_labelled_limited_or_says_which_limits_it_cannot(podman, podman_base,
                                                                    capsys):
    limits = SandboxLimits(memory="256m", pids=128)
    sandbox_module._warned_limits.clear()  # said once per process: this test hears it
    with Sandbox(spec(podman_base, limits=limits)) as box:
        attrs = podman.client().containers.get(box.id).attrs
        labels = attrs["Config"]["Labels"]
        assert labels[LABEL_MANAGED] == "1" and labels[LABEL_PHASE] == "test"
        unenforced = podman.unenforced_limits()
        if podman.facts()["cgroup_version"] == "1":  # this CI host: podman ignores them all
            assert unenforced == ["cpus", "cpuset", "memory", "pids"]
        else:
            memory_max = box.check("cat /sys/fs/cgroup/memory.max", 30).stdout.strip()
            pids_max = box.check("cat /sys/fs/cgroup/pids.max", 30).stdout.strip()
            assert ("memory" in unenforced) == (memory_max == "max")
            assert ("pids" in unenforced) == (pids_max == "max")
            if "memory" not in unenforced:
                assert memory_max == str(256 * 1024 * 1024) and pids_max == "128"
        container_id = box.id
    assert container_id not in {c.id for c in podman.client().containers.list(all=True, ignore_removed=True)}
    if unenforced:
        line = [x for x in capsys.readouterr().err.splitlines() if "cannot enforce" in x]
        assert line and "memory" in line[-1] and "pids" in line[-1]


def test_exec_streams_exit_codes_timeouts_and_files(podman, podman_base, tmp_path):
    with Sandbox(spec(podman_base)) as box:
        result = box.exec("echo to-stdout; echo to-stderr >&2; exit 3", 30)
        assert result.exit_code == 3
        assert result.stdout.strip() == "to-stdout" and result.stderr.strip() == "to-stderr"
        timed = box.exec("sleep 300 & sleep 300; echo unreachable", timeout_s=2)
        assert timed.timed_out and "unreachable" not in timed.stdout
        assert box.exec("ps -eo args | grep -c '^sleep 300' || true", 10).stdout.strip() == "0"
        box.put_file("/tmp/x/data.bin", b"\x00\x01binary\xff")
        assert box.get_file("/tmp/x/data.bin") == b"\x00\x01binary\xff"
        assert ("A", "/tmp/x/data.bin") in box.changes()
        assert box.cpu_usage_s() is None or box.cpu_usage_s() >= 0  # None: not readable here


def test_reaper_removes_containers_of_dead_controllers_only(podman, podman_base):
    client = podman.client()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fake_dead = {**controller_labels(), LABEL_PID: str(dead.pid), LABEL_PID_START: "1",
                 LABEL_RUN: rid("podman-reap")}
    orphan = client.containers.run(podman_base.tag, ["sleep", "600"], detach=True,
                                   labels=fake_dead, auto_remove=True)
    foreign = client.containers.run(podman_base.tag, ["sleep", "600"], detach=True,
                                    auto_remove=True,
                                    labels={**fake_dead, LABEL_HOST: "some-other-host"})
    try:
        with Sandbox(spec(podman_base, phase="alive")) as alive:
            removed = reap_orphans(client)
            assert orphan.name in removed or orphan.id not in \
                {c.id for c in client.containers.list(all=True, ignore_removed=True)}
            assert alive.name not in removed and foreign.name not in removed
            assert client.containers.get(alive.id).status == "running"
    finally:
        foreign.remove(force=True)


def test_cdi_devices_are_injected_through_podmans_own_create(podman, podman_base):
    """The GPU path without a GPU: a probe CDI spec (an env var and /dev/null as its device
    node) requested by name, as `nvidia.com/gpu=0` is on a GPU host."""
    kind = f"isobench.test/probe{uuid.uuid4().hex[:6]}"
    spec_file = Path("/etc/cdi") / f"{kind.replace('/', '-')}.yaml"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(f"cdiVersion: 0.5.0\nkind: {kind}\ndevices:\n- name: one\n"
                         f"  containerEdits:\n    env: [ISOBENCH_CDI_PROBE=one]\n"
                         f"    deviceNodes:\n    - path: /dev/null\n")
    client = podman.client()
    try:
        container = podman.run_container(client, {
            "image": podman_base.tag, "command": ["sleep", "60"], "detach": True,
            "labels": {**controller_labels(), LABEL_RUN: rid("podman-cdi")},
            "auto_remove": True, "init": True, "network_mode": "none",
            "devices": [f"{kind}=one"], "security_opt": ["label=disable"]})
        try:
            environ = container.exec_run(["cat", "/proc/1/environ"]).output.split(b"\0")
            assert b"ISOBENCH_CDI_PROBE=one" in environ
        finally:
            container.remove(force=True)
        with pytest.raises(Exception, match="unresolvable CDI devices|no such|not found"):
            podman.run_container(client, {"image": podman_base.tag, "command": ["true"],
                                          "devices": [f"{kind}=missing"], "auto_remove": True})
    finally:
        spec_file.unlink(missing_ok=True)


@pytest.mark.slow
def test_podman_run_commit_of_the_demo(podman, podman_socket, tmp_path):
    state = tmp_path / "state"
    env = {SOCKET_ENV: podman_socket, ENGINE_ENV: "docker"}  # --engine wins over the variable
    first = run_cli("run-commit", demo.DEMO_HUMAN_SHA[:8], "--engine", "podman", "--state-dir",
                    str(state), "--run-id", rid("podman-e2e"), "--trials", "3", "--warmup", "0",
                    env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    item = state / "runs" / "demo" / "replay" / "none" / rid("podman-e2e") / "demo-0000"
    journal = json.loads((item / "journal.json").read_text())
    assert journal["attempts"][-1]["status"] == "success"
    assert {p["name"] for p in journal["attempts"][-1]["phases"]} >= \
        {"images", "agent", "patch", "bench", "leak_check"}
    results = json.loads((item / "results.json").read_text())
    assert results["host"]["engine"] == "podman" and results["host"]["rootless"] is True
    assert results["gate"]["passed"]
    options = json.loads((item / "manifest.json").read_text())
    assert '"engine": "podman"' in json.dumps(options)
    client = podman.client()
    assert client.containers.list(all=True, ignore_removed=True, filters={"label": [
        LABEL_MANAGED, f"{LABEL_RUN}={rid('podman-e2e')}"]}) == []
    # the sandbox images carry the recipes' content tags (the same on Docker: the tag hashes
    # the recipe, and isobench's base enters it by its recipe, not by its engine-local id)
    tags = {word for word in first.stderr.split() if word.startswith("isobench/sandbox-demo:")}
    images = journal["attempts"][-1]["images"]
    assert {client.images.get(tag).id for tag in tags} == {images["base"], images["human"]}
    if "pids" in results["host"]["unenforced_limits"]:  # --pids is always set (8192)
        assert "podman cannot enforce the pids limit" in first.stderr


def test_an_image_archive_round_trips_and_names_its_tags(podman, podman_base, tmp_path):
    """podman's save names images under the registry it assumed, and its load answers every
    image of an archive on one line: isobench still gets its own tags back."""
    from executor.engine.image_store import load_image_archive, save_images

    archive = tmp_path / "images.tar"
    save_images([podman_base.tag], archive)
    assert load_image_archive(archive) == [podman_base.tag]
    assert podman.client().images.get(podman_base.tag).id == podman_base.id
