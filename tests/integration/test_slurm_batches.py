"""`isobench run --backend slurm` on a real Slurm (Debian's slurm-wlm and munge, one node on
localhost, started by the fixture): plans of demo items through the real pipeline in Slurm jobs
(real Docker, the script agent talking to scripted model servers over real HTTP). The benchmark
phase is skipped: timing is not what these tests check.

Synchronisation is by events (a model server answering a request) or by what Slurm itself
reports; timeouts only turn a hang into a failure.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from executor.core.journal import RunStatus
from executor.engine.sandbox import LABEL_ITEM, LABEL_PID
from executor.records.state import MODEL_CALLS_NAME
from tests.conftest import rid, run_cli
from tests.integration.scripted_agent import (
    APPLY,
    BLOCK,
    agent_runs,
    agent_script,
    model_servers,
)
from tests.integration.slurm_cluster import slurm_cluster
from tests.integration.test_batches import (
    controller,
    ended,
    journals,
    labelled,
    outcomes,
    run_args,
    script_args,
    status_of,
)

pytestmark = [pytest.mark.docker, pytest.mark.slurm]

ITEMS = [f"demo-{n:04d}" for n in range(4)]
POLL = ["--slurm-poll", "0.5"]
STATE_GUARD_S = 120


@pytest.fixture(scope="module")
def slurm():
    with slurm_cluster() as cluster:
        yield cluster


@pytest.fixture
def plan(tmp_path, demo_repo) -> Path:
    path = tmp_path / "plan.json"
    out = run_cli("plan", "--demo", str(len(ITEMS)), "-o", str(path))
    assert out.returncode == 0, out.stderr
    return path


def slurm_args(plan: Path, state: Path, run_id: str, *extra: str) -> list[str]:
    return run_args(plan, state, run_id, "--backend", "slurm", *POLL, *extra)


def wait_job_state(slurm, name: str, wanted: set[str]) -> dict[str, str]:
    """Until a job named `name` is in one of `wanted` (Slurm's word, polled with a guard)."""
    deadline = time.monotonic() + STATE_GUARD_S
    while time.monotonic() < deadline:
        jobs = slurm.jobs(name)
        if any(state in wanted for state in jobs.values()):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"{name}: no job {wanted}: {slurm.jobs(name)}\n{slurm.logs()}")


def job_name(run_id: str, item: str) -> str:
    return f"isobench-{rid(run_id)}-{item}"


