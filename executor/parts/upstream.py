"""A model provider as the controller sees it: URL, key, model, prices (`Upstream`).

Agents name theirs (`RoutedModel.model_upstream`) and the gateway forwards to it; it lives
apart from both so that neither package imports the other for it (agents -> gateway ->
agents was a cycle; scripts/import_graph.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from executor.core.pricing import PriceTable

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"


class Upstream(BaseModel):
    """An OpenAI-compatible provider and the key the gateway forwards with."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="Provider URL ending in /v1 (or its equivalent).")
    api_key: SecretStr = Field(description="Provider key; only ever in the controller's memory.")
    api_key_env: str = Field(default="OPENAI_API_KEY",
                             description="Host variable the key came from (named in errors).")
    model: str = Field(default="none", description="Model the agent was configured with.")
    prices: PriceTable | None = Field(default=None,
                                      description="Prices for the cost of each call.")
    wire: Literal["openai", "anthropic"] = Field(
        default="openai", description="The provider's API: OpenAI's (Bearer key) or "
                                      "Anthropic's Messages (x-api-key, anthropic-version).")

    def url(self, tail: str) -> str:
        """`tail` (the part after /v1 of the gateway's path) on the provider."""
        return self.base_url.rstrip("/") + "/" + tail.lstrip("/")
