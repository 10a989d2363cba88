"""What a run's tokens cost: a configurable price table, and None whenever a price is unknown.

A wrong cost is worse than none: it ends up in reports and budgets. So `cost` answers None when
the model is not in the table or when the usage holds a kind of token the table has no price
for (cache reads, cache writes); it never falls back to a similar model or a default rate.

Providers count cached tokens differently: OpenAI's input_tokens *include* the cached part,
Anthropic's exclude it (cache reads and writes are reported beside). Each price says which
convention its provider uses.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from executor.core.journal import Usage

PER = 1_000_000  # prices are per million tokens


class ModelPrice(BaseModel):
    """USD per million tokens for one model."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="Uncached input tokens.")
    output: float = Field(ge=0, description="Output tokens (reasoning tokens included).")
    cached_input: float | None = Field(default=None, ge=0,
                                       description="Input served from cache; None: unknown.")
    cache_write: float | None = Field(default=None, ge=0,
                                      description="Input written to cache (Anthropic: the "
                                                  "5-minute lifetime); None: unknown.")
    cache_write_1h: float | None = Field(default=None, ge=0,
                                         description="Anthropic: input written to the 1-hour "
                                                     "cache; None: unknown.")
    cached_in_input: bool = Field(default=True,
                                  description="input_tokens include the cached part (OpenAI).")


class PriceTable(BaseModel):
    """Prices by model name, with where they came from."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="", description="Where and when these prices were read.")
    models: dict[str, ModelPrice] = Field(default_factory=dict, description="Model -> price.")

    def price(self, model: str) -> ModelPrice | None:
        """Exact name, or the name without a provider prefix ('openai/gpt-5' -> 'gpt-5').
        Never a dated snapshot's base model: snapshots have been priced differently."""
        if model in self.models:
            return self.models[model]
        return self.models.get(model.split("/", 1)[1]) if "/" in model else None

    def merged(self, other: "PriceTable") -> "PriceTable":
        """This table with `other`'s entries added or replacing ours."""
        return PriceTable(source="; ".join(s for s in (self.source, other.source) if s),
                          models={**self.models, **other.models})

    @classmethod
    def load(cls, path: Path) -> "PriceTable":
        """A TOML or JSON file: `source = "..."` and `[models."gpt-5"] input = 1.25 ...`."""
        path = Path(path)
        data = tomllib.loads(path.read_text()) if path.suffix == ".toml" \
            else json.loads(path.read_text())
        return cls.model_validate(data)


def _claude(input_: float) -> ModelPrice:
    """Anthropic's list price from the base input rate: output 5x, 5-minute cache writes
    1.25x, 1-hour writes 2x, cache reads 0.1x (platform.claude.com/docs/en/about-claude/pricing,
    read 2026-12 for the models below); input_tokens exclude the cached part."""
    return ModelPrice(input=input_, output=5 * input_, cache_write=1.25 * input_,
                      cache_write_1h=2 * input_, cached_input=0.1 * input_,
                      cached_in_input=False)


# Editable defaults: OpenAI list prices (standard tier, USD per 1M tokens) as published in
# 2025 and Anthropic's as published in 2026. Check them before relying on a cost; override or
# extend with `PriceTable.load`.
DEFAULT_PRICES = PriceTable(
    source="isobench defaults: OpenAI standard-tier list prices, 2025; Anthropic list prices, "
           "2026-12 (verify before use)",
    models={
        "gpt-5": ModelPrice(input=1.25, cached_input=0.125, output=10.0),
        "gpt-5-mini": ModelPrice(input=0.25, cached_input=0.025, output=2.0),
        "gpt-5-nano": ModelPrice(input=0.05, cached_input=0.005, output=0.40),
        "gpt-4.1": ModelPrice(input=2.0, cached_input=0.50, output=8.0),
        "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
        "gpt-4o": ModelPrice(input=2.50, cached_input=1.25, output=10.0),
        "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
        "o3": ModelPrice(input=2.0, cached_input=0.50, output=8.0),
        "o4-mini": ModelPrice(input=1.10, cached_input=0.275, output=4.40),
        "claude-opus-4-1": _claude(15.0),
        "claude-opus-4-5": _claude(5.0),
        "claude-opus-4-6": _claude(5.0),
        "claude-opus-4-7": _claude(5.0),
        "claude-sonnet-4-5": _claude(3.0),
        "claude-haiku-4-5": _claude(1.0),
    },
)


def cost(usage: Usage, model: str, table: PriceTable = DEFAULT_PRICES) -> float | None:
    """USD for `usage` on `model`, or None when any part of it has no known price."""
    price = table.price(model)
    if price is None:
        return None
    cached, written = usage.cached_input_tokens, usage.cache_creation_input_tokens
    if (cached and price.cached_input is None) or (written and price.cache_write is None):
        return None
    uncached = usage.input_tokens - cached if price.cached_in_input else usage.input_tokens
    if uncached < 0:
        return None  # counts that contradict the price's convention: not ours to guess
    total = (uncached * price.input + cached * (price.cached_input or 0.0)
             + written * (price.cache_write or 0.0) + usage.output_tokens * price.output)
    return total / PER


def with_cost(usage: Usage, model: str, table: PriceTable = DEFAULT_PRICES) -> Usage:
    """A copy of `usage` with cost_usd filled in (None when unknown)."""
    return usage.model_copy(update={"cost_usd": cost(usage, model, table)})
