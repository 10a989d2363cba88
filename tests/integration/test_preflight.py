"""A host that lacks what a run needs is told so before anything starts: exit 2, one line that
says what to do, and no run record (`isobench run-commit`, `bench` and `run`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from executor.core.errors import EnvironmentNotReady
from executor.parts import demo
from tests.conftest import run_cli

pytestmark = [pytest.mark.docker]

# A Debian mirror no base image was built from: the base would have to be built now.
UNBUILT_BASE = {"ISOBENCH_DEBIAN_MIRROR": "http://mirror.invalid/debian"}
NO_SBIN = {"PATH": "/usr/local/bin:/usr/bin:/bin"}  # debootstrap lives in /usr/sbin


def fake_python(prefix: Path, body: str) -> Path:
    """An install prefix whose bin/python3 is a script (a real interpreter would be one too)."""
    (prefix / "bin").mkdir(parents=True)
    exe = prefix / "bin" / "python3"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    return prefix


def assert_refused(out, state: Path, *needles: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert not state.exists() or not any(state.iterdir()), sorted(state.rglob("*"))


def test_no_debootstrap_for_an_unbuilt_base_is_exit_2_and_no_record(docker_engine, tmp_path):
    state = tmp_path / "state"
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--state-dir", str(state),
                  env={**UNBUILT_BASE, **NO_SBIN})
    assert_refused(out, state, "debootstrap is not installed", "ensure-docker.sh")


def test_gpus_on_a_host_without_them_is_exit_2_and_no_record(docker_engine, tmp_path):
    state = tmp_path / "state"
    for command in ("run-commit", "bench"):
        out = run_cli(command, demo.DEMO_HUMAN_SHA, "--state-dir", str(state), "--gpus", "7")
        assert_refused(out, state, "--gpus 7", "no GPU")


def test_gpu_passthrough_in_a_batch_without_gpus_is_exit_2_and_no_record(docker_engine,
                                                                        tmp_path):
    plan, state = tmp_path / "plan.json", tmp_path / "state"
    assert run_cli("plan", "--demo", "2", "-o", str(plan)).returncode == 0
    out = run_cli("run", str(plan), "--state-dir", str(state), "--gpus", "0,1",
                  "--gpu-passthrough", "--no-progress")
    assert_refused(out, state, "--gpus 0", "no GPU")


@pytest.mark.parametrize("python,needle", [
    (None, "needs a Python >= 3.12"),
    ("empty", "no bin/python3 there"),
    ("old", "Python 3.9 does not fit trae"),
    ("broken", "does not run"),
])
def test_trae_without_a_usable_python_is_exit_2_and_no_record(docker_engine, tmp_path, python,
                                                              needle):
    state = tmp_path / "state"
    prefix = tmp_path / "py"
    if python == "empty":
        prefix.mkdir()
    elif python == "old":
        fake_python(prefix, "echo 3 9")
    elif python == "broken":
        fake_python(prefix, "exit 3")
    extra = ["--agent-python", str(prefix)] if python else []
    args = ["--agent", "trae", "--model", "m", "--state-dir", str(state), *extra]
    env = {"OPENAI_API_KEY": "sk-isobench-test-000000000000"}
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, *args, env=env)
    assert_refused(out, state, needle, "--agent-python")
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--demo", "1", "-o", str(plan)).returncode == 0
    out = run_cli("run", str(plan), "--no-progress", *args, env=env)
    assert_refused(out, state, needle, "--agent-python")


def test_a_python_that_reports_3_12_passes_the_check(tmp_path):
    from executor.runs.agent_python import check_agent_python

    check_agent_python("trae", fake_python(tmp_path / "py", "echo 3 12"))  # raises if refused
    check_agent_python("openhands", tmp_path / "py")
    with pytest.raises(EnvironmentNotReady, match="3.13 does not fit openhands"):
        check_agent_python("openhands", fake_python(tmp_path / "py13", "echo 3 13"))
    check_agent_python("trae", tmp_path / "py13")


def test_a_refusal_names_the_pythons_found_on_this_host(tmp_path, monkeypatch):
    from executor.runs.agent_python import check_agent_python

    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    fake_python(tmp_path / "pyenv" / "versions" / "3.12.7", "echo 3 12")
    fake_python(tmp_path / "pyenv" / "versions" / "3.11.2", "echo 3 11")
    with pytest.raises(EnvironmentNotReady) as refused:
        check_agent_python("openhands", None)
    message = str(refused.value)
    assert "needs a Python 3.12" in message and "3.12.7" in message and "3.11.2" not in message


def test_doctor_fails_when_the_base_image_cannot_be_built(docker_engine, tmp_path):
    out = run_cli("doctor", "--state-dir", str(tmp_path), env={**UNBUILT_BASE, **NO_SBIN})
    assert out.returncode == 1, out.stderr[-2000:]
    assert "base image" in out.stderr and "fail" in out.stderr


def test_doctor_fails_without_an_engine(tmp_path):
    out = run_cli("doctor", "--state-dir", str(tmp_path),
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert out.returncode == 1 and "ensure-docker.sh" in out.stderr


@pytest.mark.parametrize("layout,needle", [
    ("missing", "does not exist"),
    ("folder_around_a_mirror", "is not a git repository"),
    ("repo_without_the_revision", "is not in"),
])
def test_a_trae_source_without_its_revision_is_exit_2_and_no_record(docker_engine, tmp_path,
                                                                    layout, needle):
    """Found before anything is written, not as each item's infrastructure failure."""
    source = tmp_path / "trae-src"
    if layout == "folder_around_a_mirror":  # what `fetch` leaves: the bare repository inside
        subprocess.run(["git", "init", "-q", "--bare", str(source / "repo")], check=True)
    elif layout == "repo_without_the_revision":
        subprocess.run(["git", "init", "-q", str(source)], check=True)
        subprocess.run(["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t",
                        "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    state = tmp_path / "state"
    args = ["--agent", "trae", "--model", "m", "--state-dir", str(state), "--agent-python",
            str(fake_python(tmp_path / "py", "echo 3 12")), "--agent-source", str(source)]
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, *args,
                  env={"OPENAI_API_KEY": "sk-isobench-test-000000000000"})
    assert_refused(out, state, needle, str(source))
    if layout == "folder_around_a_mirror":
        assert str(source / "repo") in out.stderr
