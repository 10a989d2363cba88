"""`--gateway...`, `--*-budget` and `--gateway-replay`: the gateway's command-line options, and
the context in which a controller runs its attempts through one gateway.

Commands take them as one model (`GatewayFlags`; the decorator is executor.cli.common's
`gateway_options`) and one call (`controller_gateway(agent, gateway)`), which checks the
upstream key before any attempt starts and keeps the gateway up for the command's whole life.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.gateway.attempt import activate, routable
from executor.parts.gateway.budget import Budget, Budgets
from executor.parts.gateway.limiter import Limits
from executor.parts.gateway.server import Gateway, GatewayOptions
from executor.parts.gateway.upstream import check_upstream
from executor.core.pricing import DEFAULT_PRICES


class GatewayFlags(BaseModel):
    """The gateway's command-line options, flat (one flag a field); `settings()` nests them as
    the gateway's own GatewayOptions."""

    gateway: bool = Field(default=True, json_schema_extra={"flag": "--gateway/--no-gateway"},
                          description="Send the agent's model calls through the controller's "
                                      "gateway (the sandbox never sees the provider key).")
    gateway_host: str = Field(default="127.0.0.1", json_schema_extra={"flag": "--gateway-host"},
                              description="Address the gateway listens on (loopback: the agent "
                                          "sandbox runs on the host network).")
    gateway_rpm: int | None = Field(default=None, ge=1, json_schema_extra={"flag": "--gateway-rpm"},
                                    description="Upstream requests per minute, shared by all "
                                                "workers.")
    gateway_tpm: int | None = Field(default=None, ge=1, json_schema_extra={"flag": "--gateway-tpm"},
                                    description="Upstream tokens per minute, shared by all "
                                                "workers.")
    gateway_concurrency: int | None = Field(
        default=None, ge=1, json_schema_extra={"flag": "--gateway-concurrency"},
        description="Upstream requests in flight at once.")
    gateway_retries: int = Field(default=4, ge=0, json_schema_extra={"flag": "--gateway-retries"},
                                 description="429s the gateway retries itself after their "
                                             "retry-after.")
    gateway_bodies: bool = Field(
        default=True, json_schema_extra={"flag": "--gateway-bodies/--no-gateway-bodies"},
        description="Record request and response bodies (redacted; replay needs them).")
    gateway_replay: Path | None = Field(
        default=None, json_schema_extra={"flag": "--gateway-replay",
                                         "path": {"exists": True, "dir_okay": False}},
        description="Serve the model calls from this model_calls.jsonl instead of an upstream "
                    "(no key needed).")
    attempt_token_budget: int | None = Field(
        default=None, ge=1, json_schema_extra={"flag": "--attempt-token-budget"},
        description="Tokens one attempt may use.")
    attempt_usd_budget: float | None = Field(
        default=None, gt=0, json_schema_extra={"flag": "--attempt-usd-budget"},
        description="Dollars one attempt may spend (price table).")
    run_token_budget: int | None = Field(
        default=None, ge=1, json_schema_extra={"flag": "--run-token-budget"},
        description="Tokens the whole run may use.")
    run_usd_budget: float | None = Field(
        default=None, gt=0, json_schema_extra={"flag": "--run-usd-budget"},
        description="Dollars the whole run may spend.")

    def settings(self) -> GatewayOptions:
        return GatewayOptions(
            host=self.gateway_host, keep_bodies=self.gateway_bodies, replay=self.gateway_replay,
            limits=Limits(requests_per_minute=self.gateway_rpm,
                          tokens_per_minute=self.gateway_tpm,
                          max_concurrent=self.gateway_concurrency,
                          upstream_retries=self.gateway_retries),
            budgets=Budgets(attempt=Budget(tokens=self.attempt_token_budget,
                                           usd=self.attempt_usd_budget),
                            run=Budget(tokens=self.run_token_budget, usd=self.run_usd_budget)))


def probe_agent(spec):
    """The agent of a batch's items, built once on the controller to learn its upstream and
    check its key (Ray tasks then lease from this controller's gateway: executor.parts.gateway.remote);
    None for agents that call no model."""
    from executor.parts.agents import make_agent

    if spec.agent == "replay":
        return None
    return make_agent(spec.agent, script_file=spec.script.path if spec.script else None,
                      llm=spec.llm)


@contextlib.contextmanager
def controller_gateway(agent, flags: GatewayFlags) -> Iterator[Gateway | None]:
    """This controller's gateway for its whole life, when the agent calls a model and
    --gateway is on; None otherwise. Checks the upstream key first (exit 2 when refused)."""
    options = flags.settings()
    upstream = agent.model_upstream() if agent is not None and routable(agent) else None
    if not flags.gateway or (upstream is None and options.replay is None):
        if options.replay is not None:
            raise UserInputError("--gateway-replay needs an agent that calls a model "
                                 "through the gateway")
        yield None
        return
    usd = options.budgets.attempt.usd or options.budgets.run.usd
    if usd and upstream is not None and \
            (upstream.prices or DEFAULT_PRICES).price(upstream.model) is None:
        raise UserInputError(f"a dollar budget needs a price for {upstream.model} "
                             "(--price-table)")
    if options.replay is None:
        check_upstream(upstream)
    with Gateway(options) as gateway, activate(gateway):
        gateway.remote_upstream = upstream  # what leases opened by Ray tasks forward to
        yield gateway
