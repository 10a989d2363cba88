"""The script agent: runs a shell script in the sandbox as if it were an agent.

For baselines that need no LLM (a formatter, a known rewrite, a sed one-liner), for tests that
need an agent with a controllable life (one that waits, fails, or makes commits), and for batch
rehearsals. The script runs in the repository with the prompt in $ISOBENCH_PROMPT_FILE and the
plan item's id in $ISOBENCH_ITEM_ID (one script can serve a whole batch); exit 0 means
finished, a timeout means timeout, anything else is an agent error classified from its output.

Given a model endpoint (`--base-url`, key in `--api-key-env`), the script also gets
$OPENAI_BASE_URL and $OPENAI_API_KEY: through the controller's gateway these are the gateway and
a per-attempt token (the provider key stays outside), so scripted agents exercise the same
traffic path as the LLM agents.
"""

from __future__ import annotations

from pathlib import Path

from executor.parts.agents.base import (AgentEnding, AgentPrep, AgentRun, AgentTask, Log, OfflineAgent,
                                  PrepareContext)
from executor.parts.agents.llm_common import Endpoint, RoutedModel
from executor.core.errors import classify_text, signature, unclassified, AGENT_TIMEOUT
from executor.engine.sandbox import Sandbox
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

SCRIPT_PATH = "/opt/isobench/agent_script.sh"
PROMPT_PATH = "/opt/isobench/prompt.txt"


class ScriptAgent(RoutedModel, OfflineAgent):

    name = "script"
    payload_kind = "script"

    def __init__(self, payload: bytes, source: str, endpoint: Endpoint | None = None,
                 environ: dict[str, str] | None = None):
        super().__init__(payload, source)
        self.endpoint = endpoint
        self.prices = None
        self._key = endpoint.api_key(environ) if endpoint else ""

    def model_upstream(self):
        return super().model_upstream() if self.endpoint is not None else None

    def secret_env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": self.model_key()} if self.endpoint is not None else {}

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        if self.endpoint is None:
            return AgentPrep()
        return AgentPrep(network=self.routed_endpoint().sandbox_network())

    @property
    def script(self) -> bytes:
        return self.payload

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        sandbox.put_file(SCRIPT_PATH, self.script, mode=0o755)
        sandbox.put_file(PROMPT_PATH, task.prompt.encode())
        stdout, stderr = out_dir / AGENT_STDOUT_NAME, out_dir / AGENT_STDERR_NAME
        env = {"ISOBENCH_PROMPT_FILE": PROMPT_PATH, "ISOBENCH_SCRATCH": task.scratch_dir,
               "ISOBENCH_ITEM_ID": task.item_id}
        if self.endpoint is not None and self.routed_endpoint().base_url:
            env["OPENAI_BASE_URL"] = self.routed_endpoint().base_url
        result = sandbox.exec(f"bash {SCRIPT_PATH}", task.budget_s, workdir=task.repo_dir,
                              env=env, secret_env=self.secret_env(),
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
