"""Token and dollar budgets, per attempt and per run (the controller's lifetime).

Checked before a call goes upstream: once an attempt (or the run) has spent its budget, the
gateway answers the next call itself with an OpenAI-shaped error that names it, the agent
stops, the controller journals `budget_exhausted` (permanent: never retried) and keeps the patch
made so far. The call that crosses a budget is allowed: its size is only known afterwards.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel, Field

from executor.core.journal import Usage

BUDGET_ERROR_CODE = "isobench_budget_exhausted"


class Budget(BaseModel):
    """A ceiling in tokens (input + output) and/or dollars; None: unlimited."""

    tokens: int | None = Field(default=None, ge=1, description="Input plus output tokens "
                               "(the prompt's cache reads and writes counted as input).")
    usd: float | None = Field(default=None, gt=0, description="Cost in USD (price table).")

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.usd is None


class Budgets(BaseModel):
    """The budgets the gateway enforces."""

    attempt: Budget = Field(default_factory=Budget, description="Each attempt's calls.")
    run: Budget = Field(default_factory=Budget, description="All calls of this controller.")


class Spend:
    """Tokens and dollars spent so far by one attempt or one run; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens = 0
        self.usd = 0.0

    def add(self, usage: Usage, cache_reads_beside: bool = False) -> None:
        """`cache_reads_beside`: the provider counts cache reads apart from input_tokens
        (Anthropic; OpenAI's input_tokens include them). Cache writes are always apart."""
        with self._lock:
            self.tokens += (usage.input_tokens + usage.output_tokens
                            + usage.cache_creation_input_tokens
                            + (usage.cached_input_tokens if cache_reads_beside else 0))
            self.usd += usage.cost_usd or 0.0

    def over(self, budget: Budget) -> str | None:
        """Which budget is spent, in words, or None."""
        with self._lock:
            if budget.tokens is not None and self.tokens >= budget.tokens:
                return f"{self.tokens} of {budget.tokens} tokens"
            if budget.usd is not None and self.usd >= budget.usd:
                return f"${self.usd:.4f} of ${budget.usd:.4f}"
        return None


def budget_error_body(scope: str, spent: str) -> dict:
    """What the agent receives (400: clients do not retry it)."""
    return {"error": {
        "message": f"isobench budget exhausted: this {scope} has used {spent}; the controller "
                   f"allows no more model calls (raise --{scope}-token-budget or "
                   f"--{scope}-usd-budget).",
        "type": "budget_exhausted", "param": None, "code": BUDGET_ERROR_CODE}}
