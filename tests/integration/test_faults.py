"""Faults of our own machine, each provoked for real, each named by its own infrastructure
cause with a one-line message, retried where that helps, with nothing lost and no orphans.

- the Docker engine restarted mid-batch (a separate dockerd: restarting the shared one would
  break other test sessions): `engine_lost`, retried, every item succeeds;
- the state directory's disk full during run-commit (a small tmpfs): `disk_full`, exit 20,
  one line and no traceback, the journal closed, and the same run id succeeds once there is
  space again;
- a sandbox killed by its memory limit (--memory): `container_oom`, exit 20.

(Slurm's lost node is in test_slurm_batches.py, Ray's lost worker in test_batches.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from executor.core.journal import RunStatus, load_journal
from tests.conftest import rid, run_cli
from tests.integration.scripted_agent import (
    APPLY,
    BLOCK,
    agent_runs,
    agent_script,
    model_servers,
)
from tests.integration.separate_engine import separate_engine, shared_isobench_images
from tests.integration.test_batches import (
    controller,
    ended,
    journals,
    outcomes,
    run_args,
)

pytestmark = [pytest.mark.docker]

ITEMS = ["demo-0000", "demo-0001"]


@pytest.fixture(scope="module")
def engine(docker_engine, base_image):
    with separate_engine() as eng:
        eng.copy_images([base_image.tag, *shared_isobench_images(("isobench/sandbox-demo:",))])
        yield eng


@pytest.fixture
def plan(tmp_path, demo_repo) -> Path:
    path = tmp_path / "plan.json"
    out = run_cli("plan", "--demo", str(len(ITEMS)), "-o", str(path))
    assert out.returncode == 0, out.stderr
    return path


def test_engine_restarted_mid_batch_is_engine_lost_not_the_provider_and_is_retried(
        engine, plan, tmp_path):
    state = tmp_path / "state"
    victim = ITEMS[0]
    turns = {i: [BLOCK, APPLY] if i == victim else [APPLY] for i in ITEMS}
    with model_servers(turns) as servers:
        script = agent_script(tmp_path / "agent.sh", servers)
        proc = controller(run_args(plan, state, "eng", "--workers", "1", "--backoff", "2",
                                   "--infra-attempts", "3",
                                   "--agent", "script", "--agent-script", str(script),
                                   "--agent-network", "host"),
                          tmp_path / "eng.log", env=engine.env)
        assert servers[victim].wait_for_requests(1), (tmp_path / "eng.log").read_text()
        engine.restart()  # as `systemctl restart docker`: its containers are stopped
        code = ended(proc)
        runs = agent_runs(servers)
    log = (tmp_path / "eng.log").read_text()
    assert code == 0, log + engine.log_tail()
    done = journals(state, "eng")
    assert outcomes(done[victim])[0] == "engine_lost"
    for journal in done.values():  # the next item may start while the engine is still down
        names = outcomes(journal)
        assert names[-1] == "success" and names.count("success") == 1, names
        assert set(names[:-1]) <= {"engine_lost", "docker_unreachable"}  # never the provider
        for attempt in journal.attempts[:-1]:
            assert attempt.signature.error_class == "infra"
            assert "\n" not in attempt.signature.evidence
    assert runs[victim] == 2
    assert engine.managed_containers() == []


@pytest.fixture
def small_state(tmp_path) -> Path:
    """A 2 MiB tmpfs as the state dir (unmounted after)."""
    mount = tmp_path / "state"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


# The agent writes far more to its stdout (captured into the state dir) than the tmpfs holds.
FLOOD = "#!/bin/bash\nhead -c 8000000 /dev/zero | tr '\\0' x\n"
APPLY_SCRIPT = "#!/bin/bash\ngit apply <<'PATCH'\n{patch}PATCH\n"


def apply_script(path: Path) -> Path:
    """The same agent, now doing its work: the demo's reference patch."""
    from executor.parts.demo import REFERENCE_AGENT_PATCH

    path.write_text(APPLY_SCRIPT.format(patch=REFERENCE_AGENT_PATCH.read_text()))
    return path


