"""The harness's hook inside the timed process (evidence_hook.py) and what the harness makes of
its evidence (evidence.py): real processes running the demo's benchmark, no Docker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor.core.task import EvidenceSpec
from executor.parts.bench import evidence
from executor.parts.bench.results import TrialRecord
from executor.parts.demo import EVIDENCE, TREE_DIR, demo_task

SPEC = EvidenceSpec.model_validate(EVIDENCE)
METRIC = "out.json"


def run_hooked(tree: Path, config: dict, *args: str, key: str = "k") -> subprocess.CompletedProcess:
    """The hook as the harness runs it, with its configuration at a test path."""
    cfg = tree / "evidence.json"
    cfg.write_text(json.dumps({"key": key, "out": str(tree / "evidence.out"), **config}))
    launcher = ("import sys; sys.path.insert(0, sys.argv[1]); import evidence_hook as h; "
                "h.CONFIG_PATH = sys.argv[2]; h.main(sys.argv[3:])")
    return subprocess.run([sys.executable, "-c", launcher, str(evidence.HOOK_SOURCE.parent),
                           str(cfg), *args], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


@pytest.fixture()
def tree(tmp_path):
    dest = tmp_path / "repo"
    shutil.copytree(TREE_DIR, dest)
    return dest


def demo_run(tree: Path, seed: int = 5, key: str = "k") -> tuple[evidence.TrialEvidence, dict]:
    _, config = evidence.hook_config(SPEC, str(tree / METRIC), seed)
    config = json.loads(config)
    config.pop("key")
    config.pop("out")
    done = run_hooked(tree, config, "benchmarks/benchmark_latency.py", "--timer", "cpu",
                      "--num-iters-warmup", "1", "--num-iters", "3", "--steps", "5",
                      "--output-json", str(tree / METRIC), key=key)
    assert done.returncode == 0, done.stderr
    metric = (tree / METRIC).read_bytes()
    return (evidence.read_evidence((tree / "evidence.out").read_bytes(), key, metric),
            json.loads(metric))


def test_the_demo_command_runs_its_benchmark_through_the_hook():
    command = evidence.hook_command(demo_task(Path("/nonexistent")).bench_command, SPEC)
    assert command.startswith(f"python {evidence.HOOK_PATH} benchmarks/benchmark_latency.py "
                              f"--timer cpu")
    with pytest.raises(ValueError, match="does not run"):
        evidence.hook_command("python other.py --x", SPEC)


def test_the_hook_records_each_iteration_and_deletes_its_configuration(tree):
    ev, metric = demo_run(tree)
    assert ev.valid and ev.iterations == 4 and len(ev.states) == 4 and ev.input_seed == 5
    assert not (tree / "evidence.json").exists()  # the key is gone before the benchmark runs
    assert all(s.startswith("next_seq=") for s in ev.states)
    # the metric's clock brackets the hook's: it never reports less than the hook measured
    for claimed, cpu in zip(metric["latencies"], ev.cpu_s[-3:]):
        assert claimed >= cpu
    again, _ = demo_run(tree)
    assert again.digest == ev.digest  # the same inputs compute the same thing
    other, _ = demo_run(tree, seed=6)
    assert other.digest != ev.digest  # the block's seed reached the benchmark


def test_evidence_not_signed_with_the_runs_key_or_missing_is_not_valid(tree):
    ev, _ = demo_run(tree, key="right")
    raw = (tree / "evidence.out").read_bytes()
    forged = evidence.read_evidence(raw, "wrong", None)
    assert not forged.valid and "not signed" in forged.problem
    missing = evidence.read_evidence(None, "right", None)
    assert not missing.valid and "left no evidence" in missing.problem
    rewritten = evidence.read_evidence(raw, "right", b'{"latencies": [0.0001]}')
    assert rewritten.valid and rewritten.metric_rewritten


def test_a_cheat_under_the_benchmark_is_incorrect_with_the_first_difference(tree):
    base, _ = demo_run(tree)
    with open(tree / "minivllm" / "block_manager.py", "a") as fh:
        fh.write(textwrap.dedent("""
            import sys
            if sys.argv[0].endswith("benchmark_latency.py"):
                def _skip(self, seq_id):
                    self._num_tokens[seq_id] += 1
                BlockManager.append_token = _skip
            """))
    cheat, _ = demo_run(tree)
    assert cheat.valid and cheat.digest != base.digest

    def trial(index: int, variant: str, ev) -> TrialRecord:
        return TrialRecord(index=index, block=0, variant=variant, warmup=False, value=1.0,
                           ok=True, evidence=ev)

    finding = evidence.judge_behaviour([trial(0, "base", base), trial(1, "agent", cheat)],
                                       "agent", "base")
    assert finding.mismatched == [1] and finding.diff.startswith("trial 1: iteration 1")
    same = evidence.judge_behaviour([trial(0, "base", base), trial(1, "agent", base)],
                                    "agent", "base")
    assert same.mismatched == [] and same.trials_checked == 1


def test_a_metric_below_the_harness_clock_is_named():
    ev = evidence.TrialEvidence(valid=True, digest="d", iterations=3, cpu_s=[0.1, 0.1, 0.1],
                                wall_s=[0.2, 0.1, 0.1])
    record = TrialRecord(index=4, block=0, variant="agent", warmup=False, value=0.01, ok=True,
                         evidence=ev, claimed_region_s=0.02, claimed_iterations=2)
    assert "the metric reports 0.0200s for 2 iterations" in evidence.clock_mismatch(record)
    record.claimed_region_s = 0.2
    assert evidence.clock_mismatch(record) is None


# A stand-in for vLLM (no vLLM on the CPU CI): RequestOutput and CompletionOutput with vLLM's
# own constructor fields, an LLM whose generate samples from a generator seeded by the engine's
# --seed, and a benchmark shaped like benchmark_latency.py (run_to_completion -> llm_generate
# -> llm.generate, its result discarded). The real thing runs in test_vllm_cpu_track.py.
FAKE_VLLM = textwrap.dedent("""
    import random
    class CompletionOutput:
        def __init__(self, index, text, token_ids, cumulative_logprob, logprobs,
                     finish_reason=None, stop_reason=None, lora_request=None):
            self.index, self.text, self.token_ids = index, text, token_ids
    class RequestOutput:
        def __init__(self, request_id, prompt, prompt_token_ids, prompt_logprobs, outputs,
                     finished, metrics=None, lora_request=None, encoder_prompt=None,
                     encoder_prompt_token_ids=None, num_cached_tokens=None):
            self.request_id, self.prompt_token_ids, self.outputs = (request_id,
                                                                    prompt_token_ids, outputs)
    class LLM:
        def __init__(self, seed):
            self.rng = random.Random(seed)
        def generate(self, prompts, max_tokens, detokenize=True):
            outputs = []
            for i, p in enumerate(prompts):
                ids = [self.rng.randrange(32000) for _ in range(max_tokens)]
                text = " ".join(f"w{t}" for t in ids) if detokenize else ""
                outputs.append(RequestOutput(str(i), None, p["prompt_token_ids"], None,
                                             [CompletionOutput(0, text, ids, None, None,
                                                               "length")], True))
            return outputs
    """)
LATENCY_LIKE = textwrap.dedent("""
    import argparse, json, random, time
    from fake_vllm import LLM
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-json")
    args = parser.parse_args()
    llm = LLM(args.seed)
    prompts = [{"prompt_token_ids": [random.Random(args.seed).randrange(10000)] * 3}] * 4
    def llm_generate():
        llm.generate(prompts, max_tokens=8)
    def run_to_completion():
        start = time.perf_counter()
        llm_generate()
        return time.perf_counter() - start
    run_to_completion()  # warm-up
    latencies = [run_to_completion() for _ in range(3)]
    json.dump({"latencies": latencies}, open(args.output_json, "w"))
    """)
VLLM_SPEC = EvidenceSpec(script="benchmark_latency.py", function="run_to_completion",
                         calls=["generate"], result="token_ids", seed_flag="--seed")


def vllm_run(tree: Path, seed: int, spec: EvidenceSpec = VLLM_SPEC) -> evidence.TrialEvidence:
    _, config = evidence.hook_config(spec, str(tree / METRIC), seed)
    config = json.loads(config)
    config.pop("key")
    config.pop("out")
    done = run_hooked(tree, config, "benchmark_latency.py", "--output-json", str(tree / METRIC))
    assert done.returncode == 0, done.stderr
    return evidence.read_evidence((tree / "evidence.out").read_bytes(), "k",
                                  (tree / METRIC).read_bytes())


@pytest.fixture()
def vllm_tree(tmp_path):
    (tmp_path / "fake_vllm.py").write_text(FAKE_VLLM)
    (tmp_path / "benchmark_latency.py").write_text(LATENCY_LIKE)
    return tmp_path


def test_the_token_ids_of_every_generate_call_are_recorded(vllm_tree):
    """Every generate call of the benchmark (warm-up and timed) gives one result: requests,
    a digest of their prompt ids, output tokens per request and a digest of the output ids;
    each run_to_completion is one timed iteration on the hook's clock."""
    first = vllm_run(vllm_tree, seed=5)
    assert first.valid and first.iterations == 4 and len(first.results) == 4
    assert re.fullmatch(r"requests=4 prompts=[0-9a-f]{16} out=4x8 ids=[0-9a-f]{16} "
                        r"text=[0-9a-f]{16}", first.results[0])
    assert len(set(first.results)) == 4  # the generator moves on: each call samples anew
    assert vllm_run(vllm_tree, seed=5).digest == first.digest  # reproducible on one seed
    other = vllm_run(vllm_tree, seed=6)
    assert other.digest != first.digest  # the block's seed reached the engine
    assert other.results[0].split(" ids=")[0] != first.results[0].split(" ids=")[0]  # prompts


