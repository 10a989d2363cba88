"""`--gateway...`, `--*-budget` and `--gateway-replay`: the gateway's command-line options, and
the context in which a controller runs its attempts through one gateway.

Commands take them with one decorator (`gateway_options`) and one call
(`controller_gateway(agent, **values)`), which checks the upstream key before any attempt
starts and keeps the gateway up for the command's whole life.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import click

from executor.errors import UserInputError
from executor.gateway.attempt import activate, routable
from executor.gateway.budget import Budget, Budgets
from executor.gateway.limiter import Limits
from executor.gateway.server import Gateway, GatewayOptions
from executor.gateway.upstream import check_upstream
from executor.pricing import DEFAULT_PRICES

GATEWAY_PARAMS = ("gateway", "gateway_host", "gateway_rpm", "gateway_tpm",
                  "gateway_concurrency", "gateway_retries", "gateway_bodies", "gateway_replay",
                  "attempt_token_budget", "attempt_usd_budget", "run_token_budget",
                  "run_usd_budget")


def gateway_options(fn):
    """The gateway's options (all named `gateway_*` or `*_budget` in the command's kwargs)."""
    decorators = [
        click.option("--gateway/--no-gateway", default=True, show_default=True,
                     help="Send the agent's model calls through the controller's gateway "
                          "(the sandbox never sees the provider key)."),
        click.option("--gateway-host", default="127.0.0.1", show_default=True,
                     help="Address the gateway listens on (loopback: the agent sandbox runs "
                          "on the host network)."),
        click.option("--gateway-rpm", type=click.IntRange(1), default=None,
                     help="Upstream requests per minute, shared by all workers."),
        click.option("--gateway-tpm", type=click.IntRange(1), default=None,
                     help="Upstream tokens per minute, shared by all workers."),
        click.option("--gateway-concurrency", type=click.IntRange(1), default=None,
                     help="Upstream requests in flight at once."),
        click.option("--gateway-retries", type=click.IntRange(0), default=4, show_default=True,
                     help="429s the gateway retries itself after their retry-after."),
        click.option("--gateway-bodies/--no-gateway-bodies", default=True, show_default=True,
                     help="Record request and response bodies (redacted; replay needs them)."),
        click.option("--gateway-replay", type=click.Path(path_type=Path, dir_okay=False,
                                                        exists=True),
                     help="Serve the model calls from this model_calls.jsonl instead of an "
                          "upstream (no key needed)."),
        click.option("--attempt-token-budget", type=click.IntRange(1), default=None,
                     help="Tokens one attempt may use."),
        click.option("--attempt-usd-budget", type=click.FloatRange(0, min_open=True),
                     default=None, help="Dollars one attempt may spend (price table)."),
        click.option("--run-token-budget", type=click.IntRange(1), default=None,
                     help="Tokens the whole run may use."),
        click.option("--run-usd-budget", type=click.FloatRange(0, min_open=True),
                     default=None, help="Dollars the whole run may spend."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def pop_gateway_values(values: dict) -> dict:
    """Take the gateway's options out of a command's kwargs."""
    return {name: values.pop(name) for name in GATEWAY_PARAMS}


def gateway_settings(*, gateway_host: str, gateway_rpm, gateway_tpm, gateway_concurrency,
                     gateway_retries: int, gateway_bodies: bool, gateway_replay,
                     attempt_token_budget, attempt_usd_budget, run_token_budget,
                     run_usd_budget, **_ignored) -> GatewayOptions:
    return GatewayOptions(
        host=gateway_host, keep_bodies=gateway_bodies, replay=gateway_replay,
        limits=Limits(requests_per_minute=gateway_rpm, tokens_per_minute=gateway_tpm,
                      max_concurrent=gateway_concurrency, upstream_retries=gateway_retries),
        budgets=Budgets(attempt=Budget(tokens=attempt_token_budget, usd=attempt_usd_budget),
                        run=Budget(tokens=run_token_budget, usd=run_usd_budget)))


def probe_agent(spec):
    """The agent of a batch's items, built once on the controller to learn its upstream and
    check its key (Ray tasks then lease from this controller's gateway: executor.gateway.remote);
    None for agents that call no model."""
    from executor.agents import make_agent

    if spec.agent == "replay":
        return None
    return make_agent(spec.agent, script_file=spec.script.path if spec.script else None,
                      llm=spec.llm)


@contextlib.contextmanager
def controller_gateway(agent, **values) -> Iterator[Gateway | None]:
    """This controller's gateway for its whole life, when the agent calls a model and
    --gateway is on; None otherwise. Checks the upstream key first (exit 2 when refused)."""
    options = gateway_settings(**values)
    upstream = agent.model_upstream() if agent is not None and routable(agent) else None
    if not values["gateway"] or (upstream is None and options.replay is None):
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
