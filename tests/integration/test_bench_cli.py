"""`isobench bench` on the embedded demo, as a user runs it (subprocess, real engine)."""

import json
import subprocess
import uuid

import pytest

from executor.parts import demo
from executor.parts.bench.variants import prepare_agent_variant
from executor.runs.pipeline import RunOptions, ensure_images
from executor.runs.resolve import resolve_job
from tests.conftest import run_cli
from tests.integration.fixture_repos import diff_of

pytestmark = [pytest.mark.docker]
SHA = demo.DEMO_HUMAN_SHA[:8]


def item(state, run_id):
    return state / "bench" / "demo" / run_id / "demo-0000"


@pytest.fixture
def demo_clone(demo_repo, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(demo_repo), str(clone)], check=True)
    return clone


@pytest.mark.slow
def test_bench_a_run_record_with_aa_control(docker_engine, base_image, tmp_path):
    run_dir = tmp_path / "run-item"  # what run-commit leaves: the patch and the manifest
    run_dir.mkdir()
    (run_dir / "model_patch.diff").write_bytes(demo.reference_agent_patch())
    (run_dir / "manifest.json").write_text(json.dumps({"commits": {
        "base": demo.DEMO_BASE_SHA, "human": demo.DEMO_HUMAN_SHA}}))
    state = tmp_path / "state"
    out = run_cli("bench", SHA, "--run", str(run_dir), "--aa", "--trials", "2", "--warmup",
                  "0", "--cpuset", "0", "--state-dir", str(state), "--run-id", "cli", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((item(state, "cli") / "results.json").read_text())
    assert json.loads(out.stdout) == results
    assert set(results["variants"]) == {"base", "human", "agent", "base2"}
    assert results["variants"]["agent"]["apply_method"] in ("git-apply", "cached")
    assert results["gate"]["passed"] and results["options"]["limits"]["cpuset"] == "0"
    assert len([t for t in results["trials"] if t["ok"]]) == 8
    assert set(results["analysis"]["comparisons"]) == \
        {"human/base", "agent/base", "agent/human", "base2/base"}
    assert results["analysis"]["comparisons"]["human/base"]["comparison"]["speedup"] > 1
    assert (item(state, "cli") / "agent.patch").read_bytes() == demo.reference_agent_patch()
    for label in ("human/base", "base2/base", "verdict", "record", "gate"):
        assert label in out.stderr  # the table


def test_patch_that_breaks_the_tests_is_incorrect_and_never_timed(docker_engine, base_image,
                                                                   demo_clone, tmp_path):
    patch = tmp_path / "broken.patch"
    patch.write_bytes(diff_of(demo_clone, {"minivllm/block_allocator.py": (
        "        self._used[block_id] = False", "        pass  # forgets to free")},
        at=demo.DEMO_BASE_SHA))
    out = run_cli("bench", SHA, "--patch", str(patch), "--trials", "2", "--warmup", "0",
                  "--state-dir", str(tmp_path), "--run-id", "broken", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert results["verdict"] == "incorrect" and results["trials"] == []
    assert not results["gate"]["passed"]
    assert "test_freed_blocks_are_reused" in open(results["log_file"]).read()
    assert "incorrect" in out.stderr


def test_patch_that_does_not_apply_is_apply_failed_with_its_log(docker_engine, base_image,
                                                                tmp_path):
    patch = tmp_path / "stale.patch"
    patch.write_text("diff --git a/minivllm/nope.py b/minivllm/nope.py\n--- a/minivllm/nope.py\n"
                     "+++ b/minivllm/nope.py\n@@ -1 +1 @@\n-old\n+new\n")
    out = run_cli("bench", SHA, "--patch", str(patch), "--state-dir", str(tmp_path),
                  "--run-id", "stale", "--json")
    assert out.returncode == 11, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert results["verdict"] == "apply_failed" and results["trials"] == []
    log = open(results["log_file"]).read()
    assert "[git-apply]" in log and "[patch-fuzz]" in log  # every method was tried


def test_patch_already_in_the_tree_is_recognised(docker_engine, base_image, tmp_path):
    job = resolve_job(demo.DEMO_HUMAN_SHA)
    _, images = ensure_images(job, RunOptions(state_dir=tmp_path, run_id="already"), tmp_path,
                              lambda _: None)
    patch = (demo.DEMO_DIR / "commits" / "0002-can-allocate.patch").read_bytes()  # in base
    # A line before the first diff header is ignored by git apply and patch, and gives a hash
    # no earlier run built: the engine may be shared and long-lived, so never a cached image.
    unique = f"isobench test {uuid.uuid4().hex}\n".encode() + patch
    variant = prepare_agent_variant(job.task, images["base"], job.base_sha, unique,
                                    run_id="already", item_id="demo", log_dir=tmp_path)
    assert variant.apply_method == "already-applied"
    docker_engine.images.remove(variant.image_tag)  # unique to this run: nobody reuses it


@pytest.mark.parametrize("args,message", [
    (["--patch", "P", "--run", "R"], "not both"),
    (["--run", "R"], "no model_patch.diff"),
    (["--run", "WRONG"], "is a run of"),
    (["--patch", "EMPTY"], "is empty"),
    (["--patch", "MISSING"], "cannot read patch"),
])
def test_bad_input_is_one_line_and_exit_2(demo_repo, tmp_path, args, message):
    (tmp_path / "P").write_text("x")
    (tmp_path / "R").mkdir()
    (tmp_path / "EMPTY").write_text("\n")
    wrong = tmp_path / "WRONG"
    wrong.mkdir()
    (wrong / "model_patch.diff").write_text("x")
    (wrong / "manifest.json").write_text(json.dumps({"commits": {"human": "f" * 40}}))
    args = [str(tmp_path / a) if a in ("P", "R", "WRONG", "EMPTY", "MISSING") else a
            for a in args]
    out = run_cli("bench", SHA, *args, "--state-dir", str(tmp_path / "state"))
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state").exists()


def test_sequential_trials_stop_once_the_human_speedup_is_decided(docker_engine, base_image,
                                                                  tmp_path):
    """The demo's ~25x speedup is decided at the first look: 5 trials a side, not the cap."""
    state = tmp_path / "state"
    out = run_cli("bench", SHA, "--max-trials", "10", "--warmup", "0", "--cpuset", "0",
                  "--state-dir", str(state), "--run-id", "seq", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    stopping = results["stopping"]
    assert results["verdict"] == "improved"
    assert stopping["mode"] == "sequential" and stopping["reason"] == "decided"
    assert stopping["blocks"] == 5 and stopping["trials_used"] == {"base": 5, "human": 5}
    assert len(results["trials"]) == 10 and results["trials_per_variant"] == 5
    assert results["analysis"]["comparisons"]["human/base"]["look"] == 1
    assert "sequential: stopped decided after 5 of at most 10" in " ".join(out.stderr.split())
