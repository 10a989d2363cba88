import json
import subprocess

import pytest

from executor.parts import demo
from executor.core.errors import UserInputError
from executor.runs.resolve import resolve_job
from executor.core.resources import GpuRequest
from executor.core.task import load_plan, load_task_file


def test_task_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text("name = 'x'\n")
    with pytest.raises(UserInputError, match="bench_command"):
        load_task_file(bad)
    bad.write_text("name = [")
    with pytest.raises(UserInputError, match="not valid toml"):
        load_task_file(bad)
    with pytest.raises(UserInputError, match="cannot read"):
        load_task_file(tmp_path / "missing.toml")


def test_isobench_plan_format_is_accepted_and_malformed_rejected(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"repo": "r", "task_id": "t", "items": [
        {"item_id": "t-0000", "human": "015069b0", "pre": "", "pre_parent_index": 1}]}))
    assert load_plan(plan).items[0].human == "015069b0"
    plan.write_text(json.dumps({"repo": "r", "items": []}))
    with pytest.raises(UserInputError, match="task_id"):
        load_plan(plan)


def test_demo_sha_resolves_from_the_catalogue_with_its_parent(demo_repo):
    job = resolve_job(demo.DEMO_HUMAN_SHA[:8])
    assert job.human_sha == demo.DEMO_HUMAN_SHA
    assert job.base_sha == demo.DEMO_BASE_SHA
    assert job.task.name == "demo"


def test_any_commit_of_a_repo_with_a_task_file(demo_repo):
    job = resolve_job(demo.DEMO_LATEST_SHA[:10], repo=str(demo_repo))
    assert job.base_sha == demo.DEMO_HUMAN_SHA
    assert job.task.repo == str(demo_repo)


@pytest.mark.parametrize("sha,repo,message", [
    ("deadbeef", None, "not in a built-in catalogue"),
    (demo.DEMO_ROOT_SHA[:8], "DEMO", "root commit"),
    ("12345678", "DEMO", "unknown commit"),
    ("not-a-sha", "DEMO", "is not a commit sha"),
    ("abcd1234", "/", "is not a git repository"),
])
def test_bad_input_is_a_user_error(demo_repo, sha, repo, message):
    with pytest.raises(UserInputError, match=message):
        resolve_job(sha, repo=str(demo_repo) if repo == "DEMO" else repo)


def test_repo_without_task_file_needs_task(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "a"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "b"], check=True)
    with pytest.raises(UserInputError, match="give --task FILE"):
        resolve_job("HEAD"[:0] + subprocess.check_output(
            ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], text=True).strip(),
            repo=str(tmp_path))


def test_gpu_request_parsing():
    assert GpuRequest.parse("none").mode == "none"
    assert GpuRequest.parse("all").mode == "all"
    assert GpuRequest.parse("0,1").ids == ["0", "1"]
    with pytest.raises(ValueError):
        GpuRequest.parse("zero")


def test_gpu_sandboxes_request_devices_and_host_ipc():
    from executor.engine.sandbox import LABEL_MANAGED, container_kwargs
    from executor.core.resources import SandboxLimits, SandboxSpec

    base = dict(image="img", budget_s=60, run_id="r", item="i", phase="p")
    cpu = container_kwargs(SandboxSpec(**base, limits=SandboxLimits(cpus=1.5)), "n")
    assert "device_requests" not in cpu and cpu["shm_size"] == "2g"
    assert cpu["nano_cpus"] == 1_500_000_000 and cpu["labels"][LABEL_MANAGED] == "1"
    assert cpu["command"] == ["sleep", "60"] and cpu["auto_remove"] and cpu["init"]

    some = container_kwargs(SandboxSpec(**base, gpus=GpuRequest.parse("0,1")), "n")
    (request,) = some["device_requests"]
    assert request["DeviceIDs"] == ["0", "1"] and request["Capabilities"] == [["gpu"]]
    assert some["ipc_mode"] == "host" and "shm_size" not in some
    assert some["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"

    (every,) = container_kwargs(SandboxSpec(**base, gpus=GpuRequest.parse("all")),
                                "n")["device_requests"]
    assert every["Count"] == -1
