"""The pipeline's side of the gateway: route one attempt's model calls through the
controller's gateway, then put the record's numbers in the journal.

An agent takes part when it has an upstream (`model_upstream()`: the LLM agents, and the script
agent given --base-url) and can be re-pointed (`route_models(route)`). With a gateway active in
this process (`activate`: the controller's own, or a Ray task's handle on its driver's), the
attempt gets a lease and the agent the gateway's URL and the lease's token; without one
(library callers, --no-gateway) the agent talks to its endpoint directly, as before.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from executor.parts.agents.base import Agent, AgentEnding, AgentRun
from executor.core.errors import BUDGET_EXHAUSTED, REPLAY_MISMATCH, signature
from executor.parts.gateway.record import read_calls, summarise
from executor.parts.gateway.remote import RemoteGateway
from executor.parts.gateway.server import Gateway
from executor.core.journal import ModelTraffic, Usage
from executor.core.redact import Redactor
from executor.records.state import MODEL_CALLS_NAME

_active: list[Gateway | RemoteGateway] = []


@contextlib.contextmanager
def activate(gateway: Gateway | RemoteGateway | None
             ) -> Iterator[Gateway | RemoteGateway | None]:
    """Make `gateway` the one this process's attempts use (None: leave things as they are)."""
    if gateway is None:
        yield None
        return
    _active.append(gateway)
    try:
        yield gateway
    finally:
        _active.remove(gateway)


def active_gateway() -> Gateway | RemoteGateway | None:
    return _active[-1] if _active else None


def routable(agent: Agent) -> bool:
    return hasattr(agent, "route_models") and hasattr(agent, "model_upstream")


class AttemptTraffic:
    """What the gateway saw of one attempt, once it has ended."""

    def __init__(self, record_path: Path | None = None):
        self.record_path = record_path
        self.traffic: ModelTraffic | None = None
        self.usage: Usage | None = None

    def close(self) -> None:
        if self.record_path is not None:
            self.traffic, self.usage = summarise(read_calls(self.record_path),
                                                 MODEL_CALLS_NAME)

    def apply(self, run: AgentRun) -> AgentRun:
        """The agent's report with the gateway's usage; the gateway's own refusal as the cause
        when one stopped it (whatever the agent made of it: some agents record only
        "BadRequestError"): a spent budget, or a replay the agent did not repeat."""
        if self.traffic is None:
            return run
        update: dict = {"usage": self.usage}
        if run.ending != AgentEnding.FINISHED:
            if self.traffic.budget_exhausted:
                update.update(ending=AgentEnding.ERROR, detail="model budget exhausted",
                              signature=signature(BUDGET_EXHAUSTED, "the gateway refused a "
                                                  "model call: budget exhausted", "gateway"))
            elif self.traffic.replay_mismatch:
                update.update(ending=AgentEnding.ERROR, detail="replay mismatch",
                              signature=signature(REPLAY_MISMATCH, self.traffic.replay_mismatch,
                                                  "gateway"))
        return run.model_copy(update=update)


@contextlib.contextmanager
def route_attempt(agent: Agent, attempt_dir: Path, redactor: Redactor
                  ) -> Iterator[AttemptTraffic]:
    """For the agent phase of one attempt: a lease on the active gateway (or nothing)."""
    gateway = active_gateway()
    if gateway is None or not routable(agent):
        yield AttemptTraffic()
        return
    record = attempt_dir / MODEL_CALLS_NAME
    if isinstance(gateway, RemoteGateway):
        lease = gateway.leased(record)
    elif gateway.options.replay is not None:
        from executor.parts.gateway.replay import replay_from

        lease = _local_lease(gateway, record, redactor, replay=replay_from(
            gateway.options.replay))
    elif (upstream := agent.model_upstream()) is not None:
        lease = _local_lease(gateway, record, redactor, upstream=upstream)
    else:
        yield AttemptTraffic()
        return
    traffic = AttemptTraffic(record)
    try:
        with lease as route:
            agent.route_models(route)
            try:
                yield traffic
            finally:
                agent.route_models(None)
    finally:  # also when the agent phase failed: its calls are still on record
        traffic.close()


@contextlib.contextmanager
def _local_lease(gateway: Gateway, record: Path, redactor: Redactor, **source):
    with gateway.leased(record, redactor=redactor, **source) as lease:
        yield gateway.route(lease)
