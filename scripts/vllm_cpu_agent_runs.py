#!/usr/bin/env python3
"""`isobench run-commit` of a real catalogue vLLM commit on the CPU track, with agents.

    .venv/bin/python scripts/vllm_cpu_agent_runs.py --mirror /srv/mirrors/vllm.git \
        [--commit ed250545] [--cpuset 1] [--max-trials 10] [--state-dir DIR] \
        [--only llm|wrong|batch] [--batch-commits SHA ...]

Three runs, each a plain `isobench run-commit ... --target-device cpu` as a user types it:

  llm    the real mini-swe-agent (PyPI) in its sandbox at the parent, driven over HTTP by the
         scripted OpenAI-compatible server (executor/testing/scripted_llm.py: no model service
         is reachable here). Its turns look at the tree and then write a real edit, the human
         commit's change to vllm/ (read from the mirror, applied with `git apply` inside the
         sandbox). Then the harness patch, the gate, the output check, the trials, a verdict.
  wrong  the replay agent with a patch that drops the last decoder layer of the model (faster,
         and wrong): it must come out `incorrect`, with the diff of the greedy token ids.
  batch  `isobench run` of a plan of catalogue commits (--batch-commits) with mini-swe-agent
         on the scripted server, each item making a small real edit (a comment in
         vllm/envs.py), through images, agent, patch, gate, output check and a short fixed
         trial design; then `isobench status` of the run.

Prints one JSON line per run: exit status, attempt status, patch bytes, verdict and reason,
the output check, and where the record is. The key is made up at run time and handed to the
controller only (the gateway holds it; the sandbox never sees it).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from executor.testing.llm_script import LlmScript, call, reply  # noqa: E402
from executor.testing.scripted_llm import ScriptedLLM  # noqa: E402

MODEL = "scripted-model"
KEY_ENV = "ISOBENCH_SCRIPTED_KEY"
REPO = "/workspace/repo"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"  # mini-swe-agent's own end-of-task word
SKIP_LAST_LAYER = ("self.layers[self.start_layer:self.end_layer]):",
                   "self.layers[self.start_layer:self.end_layer - 1]):")


def git(mirror: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", mirror, *args], capture_output=True, text=True,
                          check=True).stdout


def human_change(mirror: str, sha: str) -> str:
    """The human commit's change to the package (tests excluded), as a patch."""
    return git(mirror, "diff", f"{sha}^", sha, "--", "vllm/")


def skip_layer_patch(mirror: str, sha: str) -> str:
    """A patch on the parent's llama.py that runs one decoder layer fewer."""
    path = "vllm/model_executor/models/llama.py"
    before = git(mirror, "show", f"{sha}^:{path}")
    old, new = SKIP_LAST_LAYER
    if old not in before:
        raise SystemExit(f"{path} at {sha}^ has no `{old}`: pick another commit")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        a.write_text(before)
        b.write_text(before.replace(old, new, 1))
        diff = subprocess.run(["git", "diff", "--no-index", "--no-prefix", str(a), str(b)],
                              capture_output=True, text=True).stdout
    body = diff.split("\n@@", 1)[1]
    return f"--- a/{path}\n+++ b/{path}\n@@{body}"


def summary(out: subprocess.CompletedProcess, item: Path, seconds: float) -> dict:
    row: dict = {"exit": out.returncode, "seconds": round(seconds), "record": str(item)}
    journal = item / "journal.json"
    if journal.is_file():
        attempt = json.loads(journal.read_text())["attempts"][-1]
        row["status"] = attempt.get("status")
        row["agent_outcome"] = attempt.get("agent_outcome")
    patch = item / "model_patch.diff"
    row["patch_bytes"] = patch.stat().st_size if patch.is_file() else 0
    results = item / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        row["verdict"] = data.get("verdict")
        row["reason"] = data.get("verdict_reason", "")[:400]
        check = data.get("output_check") or {}
        row["output_check"] = {"matched": check.get("matched"),
                               "diff": (check.get("diff") or "")[:600]}
        gate = data.get("gate") or {}
        row["gate"] = {"command": gate.get("command"), "passed": gate.get("passed")}
        comparisons = (data.get("analysis") or {}).get("comparisons") or {}
        row["speedups"] = {name: round(c["comparison"]["speedup"], 4)
                           for name, c in comparisons.items() if c.get("comparison")}
    if out.returncode not in (0,):
        row["stderr_tail"] = out.stderr[-1500:]
    return row


