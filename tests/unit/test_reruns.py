"""Bundles, comparisons and fingerprints without Docker (the engines are in
tests/integration/test_reruns.py)."""

from __future__ import annotations

import pytest

from executor.engine.images import (BaseImageRecipe, ImageRef, base_identity, sandbox_recipe,
                                    sha256_hex)
from executor.engine.fingerprint import ImageFingerprint, fingerprint_drift
from executor.core.errors import UserInputError
from executor.engine.hostfacts import HostFacts, host_differences
from executor.runs.rerun.bundle import BundleIndex, check_secret_free, seal, verify_bundle
from executor.runs.rerun.compare import RunSide, Speedup, compare_item
from executor.engine.sandbox import container_kwargs
from executor.core.resources import SandboxSpec


def side(verdict: str, agent: tuple[float, float, float], human=(27.0, 25.0, 29.0)) -> RunSide:
    return RunSide(verdict=verdict, speedups={
        "agent/base": Speedup(speedup=agent[0], ci_low=agent[1], ci_high=agent[2]),
        "human/base": Speedup(speedup=human[0], ci_low=human[1], ci_high=human[2])})


def test_same_verdict_and_overlapping_intervals_is_replay_valid():
    c = compare_item("x", side("improved", (23.0, 21.0, 25.0)),
                     side("improved", (24.0, 22.5, 26.0)), tolerance=0.02)
    assert c.replay_valid and c.intervals_consistent and c.ratio == pytest.approx(24 / 23)


def test_intervals_that_touch_only_after_widening_are_consistent():
    a, b = side("improved", (10.0, 9.8, 10.0)), side("improved", (10.3, 10.15, 10.4))
    assert not compare_item("x", a, b, tolerance=0.0).replay_valid
    assert compare_item("x", a, b, tolerance=0.02).replay_valid


def test_disjoint_intervals_or_a_flipped_verdict_are_flagged():
    c = compare_item("x", side("improved", (23.0, 21.0, 25.0)),
                     side("improved", (23.0, 21.0, 25.0), human=(40.0, 38.0, 42.0)), 0.02)
    assert not c.replay_valid and c.same_verdict and "human/base" in c.why
    c = compare_item("x", side("improved", (2.0, 1.9, 2.1)), side("no_change", (2.0, 1.9, 2.1)),
                     0.02)
    assert not c.replay_valid and not c.same_verdict and "improved -> no_change" in c.why


def test_an_item_missing_from_one_run_is_not_valid():
    c = compare_item("x", side("improved", (2.0, 1.9, 2.1)), None, 0.02)
    assert not c.replay_valid and c.why == "only in run A"


def test_fingerprint_drift_names_packages_and_files():
    old = ImageFingerprint(digest="a", components={
        "dpkg": ["libc6=2.41-6", "gcc=14"], "repo": ["b1 minivllm/block.py", "b2 README.md"]})
    new = ImageFingerprint(digest="b", components={
        "dpkg": ["libc6=2.41-7", "gcc=14", "curl=8"], "repo": ["b9 minivllm/block.py",
                                                              "b2 README.md"]})
    assert fingerprint_drift(old, new) == ["dpkg: added curl", "dpkg: libc6 2.41-6 -> 2.41-7",
                                           "repo: changed minivllm/block.py"]
    assert fingerprint_drift(old, old) == []


def test_sandbox_tags_hash_the_base_recipe_not_its_host_specific_id():
    recipe = BaseImageRecipe()
    here = ImageRef(tag=recipe.tag, id="sha256:1", built=False,
                    recipe=f"base-recipe:{recipe.content_hash()}")
    there = here.model_copy(update={"id": "sha256:2"})
    tag = lambda ref: sandbox_recipe("demo", "a" * 40, base_identity(ref), {}).tag  # noqa: E731
    assert tag(here) == tag(there)
    named = ImageRef(tag="nvidia/cuda:12", id="sha256:3", built=False)
    assert base_identity(named) == "sha256:3"


def test_every_sandbox_starts_with_the_determinism_environment():
    spec = SandboxSpec(image="x", budget_s=10, run_id="r", item="i", phase="p",
                       env={"LANG": "de_DE.UTF-8"})
    env = container_kwargs(spec, "n")["environment"]
    assert env["TZ"] == "UTC" and env["PYTHONHASHSEED"] == "0" and env["LC_ALL"] == "C.UTF-8"
    assert env["LANG"] == "de_DE.UTF-8"  # the task's own setting wins


