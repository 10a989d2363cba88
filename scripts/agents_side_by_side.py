"""The five LLM agents side by side: one demo plan, one state dir, one report.

    .venv/bin/python scripts/agents_side_by_side.py [--agent-python /path/to/cpython-3.12] \\
        --trae-source /path/to/trae-agent [--out side-by-side/] [--items 3] [--bench]

For each agent (trae, mini-swe-agent, claude-code, codex, openhands) it serves a scripted model
in that agent's own dialect and tool names (Responses, Chat Completions, Anthropic Messages),
whose turns make a real edit of the demo's allocator and then finish, once per plan item; runs
`isobench run` on one `isobench plan --demo N` plan into ONE state dir, each agent its own run;
writes ONE `isobench report` of all the runs; prints one row per agent (items succeeded of
planned, patch bytes, tokens in/out, model calls, verdicts, wall time); and searches the state
dir and the report for the scripted key (its text, base64 and hex), which must be nowhere.

The key is random per invocation and lives in this process and in the environment of the
`isobench run` child only: the controller's gateway holds it, the agents get per-attempt tokens.
Token counts are the scripted server's estimates from each request's size (chars / 4), so they
show how much each agent sends, not what a real model would bill.

Without --bench each run stops after the agent phase (`--skip-bench`): verdicts are then
"not measured". With --bench every item is also benchmarked (base, human, agent; --trials 5
fixed by default, about 40 s an item on a loaded 2-core machine; --trials 0 for the default
sequential design, up to 30 trials a variant, the one whose verdicts to trust).

Exit status: 0 when every agent's run succeeded on every item and the key was found nowhere,
1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from executor.runs.agent_python import AGENT_PYTHON_NEEDS, candidate_prefixes
from executor.testing.llm_script import LlmScript, Reply, call, reply
from executor.testing.scripted_llm import ScriptedLLM

AGENTS = ("trae", "mini-swe-agent", "claude-code", "codex", "openhands")
KEY_ENV = "ISOBENCH_SIDE_BY_SIDE_KEY"
REPO = "/workspace/repo"
ALLOCATOR = "minivllm/block_allocator.py"
# Claude Code's model must be one the Messages dialect knows (and the default price table
# prices); the others take any name the endpoint lists.
MODELS = {"claude-code": "claude-sonnet-4-5"}
DEFAULT_MODEL = "scripted-model"


def edit_command(agent: str) -> str:
    """A real change to the demo's allocator: a line appended, named after the agent."""
    return f"cd {REPO} && printf '\\n# {agent} was here\\n' >> {ALLOCATOR}"


def item_turns(agent: str) -> list[Reply]:
    """One item's model turns in the agent's own tool vocabulary: an edit, then its way of
    saying it is done (the tool names are those each agent sends; see its integration test)."""
    edit = edit_command(agent)
    if agent == "trae":  # Responses API; bash + task_done
        return [reply("Editing.", call("bash", command=edit)), reply("Done.", call("task_done"))]
    if agent == "mini-swe-agent":  # Chat Completions; bash, submitted by its sentinel echo
        return [reply("Editing.", call("bash", command=edit)),
                reply(None, call("bash", command="echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"))]
    if agent == "claude-code":  # Anthropic Messages; Bash, then a final text
        return [reply("Editing the allocator.", call("Bash", command=edit, description="edit")),
                reply("Done: the allocator is edited.")]
    if agent == "codex":  # Responses API, streamed; exec_command, then a final message
        return [reply("Editing.", call("exec_command", cmd=edit)),
                reply("Done: the allocator is edited.")]
    if agent == "openhands":  # Chat Completions via litellm; terminal (security_risk) + finish
        return [reply("Editing.", call("terminal", command=edit, security_risk="LOW")),
                reply(None, call("finish", message="Done."))]
    raise ValueError(agent)


class AgentRow(BaseModel):
    """What one agent's run amounted to, read from its journals."""

    agent: str
    run_id: str
    exit_code: int
    succeeded: int = 0
    planned: int = 0
    patch_bytes: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    server_requests: int = 0
    verdicts: dict[str, int] = {}
    endings: dict[str, int] = {}
    wall_s: float = 0.0