def test_fewer_tokens_only_under_the_benchmark_is_incorrect_with_the_diff(vllm_tree):
    base = vllm_run(vllm_tree, seed=5)
    with open(vllm_tree / "fake_vllm.py", "a") as fh:
        fh.write(textwrap.dedent("""
            import sys
            if sys.argv[0].endswith("benchmark_latency.py"):
                _generate = LLM.generate
                LLM.generate = lambda self, prompts, max_tokens: _generate(self, prompts, 6)
            """))
    cheat = vllm_run(vllm_tree, seed=5)
    assert cheat.valid and "out=4x6" in cheat.results[0]
    check_cheat(base, cheat, "out=4x8", "out=4x6")


def test_skipping_detokenization_under_the_benchmark_is_incorrect(vllm_tree):
    """The same token ids without the text the requests asked for: the text digest differs."""
    base = vllm_run(vllm_tree, seed=5)
    with open(vllm_tree / "fake_vllm.py", "a") as fh:
        fh.write(textwrap.dedent("""
            import sys
            if sys.argv[0].endswith("benchmark_latency.py"):
                _generate = LLM.generate
                LLM.generate = lambda self, prompts, max_tokens: _generate(self, prompts,
                                                                           max_tokens, False)
            """))
    cheat = vllm_run(vllm_tree, seed=5)
    same_ids = cheat.results[0].split(" text=")[0]
    assert cheat.valid and same_ids == base.results[0].split(" text=")[0]
    check_cheat(base, cheat, "text=", "text=")


