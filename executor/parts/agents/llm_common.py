"""What every LLM agent adapter needs: an endpoint, a key from the host's environment, the
sandbox network that reaches the endpoint, one streamed exec, and files copied out safely.

Keys: the controller reads the key from the host variable the user names (`--api-key-env`).
With the controller's model gateway (executor.parts.gateway, the default in run-commit and local
batches) the agent is re-pointed per attempt (`RoutedModel.route_models`) at the gateway with a
per-attempt token, and the key never leaves the controller. Without it, the key goes to the agent
process only, at exec time, under the name the agent's client reads
(`OPENAI_API_KEY` for an OpenAI-compatible endpoint). It is never in an image, a config file, a
command line, the journal or a log: everything captured goes through the sandbox's redactor.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from executor.parts.agents.base import AgentEnding, AgentRun, AgentTask, Log
from executor.core.errors import AGENT_TIMEOUT, UserInputError, classify_text, signature, unclassified
from executor.core.journal import Usage
from executor.core.pricing import DEFAULT_PRICES, PriceTable, with_cost
from executor.core.redact import Redactor
from executor.engine.sandbox import Sandbox
from executor.core.resources import ExecResult
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

RUN_DIR = "/opt/isobench/run"  # outside the repository: nothing here can enter the patch


class Endpoint(BaseModel):
    """An OpenAI-compatible endpoint and where its key comes from (never the key itself)."""

    model: str = Field(description="Model name the endpoint serves, e.g. 'gpt-5'.")
    base_url: str | None = Field(default=None, description="Endpoint URL; None: provider default.")
    api_key_env: str = Field(default="OPENAI_API_KEY",
                             description="Host environment variable holding the key.")

    def api_key(self, environ: dict[str, str] | None = None) -> str:
        """The key from the host environment; a one-line error when it is missing."""
        value = (os.environ if environ is None else environ).get(self.api_key_env, "")
        if not value:
            raise UserInputError(f"the agent needs an API key in ${self.api_key_env} "
                                 "(name another variable with --api-key-env)")
        return value

    def sandbox_network(self) -> str | None:
        """`host` when the endpoint is on this machine's loopback (a bridged container cannot
        reach the host's 127.0.0.1); None (the default network) otherwise."""
        return "host" if self.base_url and is_loopback_url(self.base_url) else None


class RoutedModel:
    """Mixin of the agents that call a model: where their calls really go (`model_upstream`,
    for the gateway) and where they are told to send them in this attempt (`route_models`)."""

    endpoint: Endpoint
    prices: PriceTable | None
    _key: str
    _route = None  # ModelRoute while an attempt runs through the gateway

    def _hold(self, settings, prices: PriceTable | None, verbose: bool,
              environ: dict[str, str] | None) -> None:
        """What every routed adapter keeps from its construction: its settings, prices and
        endpoint, the key read from `environ` (or the process's), and no bundle yet."""
        self.settings, self.prices, self.verbose = settings, prices, verbose
        self.endpoint = settings.endpoint
        self._key = settings.endpoint.api_key(environ)
        self.bundle = None

    def model_upstream(self):
        """The provider, with the real key: only the controller's gateway sees this."""
        from executor.parts.upstream import OPENAI_BASE_URL, Upstream

        return Upstream(base_url=self.endpoint.base_url or OPENAI_BASE_URL, api_key=self._key,
                        api_key_env=self.endpoint.api_key_env, model=self.endpoint.model,
                        prices=self.prices)

    def route_models(self, route) -> None:
        """Point this agent at the gateway (a ModelRoute) for one attempt; None: undo."""
        self._route = route

    def routed_endpoint(self) -> Endpoint:
        """The endpoint this attempt's agent process is given (the gateway when routed)."""
        if self._route is None:
            return self.endpoint
        return self.endpoint.model_copy(update={"base_url": self._route.base_url})

    def model_key(self) -> str:
        """The key the agent process is given: the attempt token when routed."""
        return self._route.api_key if self._route is not None else self._key


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def costed(usage: Usage, model: str, prices: PriceTable | None) -> Usage:
    """Usage with its cost from the price table (None when the model has no price)."""
    return with_cost(usage, model, prices or DEFAULT_PRICES)


def console_echo(log: Log, label: str):
    """An on_output callback that prints the agent's output line by line (`-v`)."""
    pending = {"stdout": "", "stderr": ""}

    def echo(stream: str, text: str) -> None:
        lines = (pending[stream] + text).split("\n")
        pending[stream] = lines.pop()
        for line in lines:
            log(f"[{label}] {line}")

    return echo


def run_agent_process(sandbox: Sandbox, command: str, *, budget_s: int, workdir: str,
                      out_dir: Path, env: dict[str, str], secret_env: dict[str, str],
                      log: Log, verbose: bool, label: str) -> ExecResult:
    """Run the agent once under the wall-clock budget; stdout/stderr stream to files in
    out_dir (and the console when verbose), redacted."""
    return sandbox.exec(command, budget_s, env=env, secret_env=secret_env, workdir=workdir,
                        stdout_file=out_dir / AGENT_STDOUT_NAME,
                        stderr_file=out_dir / AGENT_STDERR_NAME,
                        on_output=console_echo(log, label) if verbose else None)


def copy_out(sandbox: Sandbox, path: str, dest: Path, redactor: Redactor) -> bytes | None:
    """Copy one file out of the sandbox, redacted; None if it is not there (the agent died
    before writing it). Never raises for a missing file: a timeout or crash still ends with
    whatever evidence exists."""
    try:
        data = sandbox.get_file(path)
    except FileNotFoundError:
        return None
    data = redactor.bytes(data)
    dest.write_bytes(data)
    return data


def process_ending(result: ExecResult, task: AgentTask, has_trajectory: bool, agent: str,
                   **common) -> AgentRun | None:
    """The ending the process itself proves, before any trajectory is read: killed at the
    budget (whatever the trajectory says so far), or dead before writing a trajectory (named
    from its output). None: the trajectory decides."""
    if result.timed_out:
        return AgentRun(ending=AgentEnding.TIMEOUT, detail="used its whole budget",
                        signature=signature(AGENT_TIMEOUT, f"killed after {task.budget_s}s",
                                            "controller"), **common)
    if not has_trajectory:
        tail = result.tail(5)
        sig = classify_text(tail, "agent_stderr") or unclassified(
            tail.splitlines()[-1] if tail else f"exit {result.exit_code}", "agent_stderr")
        return AgentRun(ending=AgentEnding.ERROR, signature=sig,
                        detail=f"{agent} left no trajectory", **common)
    return None