def isobench(*args: str, env: dict[str, str] | None = None,
             log: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "executor.cli", *args]
    full_env = {**os.environ, **(env or {})}
    if log is None:
        return subprocess.run(command, check=False, cwd=ROOT, env=full_env, capture_output=True, text=True)
    with log.open("w") as sink:
        return subprocess.run(command, check=False, cwd=ROOT, env=full_env, stdout=sink,
                              stderr=subprocess.STDOUT, text=True)


def run_agent(agent: str, args: argparse.Namespace, plan: Path, state: Path, key: str,
              stamp: str) -> AgentRow:
    model = MODELS.get(agent, DEFAULT_MODEL)
    run_id = f"sbs-{stamp}-{agent}"
    turns = [turn for _ in range(args.items) for turn in item_turns(agent)]
    extra: list[str] = []
    if agent in ("trae", "openhands"):
        extra += ["--agent-python", str(args.agent_python)]
    if agent == "trae":
        extra += ["--agent-source", str(args.trae_source)]
    if agent in ("trae", "mini-swe-agent", "claude-code"):  # codex and openhands have no limit
        extra += ["--max-steps", "10"]
    if not args.bench:
        extra += ["--skip-bench"]
    elif args.trials:
        extra += ["--trials", str(args.trials)]
    log = args.out / f"run-{agent}.log"
    print(f"[{agent}] running {args.items} item(s) as run {run_id} (log: {log}) ...",
          file=sys.stderr, flush=True)
    script = LlmScript(turns=turns, api_key=SecretStr(key), models=[model])
    started = time.monotonic()
    with ScriptedLLM(script) as llm:
        done = isobench("run", str(plan), "--agent", agent, "--model", model,
                        "--base-url", llm.base_url, "--api-key-env", KEY_ENV,
                        "--state-dir", str(state), "--run-id", run_id, "--workers", "1",
                        "--order", "plan", "--backoff", "0", "--no-progress", *extra,
                        env={KEY_ENV: key}, log=log)
        requests = llm.requests
    wall = time.monotonic() - started
    row = AgentRow(agent=agent, run_id=run_id, exit_code=done.returncode, wall_s=wall,
                   planned=args.items,
                   server_requests=sum(1 for r in requests if r.method == "POST"))
    run_dir = state / "runs" / "demo" / agent / model / run_id
    for journal_file in sorted(run_dir.glob("*/journal.json")):
        item = journal_file.parent
        last = json.loads(journal_file.read_text())["attempts"][-1]
        row.succeeded += last.get("status") == "success"
        ending = last.get("agent_outcome") or last.get("status") or "?"
        row.endings[ending] = row.endings.get(ending, 0) + 1
        patch = item / "model_patch.diff"
        row.patch_bytes += patch.stat().st_size if patch.exists() else 0
        for attempt in json.loads(journal_file.read_text())["attempts"]:
            usage, traffic = attempt.get("usage") or {}, attempt.get("model_traffic") or {}
            row.input_tokens += usage.get("input_tokens", 0)
            row.output_tokens += usage.get("output_tokens", 0)
            row.model_calls += traffic.get("calls", usage.get("llm_calls", 0))
        results = item / "results.json"
        verdict = "not measured"
        if results.exists():
            verdict = json.loads(results.read_text()).get("verdict") or "none"
        row.verdicts[verdict] = row.verdicts.get(verdict, 0) + 1
    print(f"[{agent}] exit {done.returncode}, {row.succeeded}/{row.planned} succeeded, "
          f"{wall:.0f}s", file=sys.stderr, flush=True)
    return row