def test_disk_full_in_the_state_dir_is_one_line_exit_20_and_the_run_id_resumes(
        engine, small_state, tmp_path):
    flood = tmp_path / "flood.sh"
    flood.write_text(FLOOD)
    args = ["run-commit", "a0476e8c", "--state-dir", str(small_state), "--run-id",
            rid("full"), "--skip-bench", "--max-attempts", "1"]
    out = run_cli(*args, "--agent", "script", "--agent-script", str(flood), env=engine.env)
    assert out.returncode == 20, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    [journal_path] = small_state.rglob("journal.json")
    [attempt] = load_journal(journal_path).attempts
    assert attempt.status == RunStatus.INFRA_ERROR  # closed, not left running
    assert attempt.signature.name == "disk_full"
    assert "No space left on device" in attempt.signature.evidence
    assert engine.managed_containers() == []

    for big in small_state.rglob("agent_stdout*"):  # space again: the user frees it
        big.unlink()
    again = run_cli(*args[:-2], "--agent", "script", "--agent-script",
                    str(apply_script(flood)), env=engine.env)
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = [a.status for a in load_journal(journal_path).attempts]
    assert statuses == [RunStatus.INFRA_ERROR, RunStatus.SUCCESS]  # the same run, resumed


def test_a_sandbox_killed_by_its_memory_limit_is_container_oom(engine, tmp_path):
    hog = tmp_path / "hog.sh"
    hog.write_text("#!/bin/bash\npython3 -c 'x = bytearray(400 * 2**20); print(len(x))'\n")
    state = tmp_path / "state"
    out = run_cli("run-commit", "a0476e8c", "--state-dir", str(state), "--skip-bench",
                  "--memory", "128m", "--max-attempts", "1", "--agent", "script",
                  "--agent-script", str(hog), env=engine.env)
    assert out.returncode == 20, out.stdout + out.stderr
    [journal_path] = state.rglob("journal.json")
    [attempt] = load_journal(journal_path).attempts
    assert (attempt.status, attempt.signature.name) == (RunStatus.INFRA_ERROR, "container_oom")
    assert attempt.signature.error_class == "infra"
    assert engine.managed_containers() == []


@pytest.fixture
def small_data_root(tmp_path, base_image):
    """A separate engine whose data root is a 2.5 GiB loop-mounted ext4, holding the run's
    images; the test fills the rest. (The shared engine's data root is never touched.)"""
    image, mount = tmp_path / "fs.img", tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "2500M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    made = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot loop-mount a filesystem here: {made.stderr.strip()}")
    try:
        with separate_engine(data_root=mount / "data") as eng:
            eng.copy_images([base_image.tag,
                             *shared_isobench_images(("isobench/sandbox-demo:",))])
            yield eng, mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Write a filler file until the filesystem refuses: it is full."""
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass
    return filler


def test_disk_full_in_the_engines_data_root_is_disk_full_and_leaves_no_container(
        small_data_root, tmp_path):
    eng, mount = small_data_root
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/bash\nhead -c 50000000 /dev/zero > /tmp/big\n")
    filler = fill(mount)
    state = tmp_path / "state"
    args = ["run-commit", "a0476e8c", "--state-dir", str(state), "--run-id", rid("root"),
            "--skip-bench", "--max-attempts", "1"]
    out = run_cli(*args, "--agent", "script", "--agent-script", str(script), env=eng.env)
    assert out.returncode == 20, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    [journal_path] = state.rglob("journal.json")
    [attempt] = load_journal(journal_path).attempts
    assert (attempt.status, attempt.signature.name) == (RunStatus.INFRA_ERROR, "disk_full")
    assert eng.managed_containers() == []

    filler.unlink()  # space again
    again = run_cli(*args[:-2], "--agent", "script", "--agent-script",
                    str(apply_script(script)), env=eng.env)
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = [a.status for a in load_journal(journal_path).attempts]
    assert statuses == [RunStatus.INFRA_ERROR, RunStatus.SUCCESS]
