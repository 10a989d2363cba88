"""The Slurm backend's pure parts: what Slurm's tools print, what a job's end is named, what a
job may see of the controller's environment. (A real Slurm runs in
tests/integration/test_slurm_batches.py.)"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.core.errors import ErrorClass, classify_engine, classify_text
from executor.core.journal import (
    Attempt,
    Journal,
    RunStatus,
    load_journal,
    )
from executor.records.state import save_journal
from executor.runs.batch import slurm_job
from executor.runs.batch.slurm_backend import SlurmOptions, job_environment, sbatch_args
from executor.runs.batch.slurm_cli import (
    JobState,
    base_state,
    job_signature,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
)
from executor.runs.batch.slurm_job import AttemptSpec, JobFactory


def test_squeue_lines_become_job_states():
    jobs = parse_squeue("12|RUNNING|None|isonode\n13|PENDING|Resources|\n\n")
    assert jobs["12"].active and jobs["12"].node == "isonode"
    assert (jobs["13"].state, jobs["13"].reason, jobs["13"].active) == ("PENDING", "Resources",
                                                                        True)


def test_scontrol_and_sacct_give_state_exit_code_and_reason():
    job = parse_scontrol("JobId=7 JobName=x JobState=CANCELLED Reason=None Dependency=(null) "
                         "ExitCode=0:15 NodeList=isonode")
    assert (job.state, job.exit_code, job.active) == ("CANCELLED", "0:15", False)
    assert parse_scontrol("slurm_load_jobs error: Invalid job id specified") is None
    job = parse_sacct("7|NODE_FAIL|0:0|None|isonode\n7.batch|CANCELLED|0:15||isonode\n", "7")
    assert (job.state, job.exit_code) == ("NODE_FAIL", "0:0")
    assert base_state("CANCELLED by 0") == "CANCELLED" and base_state("") == "UNKNOWN"


@pytest.mark.parametrize("state,name", [
    ("CANCELLED", "slurm_job_cancelled"), ("TIMEOUT", "slurm_job_timeout"),
    ("PREEMPTED", "slurm_job_preempted"), ("NODE_FAIL", "slurm_node_lost"),
    ("OUT_OF_MEMORY", "slurm_job_oom"), ("FAILED", "slurm_job_failed"),
    ("BOOT_FAIL", "slurm_job_failed")])
def test_a_job_that_slurm_ended_is_an_infra_attempt_with_slurms_state(state, name):
    sig = job_signature(JobState(job_id="9", state=state, exit_code="1:0", reason="x"), "9")
    assert (sig.name, sig.error_class) == (name, ErrorClass.INFRA)
    assert sig.evidence == f"slurm job 9 {state}, exit 1:0, reason x"
    lost = job_signature(None, "9")
    assert (lost.name, lost.error_class) == ("slurm_job_lost", ErrorClass.INFRA)


def test_jobs_get_the_engine_and_isobench_settings_never_a_secret():
    environ = {"PATH": "/usr/bin", "DOCKER_HOST": "unix:///run/d.sock", "ISOBENCH_CACHE": "/c",
               "OPENAI_API_KEY": "sk-1", "MY_SERVER_KEY": "sk-2", "ISOBENCH_TOKEN": "t",
               "AWS_SECRET_ACCESS_KEY": "s", "HF_TOKEN": "h", "RANDOM": "r", "LANG": "C,x",
               "PLAIN": "p"}
    options = SlurmOptions(spool=Path("/s"), secret_env=["PLAIN"], export=["PLAIN", "RANDOM"])
    assert job_environment(options, environ) == {
        "PATH": "/usr/bin", "DOCKER_HOST": "unix:///run/d.sock", "ISOBENCH_CACHE": "/c",
        "RANDOM": "r"}  # a value with a comma cannot travel in --export


def test_sbatch_arguments():
    options = SlurmOptions(spool=Path("/s"), gres="gpu:2", partition="gpu", time_limit="1:00:00",
                           extra_args=["--account=perf"])
    args = sbatch_args(options, "isobench-r-demo-0000", Path("/s/r/demo-0000/attempt-1/o"))
    assert args[:4] == ["--job-name=isobench-r-demo-0000", "--output=/s/r/demo-0000/attempt-1/o",
                        "--no-requeue", "--chdir=/s/r/demo-0000/attempt-1"]
    assert args[4:] == ["--gres=gpu:2", "--partition=gpu", "--time=1:00:00", "--account=perf"]
    assert "--gres=gpu:1" not in sbatch_args(SlurmOptions(spool=Path("/s")), "n", Path("/o"))


def test_the_gateway_secret_is_only_in_the_spec_files_bytes(tmp_path):
    factory = JobFactory(run_item="m:f", gateway_url="http://h:1",
                         gateway_secret=SecretStr("lease-secret"))
    assert "lease-secret" not in factory.model_dump_json()
    from executor.core.task import PlanItem
    from executor.records.state import RunKey, StateLayout
    from executor.runs.batch.base import BatchContext

    spec = AttemptSpec(factory=factory, ctx=BatchContext(
        state=StateLayout(root=tmp_path), run=RunKey(task="t", agent="a", model="m",
                                                     run_id="r")),
        item=PlanItem(item_id="i", human="a" * 40), number=1, journal_json="{}")
    data = json.loads(spec.dump())
    assert data["factory"]["gateway_secret"] == "lease-secret"
    again = AttemptSpec.model_validate_json(spec.dump())
    assert again.factory.gateway_secret.get_secret_value() == "lease-secret"


def test_slurm_gpu_ids_are_the_nodes_numbering(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_GPUS", "2,3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert slurm_job.slurm_gpu_ids() == ["2", "3"]
    monkeypatch.delenv("SLURM_JOB_GPUS")
    monkeypatch.delenv("SLURM_STEP_GPUS", raising=False)
    assert slurm_job.slurm_gpu_ids() == []


ENGINE_TEXTS = {
    "ConnectionError: ('Connection aborted.', FileNotFoundError(2, 'No such file or "
    "directory'))": "engine_lost",
    "APIError: 409 Client Error for http+docker://localhost/v1.41/exec/x/start: Conflict "
    "(\"Container abc is not running\")": "engine_lost",
    "DockerUnavailable: cannot reach the Docker engine (Error while fetching server API "
    "version)": "docker_unreachable",
    "OSError: [Errno 28] No space left on device": "disk_full",
    "APIError: 500 Server Error: write /var/lib/docker/tmp/x: no space left on device":
        "disk_full",
}


@pytest.mark.parametrize("text,name", ENGINE_TEXTS.items())
def test_an_engine_failure_is_named_by_the_engine_rules_never_the_providers(text, name):
    sig = classify_engine(text, "docker")
    assert (sig.name, sig.error_class) == (name, ErrorClass.INFRA)
    # The same text read as a provider's output is what the old code called it.
    assert classify_engine("Error code: 429 - rate limited", "docker") is None


def test_the_old_reading_of_an_engine_outage_was_the_providers():
    old = classify_text("ConnectionError: ('Connection aborted.', RemoteDisconnected())", "x")
    assert old.name == "provider_unavailable"  # why engine errors have rules of their own


def test_a_journal_lands_in_place_when_the_disk_has_no_room_for_a_copy(tmp_path, monkeypatch):
    path = tmp_path / "journal.json"
    journal = Journal(task_id="t", item_id="i", run_id="r", agent="a", model="m",
                      commits={"base": "b", "human": "h"}, attempts=[Attempt(attempt=1)])
    save_journal(path, journal)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("executor.records.state.write_json_atomic", full)
    journal.attempts[0] = Attempt(attempt=1, status=RunStatus.INFRA_ERROR)
    save_journal(path, journal)
    assert load_journal(path).attempts[0].status == RunStatus.INFRA_ERROR