def key_forms(key: str) -> dict[str, bytes]:
    raw = key.encode()
    b64 = base64.b64encode(raw)
    return {"text": raw, "base64": b64, "base64 unpadded": b64.rstrip(b"="),
            "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode()}


def key_hits(key: str, *roots: Path) -> dict[str, list[str]]:
    """Every file under the roots holding a form of the key, by form."""
    hits: dict[str, list[str]] = {name: [] for name in key_forms(key)}
    files = 0
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            files += 1
            data = path.read_bytes()
            for name, form in key_forms(key).items():
                if form in data:
                    hits[name].append(str(path))
    hits["_files_searched"] = [str(files)]
    return hits


def table(rows: list[AgentRow]) -> str:
    head = ("agent", "succeeded/planned", "patch bytes", "tokens in/out", "model calls",
            "verdicts", "agent endings", "wall s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(r.verdicts.items())) or "-"
        endings = ", ".join(f"{k} {v}" for k, v in sorted(r.endings.items())) or "-"
        lines.append(f"| {r.agent} | {r.succeeded}/{r.planned} | {r.patch_bytes} | "
                     f"{r.input_tokens:,}/{r.output_tokens:,} | {r.model_calls} | {verdicts} | "
                     f"{endings} | {r.wall_s:.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("side-by-side"),
                        help="Folder for the plan, the state dir, the report and the logs.")
    parser.add_argument("--items", type=int, default=3, help="Demo plan items (default 3).")
    parser.add_argument("--agents", default=",".join(AGENTS),
                        help="Comma-separated subset, in run order (default: all five).")
    parser.add_argument("--agent-python", type=Path,
                        help="CPython 3.12 install prefix (trae, openhands; default: the "
                             "first found on this host, pyenv's or uv's).")
    parser.add_argument("--trae-source", type=Path, help="TRAE checkout or mirror (trae).")
    parser.add_argument("--bench", action="store_true",
                        help="Benchmark every item too (slow); default --skip-bench.")
    parser.add_argument("--trials", type=int, default=5,
                        help="With --bench: fixed trials per variant (default 5; 0: the "
                             "sequential design).")
    args = parser.parse_args(argv)
    args.agents = [a for a in args.agents.split(",") if a]
    unknown = [a for a in args.agents if a not in AGENTS]
    if unknown:
        parser.error(f"unknown agent(s): {', '.join(unknown)} (choose from {', '.join(AGENTS)})")
    needs_python = {"trae", "openhands"} & set(args.agents)
    if needs_python and args.agent_python is None:
        found = candidate_prefixes(AGENT_PYTHON_NEEDS["openhands"])  # 3.12 fits both
        args.agent_python = found[0] if found else None
    if needs_python and not (args.agent_python and (args.agent_python / "bin").is_dir()):
        parser.error(f"{' and '.join(sorted(needs_python))} "
                     f"need{'s' if len(needs_python) == 1 else ''} --agent-python "
                     "(a CPython 3.12 install prefix)")
    if "trae" in args.agents and not (args.trae_source and args.trae_source.exists()):
        parser.error("trae needs --trae-source (a checkout or mirror of trae-agent)")
    if args.trials == 1 or args.trials < 0:
        parser.error("--trials must be 0 (sequential) or at least 2")
    if args.items < 1:
        parser.error("--items must be at least 1")
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    state, plan, report_dir = args.out / "state", args.out / "plan.json", args.out / "report"
    made = isobench("plan", "--demo", str(args.items), "-o", str(plan))
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    key = "sk-isobench-sbs-" + secrets.token_hex(16)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    rows = [run_agent(agent, args, plan, state, key, stamp) for agent in args.agents]
    report = isobench("report", str(state), "-o", str(report_dir),
                      *[arg for r in rows for arg in ("--run-id", r.run_id)])
    hits = key_hits(key, state, report_dir, args.out)
    searched = hits.pop("_files_searched")[0]
    print(f"\n{len(rows)} agent(s) on a {args.items}-item demo plan "
          f"({'benchmarked' if args.bench else '--skip-bench: agent phase only'}), "
          f"{time.monotonic() - started:.0f}s in all; state {state}\n")
    print(table(rows))
    print(f"\nreport (exit {report.returncode}): "
          + ", ".join(report.stdout.split()) if report.stdout else report.stderr[-2000:])
    leaks = sum(len(v) for v in hits.values())
    print(f"\nkey search over {searched} files under {args.out} (state, report, logs): "
          + ", ".join(f"{name} {len(paths)}" for name, paths in hits.items())
          + (" hits" if leaks else " hits: the key is nowhere"))
    for name, paths in hits.items():
        for path in paths:
            print(f"  LEAK ({name}): {path}")
    (args.out / "side_by_side.json").write_text(json.dumps(
        {"rows": [r.model_dump() for r in rows], "key_hits": hits, "report": str(report_dir)},
        indent=2))
    ok = all(r.exit_code == 0 and r.succeeded == r.planned for r in rows)
    return 0 if ok and not leaks and report.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
