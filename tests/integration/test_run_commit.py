"""`isobench run-commit` end to end on the embedded demo, as a user runs it (subprocess)."""

import json
import os
import signal
import subprocess
import sys

import pytest

from executor.parts import demo
from executor.engine.sandbox import LABEL_MANAGED, LABEL_RUN
from tests.conftest import REPO_ROOT, rid, run_cli

pytestmark = [pytest.mark.docker]


def item_dir(state, agent="replay", run_id=None):
    runs = state / "runs" / "demo" / agent / "none"
    dirs = sorted(runs.iterdir()) if run_id is None else [runs / rid(run_id)]
    return dirs[-1] / "demo-0000"


def sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def labelled(docker_engine, run_id):
    return docker_engine.containers.list(all=True, ignore_removed=True, filters={"label": [
        LABEL_MANAGED, f"{LABEL_RUN}={rid(run_id)}"]})


@pytest.mark.slow
def test_demo_end_to_end_then_nothing_rebuilt(docker_engine, base_image, tmp_path):
    state = tmp_path / "state"
    first = run_cli("run-commit", demo.DEMO_HUMAN_SHA[:8], "--state-dir", str(state),
                    "--run-id", rid("e2e-1"), "--trials", "3", "--warmup", "0")
    assert first.returncode == 0, first.stderr[-2000:]
    item = item_dir(state, run_id="e2e-1")
    journal = json.loads((item / "journal.json").read_text())
    assert journal["attempts"][-1]["status"] == "success"
    assert {p["name"] for p in journal["attempts"][-1]["phases"]} >= \
        {"images", "agent", "patch", "bench", "leak_check"}
    assert (item / "model_patch.diff").read_bytes().strip()
    manifest = json.loads((item / "manifest.json").read_text())
    assert manifest["commits"] == {"base": demo.DEMO_BASE_SHA, "human": demo.DEMO_HUMAN_SHA}
    assert manifest["prompt_sha256"] and manifest["agent"]["name"] == "replay"
    results = json.loads((item / "results.json").read_text())
    med = lambda v: sorted(t["value"] for t in results["trials"]  # noqa: E731
                           if t["variant"] == v and t["ok"] and not t["warmup"])[1]
    assert len([t for t in results["trials"] if t["variant"] == "base"]) == 3
    assert med("base") / med("human") > 1  # the human commit is a real speed-up
    assert results["gate"]["passed"]
    assert "status" in first.stderr and "success" in first.stderr
    assert labelled(docker_engine, "e2e-1") == []

    second = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--state-dir", str(state),
                     "--run-id", rid("e2e-2"), "--trials", "2", "--warmup", "0")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "built " not in second.stderr and "building" not in second.stderr
    images2 = json.loads((item_dir(state, run_id="e2e-2") / "journal.json").read_text())
    assert images2["attempts"][-1]["images"] == journal["attempts"][-1]["images"]


def test_patch_that_does_not_apply_is_journaled_not_crashed(docker_engine, base_image,
                                                            tmp_path):
    bad = tmp_path / "bad.patch"
    bad.write_text("diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n"
                   "@@ -1 +1 @@\n-old\n+new\n")
    state = tmp_path / "state"
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--patch", str(bad), "--state-dir",
                  str(state), "--run-id", rid("badpatch"))
    assert out.returncode == 11, out.stderr[-1500:]
    journal = json.loads((item_dir(state, run_id="badpatch") / "journal.json").read_text())
    assert journal["attempts"][-1]["status"] == "patch_apply_failed"
    assert journal["attempts"][-1]["signature"]["name"] == "patch_apply_failed"
    assert labelled(docker_engine, "badpatch") == []


def test_agent_that_changes_nothing_is_no_patch(docker_engine, base_image, tmp_path):
    script = tmp_path / "noop.sh"
    script.write_text("python -m unittest discover -s tests -q\n")
    state = tmp_path / "state"
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "script", "--agent-script",
                  str(script), "--state-dir", str(state), "--run-id", rid("noop"))
    assert out.returncode == 10, out.stderr[-1500:]
    journal = json.loads((item_dir(state, "script", "noop") / "journal.json").read_text())
    assert journal["attempts"][-1]["status"] == "no_patch"
    assert not (item_dir(state, "script", "noop") / "results.json").exists()


