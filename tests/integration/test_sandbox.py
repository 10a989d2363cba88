"""The sandbox against a real Docker engine: lifecycle, limits, timeouts, secrets, reaping."""

import subprocess
import sys

import docker
import pytest

from executor.runs.cancel import Cancel
from executor.runs.pipeline import stop_on_cancel
from executor.engine.sandbox import (LABEL_HOST, LABEL_MANAGED, LABEL_PHASE, LABEL_PID,
                                     LABEL_PID_START, Sandbox, controller_labels, reap_orphans)
from executor.core.resources import SandboxLimits, SandboxSpec
from tests.conftest import rid

pytestmark = pytest.mark.docker


def spec(image, **kw):
    return SandboxSpec(image=image.tag, budget_s=600, run_id=rid("test-run"), item="item",
                       phase=kw.pop("phase", "test"), **kw)


def test_container_is_labelled_limited_and_removed(docker_engine, base_image):
    with Sandbox(spec(base_image, limits=SandboxLimits(memory="256m", pids=128))) as box:
        attrs = docker_engine.containers.get(box.id).attrs
        labels = attrs["Config"]["Labels"]
        assert labels[LABEL_MANAGED] == "1" and labels[LABEL_PHASE] == "test"
        assert attrs["Config"]["Cmd"] == ["sleep", "600"]  # expires without the controller
        assert attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
        assert attrs["HostConfig"]["PidsLimit"] == 128
        container_id = box.id
    assert container_id not in {c.id for c in docker_engine.containers.list(all=True, ignore_removed=True)}


def test_exec_timeout_kills_the_whole_process_group(base_image):
    with Sandbox(spec(base_image)) as box:
        result = box.exec("sleep 300 & sleep 300; echo unreachable", timeout_s=2)
        assert result.timed_out and "unreachable" not in result.stdout
        left = box.exec("ps -eo args | grep -c '^sleep 300' || true", 10)
        assert left.stdout.strip() == "0"


def test_files_round_trip_and_output_capture(base_image, tmp_path):
    with Sandbox(spec(base_image)) as box:
        box.put_file("/tmp/x/data.bin", b"\x00\x01binary\xff")
        assert box.get_file("/tmp/x/data.bin") == b"\x00\x01binary\xff"
        with pytest.raises(FileNotFoundError):
            box.get_file("/tmp/x/missing")
        out = tmp_path / "out.txt"
        result = box.exec("echo to-stdout; echo to-stderr >&2; exit 3", 30, stdout_file=out)
        assert result.exit_code == 3 and not result.ok
        assert result.stdout.strip() == "to-stdout" and result.stderr.strip() == "to-stderr"
        assert out.read_text().strip() == "to-stdout"


def test_a_directory_comes_out_whole_and_links_stay_behind(base_image, tmp_path):
    """get_tree (OpenHands' conversation is copied out with it): nested files arrive with
    their bytes, a symlink (which could point anywhere on the host) does not."""
    with Sandbox(spec(base_image)) as box:
        box.check("mkdir -p /tmp/conv/a/events && printf one > /tmp/conv/a/base_state.json && "
                  "printf two > /tmp/conv/a/events/event-00001.json && "
                  "ln -s /etc/passwd /tmp/conv/a/link", 30)
        box.get_tree("/tmp/conv", tmp_path / "out")
        with pytest.raises(FileNotFoundError):
            box.get_tree("/tmp/nowhere", tmp_path / "none")
    got = {str(p.relative_to(tmp_path / "out")): p.read_text()
           for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert got == {"conv/a/base_state.json": "one", "conv/a/events/event-00001.json": "two"}
    assert not (tmp_path / "out" / "conv" / "a" / "link").exists()


def test_secrets_live_only_in_the_exec_and_are_redacted(docker_engine, base_image, tmp_path):
    secret = "sk-test-0123456789abcdefghijklmnop"
    with Sandbox(spec(base_image)) as box:
        out = tmp_path / "log.txt"
        result = box.exec("echo key=$OPENAI_API_KEY; env | grep OPENAI", 30,
                          secret_env={"OPENAI_API_KEY": secret}, stdout_file=out)
        assert secret not in result.stdout and secret not in out.read_text()
        assert "[REDACTED]" in result.stdout
        env = docker_engine.containers.get(box.id).attrs["Config"]["Env"]
        assert not any(secret in e for e in env)


def test_reaper_removes_containers_of_dead_controllers_only(docker_engine, base_image):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fake_dead = {**controller_labels(), LABEL_PID: str(dead.pid), LABEL_PID_START: "1"}
    orphan = docker_engine.containers.run(base_image.tag, ["sleep", "600"], detach=True,
                                          labels=fake_dead, auto_remove=True)
    with Sandbox(spec(base_image, phase="alive")) as alive:
        removed = reap_orphans(docker_engine)
        if orphan.name not in removed:
            # Another isobench process's reaper (a shared engine: the other test workers) got
            # it first; it may still be on its way out. The engine says when it is gone.
            try:
                orphan.wait(condition="removed", timeout=60)
            except docker.errors.NotFound:
                pass
        assert orphan.name in removed or orphan.id not in \
            {c.id for c in docker_engine.containers.list(all=True, ignore_removed=True)}
        assert alive.name not in removed
        assert docker_engine.containers.get(alive.id).status == "running"
        # A live controller's container that has exited is its own to read (why did it
        # exit? OOMKilled?) and to remove.
        exited = docker_engine.containers.run(base_image.tag, ["true"], detach=True,
                                              labels=controller_labels())
        try:
            exited.wait(timeout=60)
            assert exited.name not in reap_orphans(docker_engine)
            assert docker_engine.containers.get(exited.id).status == "exited"
        finally:
            exited.remove(force=True)
    foreign = docker_engine.containers.run(
        base_image.tag, ["sleep", "600"], detach=True, auto_remove=True,
        labels={**fake_dead, LABEL_HOST: "some-other-host"})
    try:
        assert foreign.name not in reap_orphans(docker_engine)
    finally:
        foreign.remove(force=True)


def test_a_cancelled_attempt_ends_only_once_its_sandboxes_are_removed_and_logged(
        docker_engine, base_image):
    """A Ray task deletes the attempt's dir right after run_commit returns: a remover still
    logging then would recreate it (a leaked node-local dir, seen in CI)."""
    box = Sandbox(spec(base_image, phase="agent"))
    box.start()
    lines: list[str] = []
    cancel = Cancel()
    try:
        with stop_on_cancel(cancel, rid("test-run"), "item", lines.append):
            cancel.set()  # as Ctrl-C does, then the attempt returns at once
        assert lines == ["cancelled: removed 1 sandbox(es)"]
        assert box.id not in {c.id for c in docker_engine.containers.list(all=True, ignore_removed=True)}
    finally:
        box.remove()
