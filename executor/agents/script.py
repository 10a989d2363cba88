"""The script agent: runs a shell script in the sandbox as if it were an agent.

For baselines that need no LLM (a formatter, a known rewrite, a sed one-liner), for tests that
need an agent with a controllable life (one that waits, fails, or makes commits), and for batch
rehearsals. The script runs in the repository with the prompt in $ISOBENCH_PROMPT_FILE and the
plan item's id in $ISOBENCH_ITEM_ID (one script can serve a whole batch); exit 0 means
finished, a timeout means timeout, anything else is an agent error classified from its output.
"""

from __future__ import annotations

from pathlib import Path

from executor.agents.base import AgentEnding, AgentRun, AgentTask, Log, OfflineAgent
from executor.errors import classify_text, signature, unclassified, AGENT_TIMEOUT
from executor.sandbox import Sandbox
from executor.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

SCRIPT_PATH = "/opt/isobench/agent_script.sh"
PROMPT_PATH = "/opt/isobench/prompt.txt"


class ScriptAgent(OfflineAgent):

    name = "script"
    payload_kind = "script"

    @property
    def script(self) -> bytes:
        return self.payload

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        sandbox.put_file(SCRIPT_PATH, self.script, mode=0o755)
        sandbox.put_file(PROMPT_PATH, task.prompt.encode())
        stdout, stderr = out_dir / AGENT_STDOUT_NAME, out_dir / AGENT_STDERR_NAME
        result = sandbox.exec(f"bash {SCRIPT_PATH}", task.budget_s, workdir=task.repo_dir,
                              env={"ISOBENCH_PROMPT_FILE": PROMPT_PATH,
                                   "ISOBENCH_SCRATCH": task.scratch_dir,
                                   "ISOBENCH_ITEM_ID": task.item_id},
                              stdout_file=stdout, stderr_file=stderr)
        common = dict(exit_code=result.exit_code, duration_s=result.duration_s,
                      artifacts=[stdout.name, stderr.name])
        if result.timed_out:
            return AgentRun(ending=AgentEnding.TIMEOUT, detail="script used its whole budget",
                            signature=signature(AGENT_TIMEOUT, f"timeout after "
                                                f"{task.budget_s}s", "controller"), **common)
        if result.exit_code != 0:
            tail = result.tail(5)
            sig = classify_text(tail, "agent_stderr") or unclassified(
                tail.splitlines()[-1] if tail else f"exit {result.exit_code}", "agent_stderr")
            return AgentRun(ending=AgentEnding.ERROR, signature=sig,
                            detail=f"script exited {result.exit_code}", **common)
        return AgentRun(ending=AgentEnding.FINISHED, detail="script exited 0", **common)
