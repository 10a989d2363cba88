"""Honest denominators: of the items planned, which were measured, which ended as the agent's
own zero, and which ended for reasons that are not the agent's (a budget, the model provider,
our infrastructure) or have not ended yet.

An item that ran out of budget, was refused by the provider, or died with a Docker daemon
says nothing about the agent's ability; counting it as a zero would make a run's score depend
on the provider's uptime. Reports and `compare` state "N measured of N planned" and what the
rest were, so an aggregate over measured items cannot be read as one over the plan.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from executor.core import errors

MEASURED = "measured"
AGENT = "agent's own (counts as its zero)"
BUDGET = "budget"
PROVIDER = "provider refusal"
INFRA = "infrastructure"
NOT_ENDED = "not run or unfinished"

# Signatures (executor/core/errors.py) that end an item for a reason outside the agent.
BUDGET_SIGNATURES = {"budget_exhausted"}
PROVIDER_SIGNATURES = {"quota_exhausted", "rate_limit", "auth", "provider_unavailable"}
INFRA_STATUSES = {"infra_error", "interrupted"}
NOT_ENDED_STATES = {"remaining", "running", "unknown"}


def _infra_signatures() -> set[str]:
    named = [r.name for r in errors.RULES if r.error_class is errors.ErrorClass.INFRA]
    named += [value[0] for value in vars(errors).values()
              if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str)
              and value[1] is errors.ErrorClass.INFRA]
    return set(named)


INFRA_SIGNATURES = _infra_signatures()


def ending(*, measured: bool, state: str | None, status: str | None = None,
           signature: str | None = None, error_class: str | None = None) -> str:
    """The category of one item: measured, the agent's own ending, or a reason that is not
    the agent's (budget, provider, infrastructure), or not ended."""
    if measured:
        return MEASURED
    if signature in BUDGET_SIGNATURES:
        return BUDGET
    if signature in PROVIDER_SIGNATURES:
        return PROVIDER
    if error_class == "infra" or status in INFRA_STATUSES or signature in INFRA_SIGNATURES:
        return INFRA
    if state in NOT_ENDED_STATES or status in ("running", "unknown"):
        return NOT_ENDED
    return AGENT


def counts(endings: Iterable[str]) -> dict[str, int]:
    return dict(Counter(endings))


def denominator_line(endings: dict[str, int], planned: int | None = None) -> str:
    """'N measured of M planned; the rest: 2 budget, 1 infrastructure'."""
    total = planned if planned is not None else sum(endings.values())
    rest = [f"{n} {name}" for name, n in sorted(endings.items(), key=lambda kv: -kv[1])
            if name != MEASURED and n]
    return (f"{endings.get(MEASURED, 0)} measured of {total} planned"
            + (f"; the rest: {', '.join(rest)}" if rest else ""))