def test_host_differences_name_each_fact():
    a = HostFacts(hostname="a", cpu_model="Xeon", cpu_count=2, kernel="6.1")
    b = a.model_copy(update={"hostname": "b", "cpu_model": "EPYC", "cpus": 0.5})
    assert host_differences(a, b) == ["cpu_model: Xeon -> EPYC", "cpus: None -> 0.5"]
    assert host_differences(None, b) == ["host facts: not recorded -> recorded"]


def test_export_refuses_anything_shaped_like_a_key(tmp_path):
    (tmp_path / "ok.txt").write_text("nothing here")
    check_secret_free(tmp_path)
    # Built at run time so the repository itself holds nothing shaped like a key.
    key_shaped = "sk" + "-" + "".join(chr(ord("a") + i % 26) for i in range(32))
    (tmp_path / "log.txt").write_text(f"key {key_shaped}")
    with pytest.raises(UserInputError, match="log.txt"):
        check_secret_free(tmp_path)


def test_a_sealed_bundle_verifies_and_an_extra_or_changed_file_is_refused(tmp_path):
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "Dockerfile.gpu").write_text("FROM x\n")
    (tmp_path / "recipes" / "ca.crt").write_bytes(b"")
    index = BundleIndex(task="demo", agent="replay", model="none", run_id="r",
                        dockerfile_sha256=sha256_hex("FROM x\n"), ca_sha256=sha256_hex(b""))
    seal(tmp_path, index)
    assert verify_bundle(tmp_path).run_ref == "demo/replay/none/r"
    (tmp_path / "stray.txt").write_text("x")
    with pytest.raises(UserInputError, match="stray.txt is not in bundle.json"):
        verify_bundle(tmp_path)
    (tmp_path / "stray.txt").unlink()
    (tmp_path / "plan.json").write_text("{ }")
    with pytest.raises(UserInputError, match="plan.json does not match"):
        verify_bundle(tmp_path)


def test_a_newer_bundle_format_is_refused(tmp_path):
    (tmp_path / "bundle.json").write_text('{"format_version": 99}')
    with pytest.raises(UserInputError, match="format 99"):
        verify_bundle(tmp_path)


def test_recorded_options_split_into_bench_options_and_resources():
    """results.json records the GPUs and limits beside the BenchOptions (which forbid them):
    a rerun measures with both, the user's --cpus/--cpuset over the recorded limits."""
    from executor.parts.bench.results import BenchResults
    from executor.parts.bench.run import BenchOptions, bench_record
    from executor.runs.rerun.rerun import RerunOptions, _bench_options
    from executor.core.resources import GpuRequest, Resources

    recorded = Resources(gpus=GpuRequest(mode="ids", ids=["1"]), cpus=2.0, cpuset="0-1",
                         memory="8g")
    options = BenchOptions(trials=5, prepare_network="bridge")
    results = BenchResults(item_id="x", commits={}, metric={}, seed=42, trials_per_variant=5,
                           warmup_blocks=1, variants={}, verdict="improved",
                           options=bench_record(options, recorded))
    bench, resources = _bench_options(results, RerunOptions(state_dir="s", run_id="r",
                                                            cpuset="2-3"), {"none"})
    assert bench.seed == 42 and bench.trials == 5 and bench.max_trials is None
    assert bench.prepare_network == "none"  # the engine has no bridge
    assert resources.gpus == recorded.gpus
    assert (resources.cpus, resources.cpuset, resources.memory) == (2.0, "2-3", "8g")


def test_a_default_run_with_sequential_trials_can_be_rerun():
    """A default run records both `trials` and `max_trials` (every field is in the record):
    reading them back is not the user giving --trials and --max-trials together."""
    from executor.parts.bench.results import BenchResults
    from executor.parts.bench.run import BenchOptions, bench_record
    from executor.runs.rerun.rerun import RerunOptions, _bench_options
    from executor.core.resources import Resources

    default = BenchOptions()
    results = BenchResults(item_id="x", commits={}, metric={}, seed=7, trials_per_variant=5,
                           warmup_blocks=1, variants={}, verdict="improved",
                           options=bench_record(default, Resources()))
    bench, _ = _bench_options(results, RerunOptions(state_dir="s", run_id="r"), {"bridge"})
    assert bench.max_trials == default.max_trials and bench.design() == default.design()