def test_slurm_batch_runs_the_plan_on_gres_gpus_and_nodes_never_hold_the_key(
        docker_engine, base_image, plan, tmp_path, slurm):
    """Four items as Slurm jobs, two at a time on the node's two --gres GPUs, the agent's
    calls leased from the controller's gateway: every item succeeds, its files come back, the
    devices are Slurm's, and the key is nowhere under the state dir (the spool included)."""
    from pydantic import SecretStr

    from executor.testing.llm_script import LlmScript
    from executor.testing.scripted_llm import ScriptedLLM
    from tests.integration.gateway_agent import APPLY as APPLY_ONCE
    from tests.integration.gateway_agent import gateway_agent_script

    state, key = tmp_path / "state", "sk-isobench-slurm-gateway-7c41d09e2f6a"
    script = LlmScript(turns=[APPLY_ONCE] * len(ITEMS), api_key=SecretStr(key))
    with ScriptedLLM(script) as llm:
        out = run_cli(*slurm_args(plan, state, "sl-gw", "--workers", "2", "--agent", "script",
                                  "--agent-script", str(gateway_agent_script(
                                      tmp_path / "agent.sh", one_call=True)),
                                  "--agent-network", "host", "--base-url", llm.base_url,
                                  "--api-key-env", "SLURM_GW_KEY"),
                      env={**slurm.env, "SLURM_GW_KEY": key})
    assert out.returncode == 0, out.stderr[-3000:] + slurm.logs()
    assert f"{len(ITEMS)} succeeded, 0 failed, 0 remaining" in out.stderr
    done = journals(state, "sl-gw")
    assert sorted(done) == ITEMS
    attempts = [j.attempts[-1] for j in done.values()]
    assert [a.status for a in attempts] == [RunStatus.SUCCESS] * len(ITEMS)
    assert all(len(a.gpu_ids) == 1 for a in attempts)
    assert {a.gpu_ids[0] for a in attempts} <= {"0", "1"}  # Slurm's gres, not ours
    assert all(a.controller_pid != os.getpid() for a in attempts)  # ran in Slurm jobs
    assert [a.model_traffic.calls for a in attempts] == [1] * len(ITEMS)
    run_dir = state / "runs/demo/script/none" / rid("sl-gw")
    for item in ITEMS:
        attempt_dir = run_dir / item / "attempt-1"
        assert (attempt_dir / MODEL_CALLS_NAME).is_file()
        assert "agent: finished" in (attempt_dir / "controller.log").read_text()
        assert (attempt_dir / "slurm.out").is_file()
        assert (run_dir / item / "model_patch.diff").stat().st_size
    leaks = [p for p in state.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaks == []
    assert list((state / ".slurm" / rid("sl-gw")).rglob("spec.json")) == []  # specs removed
    report = status_of(state, "sl-gw")
    assert (report["succeeded"], report["failed"], report["attempts"]) == (len(ITEMS), 0,
                                                                           len(ITEMS))
    assert labelled(docker_engine, "sl-gw") == []


def test_slurm_controller_killed_mid_batch_then_resumed_every_item_succeeds_once(
        docker_engine, base_image, plan, tmp_path, slurm):
    """kill -9 of the controller while two jobs' agents block: the jobs run on without it.
    --resume, holding each item's lock, scancels the dead controller's jobs (their sandboxes
    go with them), closes their attempts as controller_lost, and runs them again."""
    state = tmp_path / "state"
    gated = ["demo-0001", "demo-0003"]
    turns = {i: [BLOCK, APPLY] if i in gated else [APPLY] for i in ITEMS}
    args = slurm_args(plan, state, "sl-k9", "--workers", "2", "--slurm-gres", "none")
    with model_servers(turns) as servers:
        script = agent_script(tmp_path / "agent.sh", servers)
        first = controller(args + script_args(script), tmp_path / "first.log", env=slurm.env)
        for item in gated:
            assert servers[item].wait_for_requests(1), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        assert ended(first) == -signal.SIGKILL
        for item in gated:  # the dead controller's jobs still run
            assert "RUNNING" in slurm.jobs(job_name("sl-k9", item)).values()
        before = journals(state, "sl-k9")
        finished = {i for i, j in before.items() if j.status == RunStatus.SUCCESS}
        assert finished == {"demo-0000", "demo-0002"}

        resumed = run_cli(*args, "--resume", *script_args(script), env=slurm.env)
        runs = agent_runs(servers)
    assert resumed.returncode == 0, resumed.stderr[-3000:] + slurm.logs()
    after = journals(state, "sl-k9")
    assert sorted(after) == ITEMS
    for journal in after.values():
        assert [a.status for a in journal.attempts].count(RunStatus.SUCCESS) == 1
    for item in gated:
        assert outcomes(after[item]) == ["controller_lost", "success"]
        assert set(slurm.jobs(job_name("sl-k9", item)).values()) <= {"CANCELLED", "COMPLETED"}
    for item in finished:
        assert after[item].attempts == before[item].attempts
    assert runs == {i: 2 if i in gated else 1 for i in ITEMS}
    assert labelled(docker_engine, "sl-k9") == []


def test_a_scancelled_job_is_an_infra_attempt_with_slurms_state_and_is_retried(
        docker_engine, base_image, plan, tmp_path, slurm):
    state = tmp_path / "state"
    victim = "demo-0002"
    turns = {i: [BLOCK, APPLY] if i == victim else [APPLY] for i in ITEMS}
    with model_servers(turns) as servers:
        script = agent_script(tmp_path / "agent.sh", servers)
        proc = controller(slurm_args(plan, state, "sl-cancel", "--workers", "2",
                                     "--slurm-gres", "none", *script_args(script)),
                          tmp_path / "cancel.log", env=slurm.env)
        assert servers[victim].wait_for_requests(1), (tmp_path / "cancel.log").read_text()
        [job] = [j for j, s in slurm.jobs(job_name("sl-cancel", victim)).items()
                 if s == "RUNNING"]
        slurm.tool("scancel", job)
        code = ended(proc)
        runs = agent_runs(servers)
    log = (tmp_path / "cancel.log").read_text()
    assert code == 0, log + slurm.logs()
    done = journals(state, "sl-cancel")
    assert outcomes(done[victim]) == ["slurm_job_cancelled", "success"]
    first = done[victim].attempts[0]
    assert (first.status, first.signature.error_class) == (RunStatus.INFRA_ERROR, "infra")
    assert first.signature.evidence.startswith(f"slurm job {job} CANCELLED")
    assert runs == {i: 2 if i == victim else 1 for i in ITEMS}
    assert labelled(docker_engine, "sl-cancel") == []  # the job removed its sandbox


def test_a_lost_node_is_an_infra_attempt_named_slurm_node_lost_and_is_retried(
        docker_engine, base_image, plan, tmp_path, slurm):
    """The node dies under a running job (slurmd, the job's slurmstepd and the job's process
    killed -9): Slurm marks the job NODE_FAIL once the node stops answering; when the node is
    back, the attempt is retried there and the dead job's sandbox is reaped."""
    state = tmp_path / "state"
    victim = "demo-0001"
    turns = {i: [BLOCK, APPLY] if i == victim else [APPLY] for i in ITEMS}
    with model_servers(turns) as servers:
        script = agent_script(tmp_path / "agent.sh", servers)
        proc = controller(slurm_args(plan, state, "sl-node", "--workers", "1",
                                     "--slurm-gres", "none", *script_args(script)),
                          tmp_path / "node.log", env=slurm.env)
        assert servers[victim].wait_for_requests(1), (tmp_path / "node.log").read_text()
        [sandbox] = labelled(docker_engine, "sl-node", **{LABEL_ITEM: victim})
        job_process = int(sandbox.labels[LABEL_PID])  # the job's python
        stepd = _parent(job_process)
        slurm.procs["slurmd"].kill()
        slurm.procs["slurmd"].wait()
        for pid in (stepd, job_process):
            os.kill(pid, signal.SIGKILL)
        wait_job_state(slurm, job_name("sl-node", victim), {"NODE_FAIL"})
        slurm.start_slurmd()
        code = ended(proc)
    log = (tmp_path / "node.log").read_text()
    assert code == 0, log + slurm.logs()
    done = journals(state, "sl-node")
    assert outcomes(done[victim]) == ["slurm_node_lost", "success"]
    assert "NODE_FAIL" in done[victim].attempts[0].signature.evidence
    assert labelled(docker_engine, "sl-node") == []  # the dead job's sandbox was reaped


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_slurm_jobs_use_the_engine_the_run_chose_podman(base_image, plan, tmp_path, slurm):
    """--engine podman on the controller: every job runs its sandboxes on rootless podman
    (the engine's name and socket travel as ISOBENCH_* variables; nothing else of the
    controller's environment does)."""
    import json
    import subprocess

    from executor.engine.podman import SOCKET_ENV
    from tests.conftest import REPO_ROOT

    ready = subprocess.run([str(REPO_ROOT / "scripts" / "ensure-podman.sh")],
                           capture_output=True, text=True, timeout=900, check=False)
    if ready.returncode != 0:
        if os.environ.get("ISOBENCH_SKIP_DOCKER") == "1":
            pytest.skip(f"no rootless podman here: {ready.stderr.strip()[-300:]}")
        pytest.fail(f"scripts/ensure-podman.sh failed: {ready.stderr.strip()[-800:]}")
    socket = ready.stdout.strip().splitlines()[-1]
    state = tmp_path / "state"
    out = run_cli(*run_args(plan, state, "sl-podman", "--backend", "slurm", *POLL,
                            "--slurm-gres", "none", "--workers", "2", "--engine", "podman"),
                  env={**slurm.env, SOCKET_ENV: socket, "ISOBENCH_ENGINE": "docker"})
    assert out.returncode == 0, out.stderr[-3000:] + slurm.logs()
    done = journals(state, "sl-podman", agent="replay")
    assert sorted(done) == ITEMS
    assert all(j.attempts[-1].status == RunStatus.SUCCESS for j in done.values())
    import docker

    on_podman = docker.DockerClient(base_url=socket)
    for item in ITEMS:
        manifest = (state / "runs/demo/replay/none" / rid("sl-podman") / item / "manifest.json")
        assert '"engine": "podman"' in json.dumps(json.loads(manifest.read_text()))
        base_id = done[item].attempts[-1].images["base"]  # the sandbox ran from podman's image
        assert on_podman.images.get(base_id).id == base_id