def run_commit(args, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "executor.cli", "run-commit", args.commit,
               "--repo", args.mirror, "--target-device", "cpu", "--cpuset", args.cpuset,
               "--max-trials", str(args.max_trials), "--state-dir", args.state_dir, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def item_dir(args, agent: str, model: str, run_id: str) -> Path:
    runs = Path(args.state_dir) / "runs" / "vllm_core_cpu" / agent / model / run_id
    found = [p for p in runs.glob("*") if p.is_dir()]
    return found[0] if found else runs


def llm_run(args) -> dict:
    edit = human_change(args.mirror, args.commit)
    turns = [
        reply("Looking at the block pool first.",
              call("bash", command=f"cd {REPO} && git log --oneline -1 && grep -n "
                                   f"'def get_new_blocks' -A12 vllm/v1/core/block_pool.py")),
        reply("Batching the free-list pops and appends.",
              call("bash", command=f"cd {REPO} && git apply <<'PATCH'\n{edit}PATCH\n"
                                   f"git diff --stat")),
        reply(None, call("bash", command=SUBMIT)),
    ]
    key = "sk-" + secrets.token_hex(16)
    run_id = f"llm-{time.strftime('%H%M%S')}"
    with tempfile.TemporaryDirectory() as tmp:
        prices = Path(tmp) / "prices.toml"
        prices.write_text(f'source = "scripted"\n[models."{MODEL}"]\ninput = 1.0\n'
                          f'cached_input = 0.1\noutput = 4.0\n')
        from pydantic import SecretStr

        with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(key),
                                   models=[MODEL])) as llm:
            started = time.monotonic()
            out = run_commit(args, "--agent", "mini-swe-agent", "--model", MODEL, "--base-url",
                             llm.base_url, "--api-key-env", KEY_ENV, "--price-table",
                             str(prices), "--max-steps", "10", "--run-id", run_id,
                             env={KEY_ENV: key})
            seconds = time.monotonic() - started
            calls = len(llm.requests)
    row = summary(out, item_dir(args, "mini-swe-agent", MODEL, run_id), seconds)
    row.update(run="llm (mini-swe-agent, scripted server)", model_requests=calls)
    return row


def wrong_run(args) -> dict:
    run_id = f"wrong-{time.strftime('%H%M%S')}"
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as handle:
        handle.write(skip_layer_patch(args.mirror, args.commit))
    started = time.monotonic()
    out = run_commit(args, "--agent", "replay", "--patch", handle.name, "--run-id", run_id)
    row = summary(out, item_dir(args, "replay", "none", run_id), time.monotonic() - started)
    row.update(run="wrong (replay: drops the last decoder layer)")
    return row


def batch_run(args) -> dict:
    edit = f"cd {REPO} && printf '\\n# scripted agent: nothing to speed up here\\n' >> vllm/envs.py"
    turns = [turn for _ in args.batch_commits
             for turn in (reply("Editing.", call("bash", command=edit)),
                          reply(None, call("bash", command=SUBMIT)))]
    key = "sk-" + secrets.token_hex(16)
    run_id = f"batch-{time.strftime('%H%M%S')}"
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.json"
        made = subprocess.run([sys.executable, "-m", "executor.cli", "plan", "--catalogue",
                               "vllm_core", *args.batch_commits, "-o", str(plan)], cwd=ROOT,
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(made.stderr)
        from pydantic import SecretStr

        with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(key),
                                   models=[MODEL])) as llm:
            started = time.monotonic()
            out = subprocess.run(
                [sys.executable, "-m", "executor.cli", "run", str(plan), "--repo", args.mirror,
                 "--target-device", "cpu", "--cpuset", args.cpuset, "--trials", "2",
                 "--warmup", "0", "--workers", "1", "--agent", "mini-swe-agent", "--model",
                 MODEL, "--base-url", llm.base_url, "--api-key-env", KEY_ENV, "--max-steps",
                 "6", "--state-dir", args.state_dir, "--run-id", run_id],
                cwd=ROOT, capture_output=True, text=True, env={**os.environ, KEY_ENV: key})
            seconds = time.monotonic() - started
    status = subprocess.run([sys.executable, "-m", "executor.cli", "status", args.state_dir,
                             "--run-id", run_id], cwd=ROOT, capture_output=True, text=True)
    runs = Path(args.state_dir) / "runs" / "vllm_core_cpu" / "mini-swe-agent" / MODEL / run_id
    items = {}
    for item in sorted(p for p in runs.glob("*") if p.is_dir()):
        items[item.name] = summary(out, item, 0)
    return {"run": f"batch of {len(args.batch_commits)} (mini-swe-agent, scripted server)",
            "exit": out.returncode, "seconds": round(seconds), "items": items,
            "status": status.stdout[-2500:], "stderr_tail": out.stderr[-1500:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", required=True)
    parser.add_argument("--commit", default="ed250545")
    parser.add_argument("--cpuset", default="1")
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--state-dir", default=str(ROOT / "state" / "cpu-agents"))
    parser.add_argument("--only", choices=["llm", "wrong", "batch"])
    parser.add_argument("--batch-commits", nargs="+",
                        default=["ed250545", "a3223766", "61b8cea3"])
    args = parser.parse_args()
    for name, runner in (("llm", llm_run), ("wrong", wrong_run), ("batch", batch_run)):
        if args.only in (None, name):
            print(json.dumps(runner(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