def check_cheat(base: evidence.TrialEvidence, cheat: evidence.TrialEvidence, ours: str,
                theirs: str) -> None:
    """judge_behaviour: the agent's trial differs from base's on the first generate call, the
    human's (the same evidence as base's) does not count; an honest agent passes."""
    def trial(index: int, variant: str, ev) -> TrialRecord:
        return TrialRecord(index=index, block=0, variant=variant, warmup=False, value=1.0,
                           ok=True, evidence=ev)

    finding = evidence.judge_behaviour([trial(0, "base", base), trial(1, "human", base),
                                        trial(2, "agent", cheat)], "agent", "base")
    assert finding.mismatched == [2]
    assert finding.diff.startswith("trial 2: result 1: reference `requests=4 ")
    reference, agent = finding.diff.split("agent `")
    assert ours in reference and theirs in agent and "requests=4 " in agent
    honest = evidence.judge_behaviour([trial(0, "base", base), trial(2, "agent", base)],
                                      "agent", "base")
    assert honest.mismatched == [] and honest.trials_checked == 1


def test_token_counts_leave_out_which_ids_were_sampled(vllm_tree):
    """The reader for a track whose sampled ids are not reproducible between processes: the
    same requests, prompts and counts are equal even where the sampled ids differ."""
    counts = VLLM_SPEC.model_copy(update={"result": "token_counts"})
    (vllm_tree / "fake_vllm.py").write_text(FAKE_VLLM.replace("random.Random(seed)",
                                                              "random.Random()"))
    runs = [vllm_run(vllm_tree, seed=5, spec=counts) for _ in range(2)]
    assert runs[0].digest == runs[1].digest
    assert re.fullmatch(r"requests=4 prompts=[0-9a-f]{16} out=4x8", runs[0].results[0])
    exact = [vllm_run(vllm_tree, seed=5) for _ in range(2)]
    assert exact[0].digest != exact[1].digest


def test_an_unreadable_result_is_recorded_as_such(tmp_path):
    (tmp_path / "b.py").write_text("class LLM:\n    def generate(self):\n        return 3\n"
                                   "LLM().generate()\n")
    done = run_hooked(tmp_path, {"calls": ["generate"], "result": "token_ids"}, "b.py")
    assert done.returncode == 0, done.stderr
    ev = evidence.read_evidence((tmp_path / "evidence.out").read_bytes(), "k", None)
    assert ev.valid and ev.results == ["unreadable: AttributeError"]


def test_trials_stop_once_the_agent_computed_something_else():
    """measure() asks after every block; the first block with a differing agent trial ends the
    trials (a cheat is not timed 30 times)."""
    from executor.parts.bench.measure import measure
    from executor.parts.bench.schedule import TrialSpec
    from executor.parts.bench.sequential import SequentialDesign
    from executor.parts.bench.trial import new_record

    class Runner:
        metric_info = {"lower_is_better": True}

        def __call__(self, spec: TrialSpec) -> TrialRecord:
            record = new_record(spec)
            digest = "cheat" if spec.variant == "agent" and spec.block >= 1 else "same"
            record.value, record.ok = 1.0, True
            record.evidence = evidence.TrialEvidence(valid=True, digest=digest,
                                                     input_seed=spec.block, states=[digest])
            return record

    def stop(records):
        finding = evidence.judge_behaviour(records, "agent", "base")
        return finding.diff if finding and finding.mismatched else None

    records, verdict, stopping = measure(["base", "agent"], Runner(),
                                         SequentialDesign(max_trials=30), warmup=0, seed=1,
                                         min_effect=0.02, stop=stop, log=lambda _: None)
    assert stopping.reason == "stopped" and len(records) == 4  # blocks 0 and 1, then stop
    assert "iteration 1: reference `same`, agent `cheat`" in verdict.reason