@pytest.mark.parametrize("args,message", [
    (["deadbeef"], "not in a built-in catalogue"),
    (["abcd1234", "--repo", "/"], "is not a git repository"),
    ([demo.DEMO_ROOT_SHA, "--repo", "DEMO"], "root commit"),
])
def test_bad_input_is_one_line_and_exit_2(docker_engine, demo_repo, tmp_path, args, message):
    args = [str(demo_repo) if a == "DEMO" else a for a in args]
    out = run_cli("run-commit", *args, "--state-dir", str(tmp_path), "--run-id",
                  rid("bad-input"))
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert labelled(docker_engine, "bad-input") == []
    assert not (tmp_path / "runs").exists()  # nothing journaled: it never started


def test_docker_unreachable_says_how_to_start_it(tmp_path):
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--state-dir", str(tmp_path),
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert out.returncode == 2
    assert "ensure-docker.sh" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_sigkill_mid_agent_leaves_nothing_after_the_next_command(docker_engine, base_image,
                                                                 tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("sleep 600\n")
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor.cli", "run-commit", demo.DEMO_HUMAN_SHA, "--agent",
         "script", "--agent-script", str(script), "--state-dir", str(state), "--run-id",
         rid("killed")], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    for line in proc.stderr:  # blocks until the controller says the agent is working
        if "agent: script" in line and "working" in line:
            break
    else:
        pytest.fail(f"controller ended before the agent phase (exit {proc.wait()})")
    assert len(labelled(docker_engine, "killed")) == 1  # the agent's sandbox, mid-agent
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    journal = json.loads((item_dir(state, "script", "killed") / "journal.json").read_text())
    assert journal["attempts"][-1]["status"] == "running"  # unfinished, never success

    nxt = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--state-dir", str(state), "--run-id",
                  rid("after-kill"), "--skip-bench")
    assert nxt.returncode == 0, nxt.stderr[-1500:]
    # Gone, whichever reaper removed them: on a shared engine another isobench process's
    # reaper may find the orphans before this one does.
    assert labelled(docker_engine, "killed") == []
    assert labelled(docker_engine, "after-kill") == []


def test_an_attempt_stopped_in_the_benchmark_is_rerun_without_the_agent(
        docker_engine, base_image, tmp_path):
    """Ctrl-C mid-benchmark, then the same run again: the agent's patch is benchmarked again,
    the agent (two hours and real tokens, with a real LLM) does not run a second time."""
    state = tmp_path / "state"
    args = ["run-commit", demo.DEMO_HUMAN_SHA, "--state-dir", str(state), "--run-id",
            rid("again"),
            "--warmup", "0"]
    # So many trials (each a fresh container) that the benchmark cannot end before the signal
    # that follows its first trial, however fast or busy the engine: the test waits on that
    # event (the line), never on time.
    # SIGINT at its default, whatever this test process inherited: a suite started in the
    # background (`pytest &` in a script) ignores SIGINT, and so would the controller, which
    # then runs every trial and exits 0 instead of 130.
    proc = subprocess.Popen([sys.executable, "-m", "executor.cli", *args, "--trials", "400"],
                            cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy(), preexec_fn=sigint_default)
    for line in proc.stderr:  # blocks until the first timed trial is done
        if "bench: trial 1/" in line:
            break
    else:
        pytest.fail(f"controller ended before the benchmark (exit {proc.wait()})")
    proc.send_signal(signal.SIGINT)
    proc.stderr.read()
    assert proc.wait() == 130

    rerun = run_cli(*args, "--trials", "2")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "not run again; attempt 1's patch" in rerun.stderr
    item = item_dir(state, run_id="again")
    first, second = json.loads((item / "journal.json").read_text())["attempts"]
    assert first["status"] == "interrupted" and "bench" in {p["name"] for p in first["phases"]}
    assert second["status"] == "success" and second["agent_reused_from"] == 1
    assert "agent" not in {p["name"] for p in second["phases"]}
    assert second["patch"] == first["patch"] and second["patch"]["bytes"] > 0
    assert (item / "attempt-2" / "model_patch.diff").read_bytes() == \
        (item / "attempt-1" / "model_patch.diff").read_bytes()
    results = json.loads((item / "results.json").read_text())  # the second attempt's
    assert [t["ok"] for t in results["trials"] if t["variant"] == "agent"] == [True, True]
    assert labelled(docker_engine, "again") == []
